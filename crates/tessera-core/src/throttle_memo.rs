//! What one node remembers of throttling between store reads: a client's last-read pause, and
//! which pauses it already put in the audit log. Counting failures is [`crate::throttle`]'s.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::Timestamp;

/// A node's memory of one client's throttle state: the second it was last read from the store and
/// when the client is refused until. Read at most once a second, so a client authenticating
/// thousands of times a second does not pay a read each time; a failure forgets it.
#[derive(Debug, Default)]
pub struct ClientThrottle(Mutex<Option<(i64, Option<Timestamp>)>>);

impl ClientThrottle {
    pub(crate) fn remembered(&self, now: Timestamp) -> Option<Option<i64>> {
        let memo = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        match memo {
            Some((second, until)) if second == now.0 => {
                Some(until.filter(|u| *u > now).map(|u| u.0 - now.0))
            }
            _ => None,
        }
    }

    pub(crate) fn remember(&self, value: Option<(i64, Option<Timestamp>)>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }

    /// Keeps the last state read for one more second (the store could not be read at `now`).
    pub(crate) fn keep(&self, now: Timestamp) -> Option<i64> {
        let mut memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let until = memo.and_then(|(_, until)| until);
        *memo = Some((now.0, until));
        until.filter(|u| *u > now).map(|u| u.0 - now.0)
    }
}

/// The throttled keys this node has put in the audit log, each with the end of its pause: one
/// event per key and window however often a throttled caller keeps trying, so an attacker cannot
/// grow the log by retrying. Bounded: past [`NOTED_KEYS`] keys paused at once, new pauses are only
/// logged (`tracing`), not recorded.
#[derive(Debug, Default)]
pub struct ThrottleNotes(Mutex<HashMap<String, Timestamp>>);

const NOTED_KEYS: usize = 10_000;

impl ThrottleNotes {
    /// Whether the pause of `key` until `until` is news to this node; it is remembered.
    pub(crate) fn first(&self, key: &str, until: Timestamp, now: Timestamp) -> bool {
        let mut noted = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if noted.get(key) == Some(&until) {
            return false;
        }
        if noted.len() >= NOTED_KEYS {
            noted.retain(|_, u| *u > now);
            if noted.len() >= NOTED_KEYS {
                return false;
            }
        }
        noted.insert(key.to_owned(), until);
        true
    }
}

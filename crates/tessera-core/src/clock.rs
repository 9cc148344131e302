//! Time as a value: every entry point reads `now` once from a [`Clock`] and passes it down.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (the NumericDate of RFC 7519 §2).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }
    pub fn secs(self) -> i64 {
        self.0
    }
}

/// Where `now` comes from: the system clock in production, a settable one in tests.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    pub fn fixed(at: i64) -> Clock {
        Clock::Fixed(Arc::new(AtomicI64::new(at)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            ),
            Clock::Fixed(t) => Timestamp(t.load(Ordering::SeqCst)),
        }
    }

    /// Moves a fixed clock forward (tests of expiry); a system clock ignores it.
    pub fn advance(&self, seconds: i64) {
        if let Clock::Fixed(t) = self {
            t.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_advances() {
        let c = Clock::fixed(1_000);
        assert_eq!(c.now(), Timestamp(1_000));
        c.advance(60);
        assert_eq!(c.now(), Timestamp(1_060));
        assert!(Clock::System.now().0 > 1_700_000_000);
    }
}

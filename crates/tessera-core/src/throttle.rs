//! Failure throttling (RFC 9700 §4.2.6; RFC 6749 §10.10): failures are counted per key (an account,
//! an address, a client) in fixed windows stored in the database, so every node sees the same
//! counts; a key over its limit pauses until its window ends.

use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::{ErrorCode, Result};
use crate::provider::{LoadedClient, Provider};

/// The source failures count under: an IPv6 client by its /64 (one subscriber's network, which
/// hands out addresses freely), any other by its address as given.
pub(crate) fn address_bucket(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_owned(),
    }
}

/// The failures counted under some keys.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Seconds until every key over its limit has cleared (at least 1), if any is over it.
    pub retry_after: Option<i64>,
    /// The failures counted under each key, in the order of the limits.
    pub counts: Vec<i64>,
    /// The first key over its limit, and when its window ends.
    pub paused: Option<(String, Timestamp)>,
}

fn client_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

impl Provider {
    /// Seconds until every key over its limit has cleared (at least 1), or `None` when no key of
    /// `limits` (`(key, limit)`) is over its limit.
    pub(crate) async fn throttled(
        &self,
        limits: &[(&str, i64)],
        now: Timestamp,
    ) -> Result<Option<i64>> {
        Ok(self.tally(limits, now).await?.retry_after)
    }

    /// What the counters of `limits` (`(key, limit)`) say at `now`.
    pub(crate) async fn tally(&self, limits: &[(&str, i64)], now: Timestamp) -> Result<Tally> {
        let window = self.settings.throttle.window;
        let mut tally = Tally::default();
        for &(key, limit) in limits {
            let f = self.store.failures(key, now, window).await?;
            tally.counts.push(f.count);
            if f.count >= limit {
                tally
                    .paused
                    .get_or_insert_with(|| (key.to_owned(), f.until));
                let secs = (f.until.0 - now.0).max(1);
                tally.retry_after = Some(tally.retry_after.map_or(secs, |r: i64| r.max(secs)));
            }
        }
        Ok(tally)
    }

    /// RFC 6749 §2.3.1 asks to protect client secrets against brute force: seconds until `loaded`
    /// may authenticate with its secret again, or `None`.
    pub(crate) async fn client_throttled(
        &self,
        loaded: &LoadedClient,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        if let Some(known) = loaded.throttle.remembered(now) {
            return Ok(known);
        }
        let key = client_key(&loaded.client.client_id);
        let secs = match self
            .throttled(&[(&key, self.settings.throttle.per_client)], now)
            .await
        {
            Ok(secs) => secs,
            // The store is unreachable: the last state this node read stands (a client it knew
            // to be paused stays paused), so tokens that need no database are still issued. A
            // wrong secret is still refused: its failure cannot be counted, which answers 503.
            Err(e) if e.code == ErrorCode::TemporarilyUnavailable => {
                tracing::warn!(error = %e, "client throttle unreadable; last known state kept");
                return Ok(loaded.throttle.keep(now));
            }
            Err(e) => return Err(e),
        };
        loaded
            .throttle
            .remember(Some((now.0, secs.map(|s| now.plus(s)))));
        Ok(secs)
    }

    /// Counts a failed client authentication with a secret; the seconds to wait when this failure
    /// went past the limit (so parallel guesses past the limit are told to wait, not "wrong").
    pub(crate) async fn client_failed(
        &self,
        loaded: &LoadedClient,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let key = client_key(&loaded.client.client_id);
        tracing::info!(client_id = %loaded.client.client_id, "client authentication failed");
        let t = &self.settings.throttle;
        let count = self.store.count_failure(&key, now, t.window).await?;
        let id = &loaded.client.client_id;
        let target = format!("client:{id}");
        let detail = serde_json::json!({"failures_in_window": count});
        self.record(
            &Actor::client(id),
            "client.authentication_failed",
            &target,
            Some(id),
            detail,
        )
        .await;
        // Forgotten only now that the failure is stored: a read racing with this one re-reads it.
        loaded.throttle.remember(None);
        if count <= t.per_client {
            return Ok(None);
        }
        self.throttled(&[(&key, t.per_client)], now).await
    }

    /// Counts one failure under each key.
    pub(crate) async fn count_failures(&self, keys: &[&str], now: Timestamp) -> Result<()> {
        let window = self.settings.throttle.window;
        for key in keys {
            self.store.count_failure(key, now, window).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::address_bucket;

    #[test]
    fn ipv6_sources_count_by_network() {
        assert_eq!(
            address_bucket("2001:db8:1:2:3:4:5:6"),
            address_bucket("2001:db8:1:2:ffff::1")
        );
        assert_ne!(
            address_bucket("2001:db8:1:2::1"),
            address_bucket("2001:db8:1:3::1")
        );
        assert_eq!(address_bucket("192.0.2.1"), "192.0.2.1");
    }
}

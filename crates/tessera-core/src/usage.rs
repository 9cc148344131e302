//! The counts behind the Admin Portal's dashboard: sign-ins by outcome, tokens issued by grant
//! and throttled requests, per application and minute. Each node counts in memory and adds its
//! counts to the store every few seconds ([`Usage::drain`]), so no request waits for a count and
//! every node's are summed.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::model::GrantType;

/// The counts are kept per minute…
pub const BUCKET_SECS: i64 = 60;
/// …for two days: the dashboard's longest window is one.
pub const KEPT_SECS: i64 = 2 * 86_400;
/// At most this many (minute, metric, application) counts wait in memory between two drains;
/// beyond, new keys are not counted (application ids come from registered clients, so this is
/// reached only by a store that cannot be written for long).
const PENDING_MAX: usize = 50_000;

/// A sign-in with the right password (and, as the scheme asks, factors).
pub const SIGN_IN_SUCCEEDED: &str = "sign_in.succeeded";
/// A sign-in refused for a wrong username or password.
pub const SIGN_IN_FAILED: &str = "sign_in.failed";
/// A request answered 429 (sign-ins, the token endpoint, registration…).
pub const THROTTLED: &str = "throttled";
/// Tokens issued by the token endpoint: `token.<grant_type>`.
pub const TOKEN_PREFIX: &str = "token.";

/// One count: the minute it started (seconds), what, for which application (`""` for none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageCount {
    pub minute: i64,
    pub metric: String,
    pub client_id: String,
    pub count: i64,
}

/// The metric of the tokens of a grant type: [`TOKEN_PREFIX`] and its short name, without
/// building the string for every token.
pub fn token_metric(g: GrantType) -> &'static str {
    match g {
        GrantType::AuthorizationCode => "token.authorization_code",
        GrantType::ClientCredentials => "token.client_credentials",
        GrantType::RefreshToken => "token.refresh_token",
        GrantType::Password => "token.password",
        GrantType::TokenExchange => "token.token_exchange",
        GrantType::JwtBearer => "token.jwt_bearer",
        GrantType::Saml2Bearer => "token.saml2_bearer",
        GrantType::DeviceCode => "token.device_code",
        GrantType::Ciba => "token.ciba",
    }
}

/// This node's counts not yet in the store, by minute, metric and application: looked up by
/// borrowed names, so counting allocates only for a key new since the last drain.
#[derive(Debug, Default)]
pub struct Usage {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    counts: HashMap<(i64, String), HashMap<String, i64>>,
    keys: usize,
}

impl Pending {
    /// Adds `n` to a key; a new key only within [`PENDING_MAX`].
    fn add(&mut self, minute: i64, metric: &str, client_id: &str, n: i64) {
        // The (minute, metric) pairs are few: a scan finds one without building its key.
        let found = self
            .counts
            .iter_mut()
            .find(|((m, name), _)| *m == minute && name == metric)
            .map(|(_, clients)| clients);
        let clients = match found {
            Some(c) => c,
            None if self.keys < PENDING_MAX => {
                self.counts.entry((minute, metric.to_owned())).or_default()
            }
            None => return,
        };
        if let Some(c) = clients.get_mut(client_id) {
            *c += n;
        } else if self.keys < PENDING_MAX {
            clients.insert(client_id.to_owned(), n);
            self.keys += 1;
        }
    }
}

impl Usage {
    /// Counts one `metric` for `client_id` at `now`.
    pub fn count(&self, metric: &str, client_id: Option<&str>, now: Timestamp) {
        let minute = now.0 - now.0.rem_euclid(BUCKET_SECS);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.add(minute, metric, client_id.unwrap_or(""), 1);
    }

    /// Takes the counts made since the last drain.
    pub fn drain(&self) -> Vec<UsageCount> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        taken
            .counts
            .into_iter()
            .flat_map(|((minute, metric), clients)| {
                clients
                    .into_iter()
                    .map(move |(client_id, count)| UsageCount {
                        minute,
                        metric: metric.clone(),
                        client_id,
                        count,
                    })
            })
            .collect()
    }

    /// Puts counts back that the store did not take, so a store outage loses none (within
    /// [`PENDING_MAX`] keys, as [`Usage::count`]).
    pub fn restore(&self, counts: Vec<UsageCount>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for c in counts {
            pending.add(c.minute, &c.metric, &c.client_id, c.count);
        }
    }
}

/// One window of the dashboard: totals and a series per metric, and the busiest applications.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub since: i64,
    pub until: i64,
    /// Seconds per point of each series.
    pub step: i64,
    pub sign_ins_succeeded: Series,
    pub sign_ins_failed: Series,
    pub throttled: Series,
    /// Tokens by grant type, most first.
    pub tokens: Vec<(String, Series)>,
    /// Applications by sign-ins and tokens, most first (at most ten).
    pub busiest: Vec<(String, i64)>,
}

/// Counts per step, oldest first, and their total.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    pub points: Vec<i64>,
    pub total: i64,
}

impl Summary {
    /// Sums `counts` (of one application, or all) into `points` steps ending at `until`.
    pub fn of(counts: &[UsageCount], until: i64, window: i64, points: i64) -> Summary {
        let step = (window / points).max(BUCKET_SECS);
        let since = until - step * points;
        let series = |pred: &dyn Fn(&str) -> bool| {
            let mut s = Series {
                points: vec![0; usize::try_from(points).unwrap_or(0)],
                total: 0,
            };
            for c in counts
                .iter()
                .filter(|c| c.minute >= since && pred(&c.metric))
            {
                let i = usize::try_from((c.minute - since) / step).unwrap_or(usize::MAX);
                if let Some(p) = s.points.get_mut(i) {
                    *p += c.count;
                    s.total += c.count;
                }
            }
            s
        };
        let mut grants: Vec<&str> = counts
            .iter()
            .filter_map(|c| c.metric.strip_prefix(TOKEN_PREFIX))
            .collect();
        grants.sort_unstable();
        grants.dedup();
        let mut tokens: Vec<(String, Series)> = grants
            .into_iter()
            .map(|g| {
                let metric = format!("{TOKEN_PREFIX}{g}");
                (g.to_owned(), series(&|m| m == metric))
            })
            .filter(|(_, s)| s.total > 0)
            .collect();
        tokens.sort_by(|a, b| b.1.total.cmp(&a.1.total).then(a.0.cmp(&b.0)));
        let mut per_client: HashMap<&str, i64> = HashMap::new();
        for c in counts
            .iter()
            .filter(|c| c.minute >= since && !c.client_id.is_empty())
        {
            if c.metric != THROTTLED {
                *per_client.entry(&c.client_id).or_default() += c.count;
            }
        }
        let mut busiest: Vec<(String, i64)> = per_client
            .into_iter()
            .map(|(c, n)| (c.to_owned(), n))
            .collect();
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        busiest.truncate(10);
        Summary {
            since,
            until,
            step,
            sign_ins_succeeded: series(&|m| m == SIGN_IN_SUCCEEDED),
            sign_ins_failed: series(&|m| m == SIGN_IN_FAILED),
            throttled: series(&|m| m == THROTTLED),
            tokens,
            busiest,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_metrics_are_the_prefix_and_the_short_name() {
        for g in super::GrantType::ALL {
            assert_eq!(
                super::token_metric(g),
                format!("{}{}", super::TOKEN_PREFIX, g.name())
            );
        }
    }

    use super::*;

    #[test]
    fn counts_fall_into_minutes_and_windows() {
        let usage = Usage::default();
        let t = Timestamp(1_000_000_020);
        usage.count(SIGN_IN_SUCCEEDED, Some("app"), t);
        usage.count(SIGN_IN_SUCCEEDED, Some("app"), Timestamp(t.0 + 30));
        usage.count("token.client_credentials", Some("m2m"), t);
        usage.count(THROTTLED, None, Timestamp(t.0 + 61));
        let mut counts = usage.drain();
        assert!(usage.drain().is_empty());
        counts.sort_by(|a, b| (a.minute, &a.metric).cmp(&(b.minute, &b.metric)));
        assert_eq!(counts[0].minute % 60, 0);
        assert_eq!(counts.iter().map(|c| c.count).sum::<i64>(), 4);
        let s = Summary::of(&counts, t.0 + 120, 3600, 60);
        assert_eq!(s.sign_ins_succeeded.total, 2);
        assert_eq!(s.throttled.total, 1);
        assert_eq!(s.tokens[0].0, "client_credentials");
        assert_eq!(s.busiest, vec![("app".into(), 2), ("m2m".into(), 1)]);
        assert_eq!(s.sign_ins_succeeded.points.len(), 60);
        assert_eq!(*s.sign_ins_succeeded.points.last().unwrap(), 0);
        // A store that failed gets them back.
        usage.restore(counts);
        assert_eq!(usage.drain().len(), 3);
    }
}

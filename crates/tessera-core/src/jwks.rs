//! Foreign keys: a client's or a trusted issuer's JWK Set, inline or from a `jwks_uri`. Fetched
//! sets are cached for five minutes (by the provider's clock); an unknown `kid` refetches (at
//! most every ten seconds per URL), so a key rotation at the other end is picked up without
//! letting a flood of bogus kids hammer it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::outbound::{redact_url, Outbound};

/// Seconds a fetched set is used before it is fetched again.
const FRESH: i64 = 300;
/// Seconds after a fetch before an unknown kid may fetch again.
const REFETCH_AFTER: i64 = 10;

#[derive(Debug, Default)]
pub struct JwksCache {
    entries: RwLock<HashMap<String, Fetched>>,
}

/// When a URL was last fetched, and the set (`None`: that fetch failed).
type Fetched = (Timestamp, Option<Arc<JwkSet>>);

/// Where a key set comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySource<'a> {
    pub inline: Option<&'a Value>,
    pub uri: Option<&'a str>,
}

fn parse_set(v: &Value) -> Result<JwkSet, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("the key set is not a JWK Set: {e}"))
}

/// The signature key for `kid`; without a kid, the only signature key of the set. Keys marked
/// for encryption (`use: enc`) never verify signatures.
fn pick<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a Jwk> {
    let mut signing = set.keys.iter().filter(|k| {
        !matches!(
            k.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        )
    });
    match kid {
        Some(id) => signing.find(|k| k.common.key_id.as_deref() == Some(id)),
        None => {
            let first = signing.next();
            if signing.next().is_some() {
                None
            } else {
                first
            }
        }
    }
}

impl JwksCache {
    /// Fetches and caches a set; a failure is cached too, so that requests naming the client
    /// cannot make Tessera call the URL more than every [`REFETCH_AFTER`] seconds.
    async fn fetch_set(
        &self,
        outbound: &dyn Outbound,
        now: Timestamp,
        uri: &str,
    ) -> Result<Arc<JwkSet>, String> {
        let shown = redact_url(uri);
        let fetched = match outbound.get_json(uri).await {
            Ok(v) => parse_set(&v)
                .map(Arc::new)
                .map_err(|_| format!("{shown} did not answer a JWK Set")),
            Err(e) => {
                tracing::warn!(uri = %shown, error = %e, "key set could not be fetched");
                Err(format!("the keys at {shown} could not be fetched"))
            }
        };
        let mut w = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if w.len() > 10_000 {
            w.clear();
        }
        w.insert(uri.to_owned(), (now, fetched.as_ref().ok().cloned()));
        fetched
    }

    /// The verification key named by `kid` from `source`, fetched through `outbound` when the
    /// set is published at a URI; `Err` says why the set is unusable.
    pub(crate) async fn key(
        &self,
        outbound: &dyn Outbound,
        now: Timestamp,
        source: KeySource<'_>,
        kid: Option<&str>,
    ) -> Result<Option<Jwk>, String> {
        if let Some(v) = source.inline {
            let set = parse_set(v)?;
            return Ok(pick(&set, kid).cloned());
        }
        let Some(uri) = source.uri else {
            return Ok(None);
        };
        let cached = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uri)
            .cloned();
        let set = match cached {
            Some((at, None)) if now.0 - at.0 < REFETCH_AFTER => {
                return Err(format!(
                    "the keys at {} could not be fetched a moment ago",
                    redact_url(uri)
                ))
            }
            Some((at, Some(set))) if now.0 - at.0 < FRESH => {
                if let Some(k) = pick(&set, kid) {
                    return Ok(Some(k.clone()));
                }
                if now.0 - at.0 < REFETCH_AFTER {
                    return Ok(None);
                }
                self.fetch_set(outbound, now, uri).await?
            }
            _ => self.fetch_set(outbound, now, uri).await?,
        };
        Ok(pick(&set, kid).cloned())
    }
}

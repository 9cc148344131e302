//! Foreign keys: a client's or a trusted issuer's JWK Set, inline or from a `jwks_uri`. Fetched
//! sets are cached for five minutes (by the provider's clock); an unknown `kid` refetches (at
//! most every ten seconds per URL), so a key rotation at the other end is picked up without
//! letting a flood of bogus kids hammer it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::provider::Provider;

/// Seconds a fetched set is used before it is fetched again.
const FRESH: i64 = 300;
/// Seconds after a fetch before an unknown kid may fetch again.
const REFETCH_AFTER: i64 = 10;

#[derive(Debug, Default)]
pub struct JwksCache {
    entries: RwLock<HashMap<String, (Timestamp, Arc<JwkSet>)>>,
}

/// Where a key set comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySource<'a> {
    pub inline: Option<&'a Value>,
    pub uri: Option<&'a str>,
}

fn parse_set(v: &Value) -> Result<JwkSet, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("the key set is not a JWK Set: {e}"))
}

/// The key for `kid`; without a kid, the only key of the set.
fn pick<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a Jwk> {
    match kid {
        Some(k) => set.find(k),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
}

impl Provider {
    async fn fetch_set(&self, uri: &str) -> Result<Arc<JwkSet>, String> {
        let v = self.outbound.get_json(uri).await.map_err(|e| {
            tracing::warn!(uri, error = %e, "key set could not be fetched");
            format!("the keys at {uri} could not be fetched")
        })?;
        let set = Arc::new(parse_set(&v).map_err(|_| format!("{uri} did not answer a JWK Set"))?);
        let mut w = self.jwks.entries.write().unwrap_or_else(|p| p.into_inner());
        if w.len() > 10_000 {
            w.clear();
        }
        w.insert(uri.to_owned(), (self.now(), set.clone()));
        Ok(set)
    }

    /// The verification key named by `kid` from `source`; `Err` says why the set is unusable.
    pub(crate) async fn foreign_key(
        &self,
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
            .jwks
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uri)
            .cloned();
        let now = self.now();
        let set = match cached {
            Some((at, set)) if now.0 - at.0 < FRESH => {
                if let Some(k) = pick(&set, kid) {
                    return Ok(Some(k.clone()));
                }
                if now.0 - at.0 < REFETCH_AFTER {
                    return Ok(None);
                }
                self.fetch_set(uri).await?
            }
            _ => self.fetch_set(uri).await?,
        };
        Ok(pick(&set, kid).cloned())
    }
}

//! Foreign keys: a client's or a trusted issuer's JWK Set, inline or from a `jwks_uri`. Fetched
//! sets are cached for five minutes (by the provider's clock); an unknown `kid` refetches (at
//! most every ten seconds per URL), so a key rotation at the other end is picked up without
//! letting a flood of bogus kids hammer it. Requests that need a URL fetched at the same moment
//! wait for one fetch and share it.

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
    /// One gate per URL: whoever holds it fetches, the others wait and read what it fetched.
    gates: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// When a URL was last fetched, and the set (`None`: that fetch failed).
type Fetched = (Timestamp, Option<Arc<KeySet>>);

/// A key set, parsed (for signature keys) and as published (for what the parser drops, such
/// as an encryption key's `alg`), key by key in the same order.
#[derive(Debug)]
struct KeySet {
    parsed: JwkSet,
    raw: Vec<Value>,
}

/// A key found: parsed, and as published.
type Found = (Jwk, Value);

/// Where a key set comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySource<'a> {
    pub inline: Option<&'a Value>,
    pub uri: Option<&'a str>,
}

fn parse_set(v: &Value) -> Result<KeySet, String> {
    let parsed: JwkSet = serde_json::from_value(v.clone())
        .map_err(|e| format!("the key set is not a JWK Set: {e}"))?;
    let raw = v["keys"].as_array().cloned().unwrap_or_default();
    if raw.len() != parsed.keys.len() {
        return Err("the key set is not a JWK Set".into());
    }
    Ok(KeySet { parsed, raw })
}

/// What a caller wants from a set.
#[derive(Debug, Clone, Copy)]
enum Wanted<'a> {
    /// The signature key of this `kid`, or the set's only one.
    Signature(Option<&'a str>),
    /// The first key Tessera can encrypt to with this algorithm (RFC 7516 §4.1.1).
    Encryption(crate::model::KeyManagement),
    /// The key of a client certificate (not one marked for encryption).
    Certificate(&'a crate::public_key::PublicKeyParts),
}

fn pick(set: &KeySet, wanted: Wanted<'_>) -> Option<Found> {
    let i = match wanted {
        Wanted::Signature(kid) => pick_signing(&set.parsed, kid)?,
        // Judged on the key as published: its `alg`, `use` and `key_ops` as written.
        Wanted::Encryption(alg) => set.raw.iter().position(|k| crate::jwe::key_fits(k, alg))?,
        Wanted::Certificate(parts) => set
            .raw
            .iter()
            .position(|k| k["use"] != "enc" && parts.matches(k))?,
    };
    Some((set.parsed.keys.get(i)?.clone(), set.raw.get(i)?.clone()))
}

/// The index of the signature key for `kid`; without a kid, of the only signature key of the
/// set. Keys marked for encryption (`use: enc`) never verify signatures.
fn pick_signing(set: &JwkSet, kid: Option<&str>) -> Option<usize> {
    let mut signing = set.keys.iter().enumerate().filter(|(_, k)| {
        !matches!(
            k.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        )
    });
    match kid {
        Some(id) => signing
            .find(|(_, k)| k.common.key_id.as_deref() == Some(id))
            .map(|(i, _)| i),
        None => {
            let first = signing.next();
            if signing.next().is_some() {
                None
            } else {
                first.map(|(i, _)| i)
            }
        }
    }
}

impl JwksCache {
    fn cached(&self, uri: &str) -> Option<Fetched> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uri)
            .cloned()
    }

    /// Fetches and caches a set, one fetch per URL at a time: a caller that waited for another's
    /// fetch takes its result. A failure is cached too, so that requests naming the client
    /// cannot make Tessera call the URL more than every [`REFETCH_AFTER`] seconds.
    async fn fetch_set(
        &self,
        outbound: &dyn Outbound,
        now: Timestamp,
        uri: &str,
    ) -> Result<Arc<KeySet>, String> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            if gates.len() > 10_000 {
                gates.retain(|_, g| Arc::strong_count(g) > 1);
            }
            gates.entry(uri.to_owned()).or_default().clone()
        };
        let _turn = gate.lock().await;
        let shown = redact_url(uri);
        // Callers fetch only what is missing, stale, or older than REFETCH_AFTER; anything
        // younger was fetched while this one waited.
        if let Some((at, got)) = self.cached(uri) {
            if now.0 - at.0 < REFETCH_AFTER {
                return got.ok_or_else(|| format!("the keys at {shown} could not be fetched"));
            }
        }
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
        Ok(self
            .lookup(outbound, now, source, Wanted::Signature(kid))
            .await?
            .map(|(k, _)| k))
    }

    /// Whether `source` holds the public key `parts` (RFC 8705 §2.2: the key of a self-signed
    /// client certificate), fetched like [`JwksCache::key`].
    pub(crate) async fn same_key(
        &self,
        outbound: &dyn Outbound,
        now: Timestamp,
        source: KeySource<'_>,
        parts: &crate::public_key::PublicKeyParts,
    ) -> Result<bool, String> {
        Ok(self
            .lookup(outbound, now, source, Wanted::Certificate(parts))
            .await?
            .is_some())
    }

    /// The key of `source` to encrypt to with `alg`, fetched like [`JwksCache::key`].
    pub(crate) async fn encryption_key(
        &self,
        outbound: &dyn Outbound,
        now: Timestamp,
        source: KeySource<'_>,
        alg: crate::model::KeyManagement,
    ) -> Result<Option<Value>, String> {
        Ok(self
            .lookup(outbound, now, source, Wanted::Encryption(alg))
            .await?
            .map(|(_, raw)| raw))
    }

    async fn lookup(
        &self,
        outbound: &dyn Outbound,
        now: Timestamp,
        source: KeySource<'_>,
        wanted: Wanted<'_>,
    ) -> Result<Option<Found>, String> {
        if let Some(v) = source.inline {
            let set = parse_set(v)?;
            return Ok(pick(&set, wanted));
        }
        let Some(uri) = source.uri else {
            return Ok(None);
        };
        let set = match self.cached(uri) {
            Some((at, None)) if now.0 - at.0 < REFETCH_AFTER => {
                return Err(format!(
                    "the keys at {} could not be fetched a moment ago",
                    redact_url(uri)
                ))
            }
            Some((at, Some(set))) if now.0 - at.0 < FRESH => {
                if let Some(k) = pick(&set, wanted) {
                    return Ok(Some(k));
                }
                if now.0 - at.0 < REFETCH_AFTER {
                    return Ok(None);
                }
                self.fetch_set(outbound, now, uri).await?
            }
            _ => self.fetch_set(outbound, now, uri).await?,
        };
        Ok(pick(&set, wanted))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::outbound::OutboundError;

    /// A slow key server that counts its requests.
    #[derive(Default)]
    struct SlowKeys(AtomicUsize);

    #[async_trait]
    impl Outbound for SlowKeys {
        async fn get_json(&self, _: &str) -> Result<Value, OutboundError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Ok(json!({"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}))
        }
        async fn post_json(&self, url: &str, _: &Value) -> Result<Value, OutboundError> {
            Err(OutboundError::Refused(url.to_owned()))
        }
        async fn post_form(&self, url: &str, _: &[(&str, &str)]) -> Result<(), OutboundError> {
            Err(OutboundError::Refused(url.to_owned()))
        }
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_fetches_once() {
        let cache = Arc::new(JwksCache::default());
        let keys = Arc::new(SlowKeys::default());
        let now = Timestamp(1_000_000);
        let source = KeySource {
            inline: None,
            uri: Some("https://rp.example.com/jwks"),
        };
        let mut waiting = Vec::new();
        for i in 0..50 {
            let (cache, keys) = (cache.clone(), keys.clone());
            waiting.push(tokio::spawn(async move {
                let kid = format!("bogus-{i}");
                cache.key(&*keys, now, source, Some(&kid)).await
            }));
        }
        for w in waiting {
            assert_eq!(w.await.expect("task"), Ok(None));
        }
        assert_eq!(keys.0.load(Ordering::SeqCst), 1);
        // A later flood, once REFETCH_AFTER has passed, fetches once more.
        let later = now.plus(REFETCH_AFTER);
        for i in 0..5 {
            let kid = format!("again-{i}");
            assert_eq!(cache.key(&*keys, later, source, Some(&kid)).await, Ok(None));
        }
        assert_eq!(keys.0.load(Ordering::SeqCst), 2);
    }
}

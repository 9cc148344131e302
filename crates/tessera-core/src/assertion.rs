//! JWTs from other parties: client assertions (RFC 7523 §2.2 and §3, OIDC Core §9), JWT bearer
//! grant assertions (RFC 7523 §2.1) and trusted issuers' subject tokens (RFC 8693). Signatures
//! are checked with `jsonwebtoken` against the algorithm the header names, which must fit the
//! key (never `none`); times are judged against Tessera's clock; a `jti` is accepted once.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::model::{Artifact, ArtifactKey, ArtifactKind};
use crate::provider::Provider;
use crate::secret::{b64url_decode, sha256};
use crate::store::StoreError;

/// RFC 7515 §4.1.11: a JWS whose `crit` lists extensions the recipient does not understand
/// MUST be rejected, and `crit` must not be empty. Tessera understands no extension header
/// parameter, so a header with `crit` at all is refused.
pub(crate) fn header_acceptable(header: &Value) -> bool {
    header.is_object() && header.get("crit").is_none()
}

/// The header and claims of a compact JWS, not yet verified; `None` when it is not one, or
/// when its header is not acceptable ([`header_acceptable`]).
pub fn peek(token: &str) -> Option<(jsonwebtoken::Header, Value)> {
    if token.len() > 16 * 1024 || token.split('.').count() != 3 {
        return None;
    }
    let mut parts = token.split('.');
    let raw: Value = serde_json::from_slice(&b64url_decode(parts.next()?)?).ok()?;
    if !header_acceptable(&raw) {
        return None;
    }
    let header: jsonwebtoken::Header = serde_json::from_value(raw).ok()?;
    let payload = parts.next()?;
    let claims: Value = serde_json::from_slice(&b64url_decode(payload)?).ok()?;
    claims.is_object().then_some((header, claims))
}

/// Whether the signature verifies under `key` with `alg`, and only with `alg`.
pub(crate) fn signature_ok(token: &str, alg: Algorithm, key: &DecodingKey) -> bool {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, key, &v).is_ok()
}

/// The asymmetric algorithms a JWK may verify (HMAC keys never come from a JWK Set here).
pub(crate) fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family_ok = matches!(
        (&jwk.algorithm, alg),
        (
            P::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (P::EllipticCurve(_), Algorithm::ES256 | Algorithm::ES384)
            | (P::OctetKeyPair(_), Algorithm::EdDSA)
    );
    // A key that names its algorithm verifies only under that one.
    let named_ok = jwk
        .common
        .key_algorithm
        .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"));
    family_ok && named_ok
}

/// Verifies `token` with a JWK: the header's algorithm must fit the key.
pub(crate) fn verify_with_jwk(token: &str, alg: Algorithm, jwk: &Jwk) -> bool {
    key_fits(jwk, alg)
        && DecodingKey::from_jwk(jwk)
            .map(|k| signature_ok(token, alg, &k))
            .unwrap_or(false)
}

/// RFC 7519 §4.1.4-4.1.6 for a JWT from another party, with `skew` seconds of leeway for the
/// sender's clock (the `clock_skew` setting; 0 for a token Tessera issued itself): `exp` required
/// and not past, at most `max_ahead` seconds away (when given); `nbf` and `iat`, when present,
/// not in the future. Returns `exp` itself: what the JWT says, to cap what is issued for it
/// ([`Provider::first_use_of_jti`] adds the skew to how long a `jti` is remembered).
pub(crate) fn check_times(
    claims: &Value,
    now: Timestamp,
    skew: i64,
    max_ahead: Option<i64>,
) -> std::result::Result<Timestamp, &'static str> {
    let exp = claims["exp"].as_i64().ok_or("exp is required")?;
    let until = exp.saturating_add(skew);
    if until <= now.0 {
        return Err("the JWT has expired");
    }
    if max_ahead.is_some_and(|m| exp > now.0.saturating_add(m).saturating_add(skew)) {
        return Err("exp is too far in the future");
    }
    for c in ["nbf", "iat"] {
        if let Some(v) = claims.get(c) {
            let t = v.as_i64().ok_or("nbf and iat must be numbers")?;
            if t > now.0.saturating_add(skew) {
                return Err("the JWT is not valid yet");
            }
        }
    }
    Ok(Timestamp(exp))
}

/// Whether `aud` (a string or an array) names one of `accepted`.
pub(crate) fn audience_ok(claims: &Value, accepted: &[String]) -> bool {
    match &claims["aud"] {
        Value::String(a) => accepted.contains(a),
        Value::Array(v) => v
            .iter()
            .any(|a| a.as_str().is_some_and(|a| accepted.iter().any(|x| x == a))),
        _ => false,
    }
}

impl Provider {
    /// Remembers a `jti` of `issuer` until `exp` and the clock skew (as long as a JWT with that
    /// `exp` is accepted); false when it was seen before (a replay).
    pub(crate) async fn first_use_of_jti(
        &self,
        purpose: &str,
        issuer: &str,
        jti: &str,
        exp: Timestamp,
    ) -> Result<bool> {
        let digest = sha256(format!("{purpose}\0{issuer}\0{jti}").as_bytes());
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&digest[..8]);
        let entry = Artifact {
            key: ArtifactKey::new(prefix, digest),
            kind: ArtifactKind::SeenJti,
            client_id: issuer.chars().take(255).collect(),
            grant_id: None,
            user_id: None,
            expires_at: exp.plus(self.settings.clock_skew),
            revoked_at: None,
            consumed_at: None,
            payload: serde_json::json!({}),
        };
        match self.store.insert_artifact(&entry).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The property-test twin of the `jws_and_authorize` fuzz target's JWS part: compact JWS parsing
/// and time checks never panic, whatever the segments hold.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::b64url;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "[ -~]{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop::sample::select(vec![
                        "alg", "kid", "typ", "exp", "iat", "nbf", "iss", "aud", "x"
                    ]),
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = peek(&text);
        }

        #[test]
        fn jws_shaped_input_never_panics(
            header in json_value(),
            claims in json_value(),
            signature in proptest::collection::vec(any::<u8>(), 0..80),
            now in any::<i64>(),
            ahead in proptest::option::of(any::<i64>()),
        ) {
            let token = format!(
                "{}.{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes()),
                b64url(&signature)
            );
            if let Some((_, c)) = peek(&token) {
                prop_assert!(c.is_object());
                let _ = check_times(&c, Timestamp(now), 300, ahead);
            }
            let _ = check_times(&claims, Timestamp(now), 0, ahead);
        }
    }
}

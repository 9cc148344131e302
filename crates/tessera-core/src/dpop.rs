//! DPoP (RFC 9449): the proofs of possession Tessera checks at its token, PAR and revocation
//! endpoints and at its own protected resources (userinfo, the admin API), the server nonces it
//! hands out, and the key thumbprint (`jkt`) tokens are bound to.

use serde_json::{Map, Value};

use crate::client_auth::ClientRequest;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::provider::Provider;
use crate::secret::{b64url, b64url_decode, sha256};

/// RFC 9449 §5.1 `dpop_signing_alg_values_supported`: asymmetric algorithms only (§4.2).
pub const DPOP_ALGS: [&str; 9] = [
    "ES256", "ES384", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
];

/// RFC 9449 §11.1: seconds after its `iat` a proof is still accepted (plus the clock skew).
pub const PROOF_LIFETIME: i64 = 60;

/// Seconds each server nonce is handed out for; a nonce is accepted in its window and the next.
pub const NONCE_WINDOW: i64 = 300;

/// The longest proof read (its `jwk` holds at most an RSA-4096 key).
const MAX_PROOF: usize = 8 * 1024;

/// The longest `jti` remembered.
const MAX_JTI: usize = 256;

/// JWK members that hold private key material (RFC 7518 §6): a proof's `jwk` carries none.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof is checked against: the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The HTTP method of the request (`htm`).
    pub method: &'a str,
    /// The URL of the endpoint as Tessera publishes it (`htu`), without query or fragment.
    pub url: &'a str,
    /// The endpoint's mutual-TLS alias (RFC 8705 §5), which `htu` may name instead.
    pub alias: Option<&'a str>,
    /// At a protected resource: the access token the proof must name (`ath`).
    pub access_token: Option<&'a str>,
}

/// RFC 9449 §7.1: a proof that fails a check of §4.3.
pub(crate) fn invalid_proof(description: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorCode::InvalidDpopProof, description)
}

/// RFC 9449 §4.3 step 9: `htu` matches the endpoint's URL, compared after RFC 3986 §6.2.2 and
/// §6.2.3 normalisation (case of scheme and host, default port, dot segments), query and fragment
/// ignored.
fn same_target(htu: &str, url: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(url)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// RFC 9449 §6.1: `ath`, the base64url SHA-256 of the access token.
pub fn access_token_hash(token: &str) -> String {
    b64url(&sha256(token.as_bytes()))
}

/// The header and claims of a proof, and its key, once the signature checks out.
struct Verified {
    claims: Value,
    jwk: Map<String, Value>,
}

/// RFC 9449 §4.3 steps 2-7: a well-formed JWS of type `dpop+jwt`, an asymmetric algorithm the
/// key fits, a public key only, and a signature that verifies under it.
fn verify_signature(proof: &str) -> Result<Verified> {
    if proof.len() > MAX_PROOF {
        return Err(invalid_proof("the DPoP proof is too large"));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_proof("the DPoP proof is not a compact JWS"));
    };
    let header: Value = b64url_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| invalid_proof("the DPoP proof's header is not a JSON object"))?;
    if !crate::assertion::header_acceptable(&header) {
        return Err(invalid_proof(
            "the DPoP proof names critical header parameters Tessera does not understand",
        ));
    }
    if !header["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(invalid_proof("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg_name = header["alg"].as_str().unwrap_or("");
    if !DPOP_ALGS.contains(&alg_name) {
        return Err(invalid_proof(format!(
            "the DPoP proof's alg must be one of {}",
            DPOP_ALGS.join(", ")
        )));
    }
    let Some(jwk) = header["jwk"].as_object() else {
        return Err(invalid_proof("the DPoP proof's header has no jwk"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid_proof(
            "the DPoP proof's jwk must be a public key without private members",
        ));
    }
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(Value::Object(jwk.clone()))
        .map_err(|_| invalid_proof("the DPoP proof's jwk is not a usable public key"))?;
    let alg: jsonwebtoken::Algorithm = alg_name
        .parse()
        .map_err(|_| invalid_proof("the DPoP proof's alg is not supported"))?;
    if !crate::assertion::verify_with_jwk(proof, alg, &parsed) {
        return Err(invalid_proof(
            "the DPoP proof's signature does not verify with its jwk and alg",
        ));
    }
    let claims: Value = b64url_decode(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| invalid_proof("the DPoP proof's claims are not a JSON object"))?;
    Ok(Verified {
        claims,
        jwk: jwk.clone(),
    })
}

impl Provider {
    /// RFC 9449 §4.3: checks `proof` for the request `ctx` describes and returns the RFC 7638
    /// thumbprint (`jkt`) of its key. Its `jti` is remembered (across nodes, in the store) for as
    /// long as the proof would be accepted, so it is accepted once. With `dpop.require_nonce`,
    /// the proof must carry a nonce from [`Provider::dpop_nonce`] (§8): `use_dpop_nonce` otherwise.
    pub async fn verify_dpop(
        &self,
        proof: &str,
        ctx: ProofContext<'_>,
        now: Timestamp,
    ) -> Result<String> {
        let Verified { claims, jwk } = verify_signature(proof)?;
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
            .ok_or_else(|| invalid_proof("the DPoP proof needs a jti of 1-256 characters"))?;
        if claims["htm"].as_str() != Some(ctx.method) {
            return Err(invalid_proof(format!(
                "the DPoP proof's htm must be {}",
                ctx.method
            )));
        }
        if !claims["htu"].as_str().is_some_and(|u| {
            same_target(u, ctx.url) || ctx.alias.is_some_and(|a| same_target(u, a))
        }) {
            return Err(invalid_proof(format!(
                "the DPoP proof's htu must be {}",
                ctx.url
            )));
        }
        let skew = self.settings.clock_skew;
        let iat = claims["iat"]
            .as_i64()
            .ok_or_else(|| invalid_proof("the DPoP proof needs a numeric iat"))?;
        if iat > now.0.saturating_add(skew) {
            return Err(invalid_proof("the DPoP proof's iat is in the future"));
        }
        if iat < now.0.saturating_sub(PROOF_LIFETIME + skew) {
            return Err(invalid_proof(
                "the DPoP proof is too old; make a new one for each request",
            ));
        }
        if self.settings.dpop_require_nonce {
            let fresh = claims["nonce"]
                .as_str()
                .is_some_and(|n| self.dpop_nonce_ok(n, now));
            if !fresh {
                return Err(Error::new(
                    ErrorCode::UseDpopNonce,
                    "a DPoP nonce is required: make the proof again with the DPoP-Nonce header's value",
                ));
            }
        }
        if let Some(token) = ctx.access_token {
            if claims["ath"].as_str() != Some(access_token_hash(token).as_str()) {
                return Err(invalid_proof(
                    "the DPoP proof's ath is not the hash of the access token",
                ));
            }
        }
        let jkt = crate::keys::thumbprint(&jwk);
        if !self
            .first_use_of_jti("dpop", &jkt, jti, Timestamp(iat + PROOF_LIFETIME))
            .await?
        {
            return Err(invalid_proof(
                "the DPoP proof was used before; make a new one for each request",
            ));
        }
        Ok(jkt)
    }

    /// RFC 9449 §5: the DPoP key (its thumbprint) a client-authenticated `POST` to the endpoint
    /// at `path` proves, when it carries a proof; the proof checked first.
    pub(crate) async fn request_binding(
        &self,
        req: &ClientRequest,
        path: &str,
        now: Timestamp,
    ) -> Result<Option<String>> {
        let Some(proof) = &req.dpop else {
            return Ok(None);
        };
        let url = self.settings.endpoint(path);
        let alias = self.settings.mtls_alias(path);
        let ctx = ProofContext {
            method: "POST",
            url: &url,
            alias: alias.as_deref(),
            access_token: None,
        };
        self.verify_dpop(proof, ctx, now).await.map(Some)
    }

    /// RFC 9449 §8: the nonce handed out now in `DPoP-Nonce`: an HMAC of the time window under
    /// the master key, so every node hands out and accepts the same nonces without storing them.
    pub fn dpop_nonce(&self, now: Timestamp) -> String {
        self.nonce_of(now.0.div_euclid(NONCE_WINDOW))
    }

    fn nonce_of(&self, window: i64) -> String {
        let tag = self
            .master
            .derive(format!("dpop-nonce\0{window}").as_bytes());
        b64url(&tag[..18])
    }

    /// A nonce of this window or the one before (a client may have fetched it just before it
    /// rotated).
    fn dpop_nonce_ok(&self, nonce: &str, now: Timestamp) -> bool {
        let w = now.0.div_euclid(NONCE_WINDOW);
        [w, w - 1].iter().any(|w| {
            crate::secret::constant_time_eq(self.nonce_of(*w).as_bytes(), nonce.as_bytes())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_comparison_normalises_and_ignores_query() {
        assert!(same_target(
            "HTTPS://Example.COM:443/token?x=1#f",
            "https://example.com/token"
        ));
        assert!(same_target(
            "https://example.com/a/../token",
            "https://example.com/token"
        ));
        assert!(!same_target(
            "https://example.com/token/",
            "https://example.com/token"
        ));
        assert!(!same_target(
            "http://example.com/token",
            "https://example.com/token"
        ));
        assert!(!same_target(
            "https://example.com:8443/token",
            "https://example.com/token"
        ));
        assert!(!same_target("/token", "https://example.com/token"));
    }

    #[test]
    fn malformed_proofs_are_invalid_dpop_proof() {
        let h = |v: Value| b64url(v.to_string().as_bytes());
        let claims = h(serde_json::json!({"jti": "1"}));
        for proof in [
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!(
                "{}.{claims}.sig",
                h(serde_json::json!({"typ": "JWT", "alg": "ES256"}))
            ),
            format!(
                "{}.{claims}.sig",
                h(
                    serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "AA"}})
                )
            ),
            format!(
                "{}.{claims}.sig",
                h(serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": {}}))
            ),
            format!(
                "{}.{claims}.sig",
                h(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "crit": ["x"], "x": 1}))
            ),
            format!(
                "{}.{claims}.sig",
                h(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256",
                    "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}}))
            ),
            format!(
                "{}.{claims}.sig",
                h(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256",
                    "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}))
            ),
        ] {
            let e = verify_signature(&proof).err().expect("refused");
            assert_eq!(e.code, ErrorCode::InvalidDpopProof, "{proof}");
        }
    }
}

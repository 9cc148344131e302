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
    a.username().is_empty()
        && a.password().is_none()
        && a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// RFC 9449 §6.1: `ath`, the base64url SHA-256 of the access token.
pub fn access_token_hash(token: &str) -> String {
    b64url(&sha256(token.as_bytes()))
}

/// The encodings, sign bit aside, of the Ed25519 points of small order, canonical or not: a
/// signature under such a key can be made without any private key (RFC 8032 §5.1.7 leaves
/// them to the verifier).
const ED25519_SMALL_ORDER: [[u8; 32]; 7] = {
    let mut y1 = [0u8; 32];
    y1[0] = 1;
    let mut p_minus_1 = [0xff; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut p = p_minus_1;
    p[0] = 0xed;
    let mut p_plus_1 = p_minus_1;
    p_plus_1[0] = 0xee;
    [
        [0u8; 32],
        y1,
        p_minus_1,
        p,
        p_plus_1,
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
    ]
};

/// RFC 9449 §4.3 step 6, RFC 7518 §6.2.1: the `jwk` is a key of the algorithm's family and
/// curve, with coordinates of the curve's size (so a key has one thumbprint), and not an
/// Ed25519 point of small order.
fn key_shape_ok(jwk: &serde_json::Map<String, Value>, alg: &str) -> Result<()> {
    let bytes = |m: &str| jwk.get(m).and_then(Value::as_str).and_then(b64url_decode);
    let (kty, crv) = (
        jwk.get("kty").and_then(Value::as_str),
        jwk.get("crv").and_then(Value::as_str),
    );
    let ok = match alg {
        "ES256" | "ES384" => {
            let (curve, len) = if alg == "ES256" {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            kty == Some("EC")
                && crv == Some(curve)
                && bytes("x").is_some_and(|x| x.len() == len)
                && bytes("y").is_some_and(|y| y.len() == len)
        }
        "EdDSA" => {
            kty == Some("OKP")
                && crv == Some("Ed25519")
                && bytes("x").is_some_and(|x| {
                    let mut y = [0u8; 32];
                    if x.len() != 32 {
                        return false;
                    }
                    y.copy_from_slice(&x);
                    y[31] &= 0x7f;
                    !ED25519_SMALL_ORDER.contains(&y)
                })
        }
        _ => kty == Some("RSA"),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid_proof(format!(
            "the DPoP proof's jwk is not a valid public key for {alg}"
        )))
    }
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
    key_shape_ok(jwk, alg_name)?;
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
        // Ahead by at most the proof's own lifetime: a proof made in advance is what nonces
        // (§8, §11.1) exist to stop, and the window is kept short without them too.
        if iat > now.0.saturating_add(skew.min(PROOF_LIFETIME)) {
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
        assert!(!same_target(
            "https://user:pw@example.com/token",
            "https://example.com/token"
        ));
    }

    #[test]
    fn keys_must_fit_their_algorithm_and_curve() {
        let jwk = |v: Value| v.as_object().cloned().unwrap();
        let p256 = b64url(&[7u8; 32]);
        let ec =
            |crv: &str, x: &str| jwk(serde_json::json!({"kty": "EC", "crv": crv, "x": x, "y": x}));
        assert!(key_shape_ok(&ec("P-256", &p256), "ES256").is_ok());
        assert!(key_shape_ok(&ec("P-521", &p256), "ES256").is_err());
        assert!(key_shape_ok(&ec("P-384", &p256), "ES384").is_err());
        assert!(key_shape_ok(&ec("P-256", &p256), "RS256").is_err());
        let okp =
            |x: &[u8]| jwk(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(x)}));
        assert!(key_shape_ok(&okp(&[9u8; 32]), "EdDSA").is_ok());
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(key_shape_ok(&okp(&identity), "EdDSA").is_err());
        identity[31] = 0x80;
        assert!(
            key_shape_ok(&okp(&identity), "EdDSA").is_err(),
            "the sign bit aside"
        );
        for small in ED25519_SMALL_ORDER {
            assert!(key_shape_ok(&okp(&small), "EdDSA").is_err());
        }
        assert!(key_shape_ok(&okp(&[9u8; 31]), "EdDSA").is_err());
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

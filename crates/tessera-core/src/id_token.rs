//! ID tokens (OIDC Core §2, §3.1.3.6, §3.3.2.11): signed with the application's algorithm, or
//! HS256 under its own secret (§10.1); `at_hash` and `c_hash` bind the other artifacts.

use aws_lc_rs::digest;
use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::model::{Alg, Client, JwsAlg};
use crate::provider::Provider;
use crate::secret::b64url;
use crate::user_grant::GrantRecord;

/// OIDC Core §3.1.3.6: base64url of the left half of the hash of the ASCII value, with the hash of
/// the JWS algorithm (SHA-256 for RS256, PS256, ES256, HS256; SHA-512 for EdDSA over Ed25519).
pub fn half_hash(alg: JwsAlg, value: &str) -> String {
    let algo = match alg {
        JwsAlg::Key(Alg::EdDSA) => &digest::SHA512,
        _ => &digest::SHA256,
    };
    let d = digest::digest(algo, value.as_bytes());
    let bytes = d.as_ref();
    b64url(&bytes[..bytes.len() / 2])
}

/// What goes into one ID token besides the user's claims (no `Debug`: it holds the secret).
pub(crate) struct IdTokenParts<'a> {
    pub client: &'a Client,
    pub client_secret: Option<&'a [u8]>,
    pub sub: &'a str,
    pub grant: &'a GrantRecord,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
    pub user_claims: Map<String, Value>,
}

impl Provider {
    /// OIDC Core §2: builds and signs an ID token, then encrypts it when the application asked
    /// for that (§10.2).
    pub(crate) async fn issue_id_token(
        &self,
        p: IdTokenParts<'_>,
        now: Timestamp,
    ) -> Result<String> {
        let b = &p.client.browser;
        let alg = b.id_token_alg;
        let mut aud = vec![p.client.client_id.clone()];
        aud.extend(b.additional_audiences.iter().cloned());
        let mut claims = p.user_claims;
        let mut set = |k: &str, v: Value| {
            claims.insert(k.to_owned(), v);
        };
        set("iss", json!(self.settings.issuer));
        set("sub", json!(p.sub));
        set(
            "aud",
            if aud.len() == 1 {
                json!(aud[0])
            } else {
                json!(aud)
            },
        );
        set("exp", json!(now.plus(b.id_token_ttl).0));
        set("iat", json!(now.0));
        set("auth_time", json!(p.grant.auth_time.0));
        set("acr", json!(p.grant.acr));
        set("amr", json!(p.grant.amr));
        if !p.grant.sid.is_empty() {
            set("sid", json!(p.grant.sid));
        }
        if aud.len() > 1 {
            // OIDC Core §2: azp when the ID token has several audiences.
            set("azp", json!(p.client.client_id));
        }
        if let Some(n) = p.nonce {
            set("nonce", json!(n));
        }
        if let Some(at) = p.access_token {
            set("at_hash", json!(half_hash(alg, at)));
        }
        if let Some(c) = p.code {
            set("c_hash", json!(half_hash(alg, c)));
        }
        let claims = Value::Object(claims);
        let jws = self.sign_for((p.client, p.client_secret), alg, "JWT", &claims, now)?;
        self.seal_jwt(p.client, jws, p.client.protection.id_token(), now)
            .await
    }
}

/// RFC 7518 §3.2: HMAC-SHA256 over `header.payload`, with `typ` in the header.
pub fn sign_hs256(secret: &[u8], typ: &str, claims: &Value) -> String {
    let header = b64url(json!({"alg": "HS256", "typ": typ}).to_string().as_bytes());
    let payload = b64url(claims.to_string().as_bytes());
    let input = format!("{header}.{payload}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_example() {
        // OIDC Core Appendix A.3/A.4 style: left half of SHA-256, base64url.
        let h = half_hash(JwsAlg::Key(Alg::RS256), "jHkWEdUXMU1BwAsC4vtUsZwnNOIdLAyh");
        assert_eq!(h.len(), 22);
        assert_eq!(half_hash(JwsAlg::Key(Alg::EdDSA), "x").len(), 43);
    }
}

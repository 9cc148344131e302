//! `client_secret_jwt` and `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9): the client signs
//! a short-lived JWT with `iss` = `sub` = its client_id and `aud` = the token endpoint or the
//! issuer; HMAC with its secret, or its own key from `jwks` / `jwks_uri`. Each `jti` works once.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::assertion::{audience_ok, check_times, peek, signature_ok, verify_with_jwk};
use crate::client_auth::plausible_client_id;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::jwks::KeySource;
use crate::model::AuthMethod;
use crate::provider::{LoadedClient, Provider};

/// The replay purpose shared by every JWT a client signs for Tessera (client assertions and
/// request objects): a `jti` spent as one kind is spent as the other, so a request object that
/// leaked from a browser's address bar never authenticates its client afterwards.
pub(crate) const CLIENT_JWT: &str = "client-jwt";

/// Whether a JWT's `typ` names another kind of token (RFC 8725 §3.11): a request object
/// (`oauth-authz-req+jwt`, RFC 9101 §10.8) or anything else explicitly typed is not a client
/// assertion. Media types compare without their `application/` prefix (RFC 7515 §4.1.9).
pub(crate) fn typed_as(header: &jsonwebtoken::Header, wanted: &[&str]) -> bool {
    match header.typ.as_deref() {
        None => true,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            let short = lower.strip_prefix("application/").unwrap_or(&lower);
            wanted.contains(&short)
        }
    }
}

/// How far in the future a client assertion may expire (RFC 7523 §3 item 4: reasonably short).
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// HMAC algorithms: never for private_key_jwt; for client_secret_jwt only HS256, as the 256-bit
/// client secrets are long enough for it alone (RFC 7518 §3.2).
const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

const BAD_SIGNATURE: &str = "the signature does not verify";

fn refused(why: impl Into<String>) -> Error {
    Error::invalid_client(format!("client assertion refused: {}", why.into()))
}

impl Provider {
    /// Checks the assertion's signature with the client's secret (`client_secret_jwt`, HS256
    /// only) or its registered keys (`private_key_jwt`, never HMAC); `Err` says why not.
    async fn assertion_signature(
        &self,
        loaded: &LoadedClient,
        jwt: &str,
        header: &jsonwebtoken::Header,
    ) -> std::result::Result<(), String> {
        let alg = header.alg;
        match loaded.client.auth_method {
            AuthMethod::ClientSecretJwt if alg != Algorithm::HS256 => {
                Err(format!("{alg:?} is not HS256 (client_secret_jwt)"))
            }
            AuthMethod::PrivateKeyJwt if HMAC.contains(&alg) => {
                Err(format!("{alg:?} is not allowed for private_key_jwt"))
            }
            AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt => {
                self.client_signed(loaded, jwt, header).await
            }
            // Registered for another method: no key to check the signature with.
            other => Err(format!("the client authenticates with {}", other.as_str())),
        }
    }

    /// Whether a JWT is the client's own: HS256 with its secret, or another algorithm with one of
    /// its registered keys (`jwks` / `jwks_uri`) that the algorithm fits; never `none` or another
    /// HMAC (RFC 7518 §3.2: the 256-bit secrets are long enough for HS256 alone). `Err` says why not.
    pub(crate) async fn client_signed(
        &self,
        loaded: &LoadedClient,
        jwt: &str,
        header: &jsonwebtoken::Header,
    ) -> std::result::Result<(), String> {
        let c = &loaded.client;
        // FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA only.
        let fapi_ok = matches!(
            header.alg,
            Algorithm::PS256 | Algorithm::ES256 | Algorithm::EdDSA
        );
        if c.fapi2() && !fapi_ok {
            return Err(format!(
                "{:?}: a FAPI 2.0 client signs with PS256, ES256 or EdDSA",
                header.alg
            ));
        }
        let verified = match header.alg {
            Algorithm::HS256 => {
                let secret = loaded.secret.as_deref().ok_or("the client has no secret")?;
                signature_ok(jwt, Algorithm::HS256, &DecodingKey::from_secret(secret))
            }
            alg if HMAC.contains(&alg) => return Err(format!("{alg:?}: HMAC is HS256 only")),
            alg => {
                let source = KeySource {
                    inline: c.federation.jwks.as_ref(),
                    uri: c.federation.jwks_uri.as_deref(),
                };
                if source.inline.is_none() && source.uri.is_none() {
                    return Err("the client registered no keys".into());
                }
                let key = self
                    .jwks
                    .key(&*self.outbound, self.now(), source, header.kid.as_deref())
                    .await?
                    .ok_or("no registered key matches the kid")?;
                verify_with_jwk(jwt, alg, &key)
            }
        };
        if verified {
            Ok(())
        } else {
            Err(BAD_SIGNATURE.into())
        }
    }

    /// The audiences a client assertion may name: the token endpoint, the issuer, and (RFC 9126
    /// §2) the pushed authorization request endpoint.
    pub(crate) fn assertion_audiences(&self) -> Vec<String> {
        vec![
            self.settings.endpoint("/token"),
            self.settings.issuer.clone(),
            self.settings.endpoint("/par"),
        ]
    }

    /// RFC 7523 §3: authenticates the client that signed `jwt`.
    pub(crate) async fn client_by_assertion(
        &self,
        jwt: &str,
        body_client_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Arc<LoadedClient>> {
        let (header, claims) = peek(jwt).ok_or_else(|| refused("not a signed JWT"))?;
        if !typed_as(&header, &["jwt", "client-authentication+jwt"]) {
            return Err(refused("its typ names another kind of token"));
        }
        let iss = claims["iss"]
            .as_str()
            .ok_or_else(|| refused("iss is required"))?;
        // RFC 7523 §3 items 1-2: iss and sub are both the client_id.
        if claims["sub"].as_str() != Some(iss) {
            return Err(refused("sub must equal iss (the client_id)"));
        }
        if body_client_id.is_some_and(|b| b != iss) {
            return Err(refused("client_id differs from the assertion's iss"));
        }
        // Unknown, disabled, and signed wrongly all read the same.
        if !plausible_client_id(iss) {
            return Err(refused(BAD_SIGNATURE));
        }
        let loaded = self
            .client(iss)
            .await?
            .filter(|l| l.client.enabled)
            .ok_or_else(|| refused(BAD_SIGNATURE))?;
        // Until the signature verifies, the caller has proved nothing: every failure reads the
        // same, so the answer tells neither the client's method nor its key set's state.
        if let Err(why) = self.assertion_signature(&loaded, jwt, &header).await {
            tracing::debug!(client_id = %iss, why, "client assertion refused");
            return Err(refused(BAD_SIGNATURE));
        }
        // RFC 7523 §3 item 3: the audience is this authorization server, and only it (an array
        // naming others too is refused: audience injection).
        let single = match &claims["aud"] {
            serde_json::Value::Array(a) => a.len() == 1,
            _ => true,
        };
        if !single || !audience_ok(&claims, &self.assertion_audiences()) {
            return Err(refused(
                "aud must be the token endpoint, the issuer or the PAR endpoint, and only that",
            ));
        }
        let exp = check_times(
            &claims,
            now,
            self.settings.clock_skew,
            Some(MAX_ASSERTION_LIFETIME),
        )
        .map_err(refused)?;
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| refused("jti is required"))?;
        if !self.first_use_of_jti(CLIENT_JWT, iss, jti, exp).await? {
            return Err(refused("this jti was already used"));
        }
        Ok(loaded)
    }
}

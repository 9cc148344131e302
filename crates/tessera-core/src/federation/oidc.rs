//! Tessera as a relying party of an upstream: its metadata (OIDC Discovery §4), the authorization
//! request with PKCE (RFC 7636) and a nonce, the token request with Tessera's client
//! authentication (RFC 6749 §2.3, RFC 7523 §2.2), the ID token's validation (OIDC Core
//! §3.1.3.7), and userinfo (OIDC Core §5.3). Plain
//! OAuth 2.0 upstreams have no ID token: the user is who their userinfo endpoint says.
//! Every request goes through the one guarded outbound path.

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde_json::{json, Map, Value};

use super::{IdentityProvider, IdpProtocol, UpstreamAuth};
use crate::assertion::{audience_ok, check_times, peek, verify_with_jwk};
use crate::clock::Timestamp;
use crate::jwks::KeySource;
use crate::model::Alg;
use crate::outbound::{redact_url, Request};
use crate::provider::Provider;
use crate::secret::{b64url, random_bytes, sha256};

/// Seconds an upstream's metadata is used before it is read again.
const METADATA_FRESH: i64 = 3_600;

pub use super::metadata::Endpoints;

/// What the token endpoint answered, and what the upstream says about the user.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The ID token's claims with the userinfo answer's over them.
    pub claims: Map<String, Value>,
    /// The raw ID token: the `id_token_hint` of a logout at the upstream.
    pub id_token: Option<String>,
}

fn http_url(field: &str, v: Option<&Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.starts_with("https://") || s.starts_with("http://") => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(format!("the upstream's {field} is not an http(s) URL")),
    }
}

/// PKCE S256 (RFC 7636 §4.2): the challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

/// A fresh random value for `state`, `nonce` and the PKCE verifier.
pub fn random_value() -> String {
    b64url(&random_bytes::<32>())
}

/// The signature algorithms an upstream ID token may use: asymmetric only (an HMAC under the
/// client secret would let anyone who holds the secret mint identities).
fn id_token_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

impl Provider {
    /// The upstream's endpoints: its configured ones for plain OAuth 2.0; for OpenID Connect,
    /// its discovery document (cached an hour, read again when the configuration changed), whose
    /// `issuer` must be exactly the configured one (OIDC Discovery §4.3).
    pub(crate) async fn endpoints(
        &self,
        idp: &IdentityProvider,
        now: Timestamp,
    ) -> Result<Arc<Endpoints>, String> {
        if idp.protocol == IdpProtocol::Oauth2 {
            return Ok(Arc::new(Endpoints {
                issuer: None,
                authorization: idp.authorization_endpoint.clone().unwrap_or_default(),
                token: idp.token_endpoint.clone().unwrap_or_default(),
                userinfo: idp.userinfo_endpoint.clone(),
                jwks_uri: None,
                end_session: None,
                iss_parameter: false,
                assertion_algs: Vec::new(),
            }));
        }
        if let Some(e) =
            self.upstream_metadata
                .fresh(&idp.name, idp.updated_at, now, METADATA_FRESH)
        {
            return Ok(e);
        }
        let issuer = idp.issuer.as_deref().unwrap_or_default();
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self
            .outbound
            .get_json(&url)
            .await
            .map_err(|e| format!("the upstream's metadata could not be read: {e}"))?;
        if doc["issuer"].as_str() != Some(issuer) {
            return Err(format!(
                "the metadata at {} names another issuer",
                redact_url(&url)
            ));
        }
        let required = |field: &str| -> Result<String, String> {
            http_url(field, doc.get(field))?
                .ok_or_else(|| format!("the upstream's metadata has no {field}"))
        };
        let e = Endpoints {
            issuer: Some(issuer.to_owned()),
            authorization: idp
                .authorization_endpoint
                .clone()
                .map_or_else(|| required("authorization_endpoint"), Ok)?,
            token: idp
                .token_endpoint
                .clone()
                .map_or_else(|| required("token_endpoint"), Ok)?,
            userinfo: match &idp.userinfo_endpoint {
                Some(u) => Some(u.clone()),
                None => http_url("userinfo_endpoint", doc.get("userinfo_endpoint"))?,
            },
            jwks_uri: Some(required("jwks_uri")?),
            end_session: http_url("end_session_endpoint", doc.get("end_session_endpoint"))?,
            iss_parameter: doc["authorization_response_iss_parameter_supported"] == true,
            assertion_algs: doc["token_endpoint_auth_signing_alg_values_supported"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let e = Arc::new(e);
        self.upstream_metadata
            .put(&idp.name, idp.updated_at, now, e.clone());
        Ok(e)
    }

    /// OIDC Core §3.1.2.1: where the browser goes to sign in at the upstream.
    pub(crate) fn upstream_authorization_url(
        &self,
        idp: &IdentityProvider,
        ep: &Endpoints,
        state: &str,
        nonce: &str,
        verifier: &str,
        login_hint: Option<&str>,
    ) -> String {
        let mut url = match url::Url::parse(&ep.authorization) {
            Ok(u) => u,
            Err(_) => return ep.authorization.clone(),
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &idp.client_id)
                .append_pair("redirect_uri", &self.federation_callback(&idp.name))
                .append_pair("scope", &idp.scopes.join(" "))
                .append_pair("state", state)
                .append_pair("code_challenge", &s256(verifier))
                .append_pair("code_challenge_method", "S256");
            if idp.protocol == IdpProtocol::Oidc {
                q.append_pair("nonce", nonce);
            }
            if let Some(h) = login_hint {
                q.append_pair("login_hint", h);
            }
        }
        url.to_string()
    }

    /// Where an upstream sends the browser back (registered there as Tessera's redirect URI).
    pub fn federation_callback(&self, idp: &str) -> String {
        self.federation_endpoint(idp, "callback")
    }

    /// Tessera's endpoint `/federation/{idp}/{what}`.
    pub fn federation_endpoint(&self, idp: &str, what: &str) -> String {
        self.settings
            .endpoint(&format!("/federation/{}/{what}", urlencode(idp)))
    }

    /// The client authentication of a request to the upstream's token endpoint.
    fn upstream_client_auth(
        &self,
        idp: &IdentityProvider,
        ep: &Endpoints,
        form: &mut Vec<(String, String)>,
        now: Timestamp,
    ) -> Result<Option<String>, String> {
        let secret = || -> Result<String, String> {
            let c = idp
                .secret_ciphertext
                .as_deref()
                .ok_or("the identity provider has no client secret")?;
            let plain = self
                .master
                .decrypt(&secret_context(&idp.name), c)
                .map_err(|_| "the identity provider's client secret cannot be read".to_owned())?;
            String::from_utf8(plain).map_err(|_| "the client secret is not text".to_owned())
        };
        form.push(("client_id".into(), idp.client_id.clone()));
        match idp.auth_method {
            UpstreamAuth::None => Ok(None),
            UpstreamAuth::ClientSecretPost => {
                form.push(("client_secret".into(), secret()?));
                Ok(None)
            }
            UpstreamAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: each part form-urlencoded before base64.
                let pair = format!("{}:{}", urlencode(&idp.client_id), urlencode(&secret()?));
                Ok(Some(format!(
                    "Basic {}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair)
                )))
            }
            UpstreamAuth::PrivateKeyJwt => {
                let keys = self.keys();
                let offered: Vec<Alg> = if ep.assertion_algs.is_empty() {
                    vec![Alg::RS256]
                } else {
                    ep.assertion_algs
                        .iter()
                        .filter_map(|a| Alg::parse(a))
                        .collect()
                };
                let key = offered
                    .iter()
                    .find_map(|a| keys.signer(*a, now).cloned())
                    .ok_or("no signing key of an algorithm the upstream accepts")?;
                let claims = json!({
                    "iss": idp.client_id, "sub": idp.client_id, "aud": ep.token,
                    "jti": random_value(), "iat": now.0, "exp": now.0 + 60,
                });
                let jwt = key
                    .sign_jwt_typed("JWT", &claims)
                    .map_err(|e| format!("the client assertion could not be signed: {e}"))?;
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion".into(), jwt));
                Ok(None)
            }
        }
    }

    /// OIDC Core §3.1.3: redeems the code, validates the ID token, reads userinfo; what the
    /// upstream says about the user.
    pub(crate) async fn redeem_upstream_code(
        &self,
        idp: &IdentityProvider,
        ep: &Endpoints,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<Upstream, String> {
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            (
                "redirect_uri".to_owned(),
                self.federation_callback(&idp.name),
            ),
            ("code_verifier".to_owned(), verifier.to_owned()),
        ];
        let authorization = self.upstream_client_auth(idp, ep, &mut form, now)?;
        let res = self
            .outbound
            .send(&Request {
                url: ep.token.clone(),
                form: Some(form),
                authorization,
                accept: "application/json",
                max_bytes: None,
                json: None,
            })
            .await
            .map_err(|e| format!("the upstream's token endpoint failed: {e}"))?;
        let body = res.json().unwrap_or_default();
        if !res.is_success() {
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error code");
            return Err(format!(
                "the upstream's token endpoint answered {} ({})",
                res.status,
                error.chars().take(100).collect::<String>()
            ));
        }
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or("the upstream's token answer has no access_token")?;
        let (mut claims, id_token) = match idp.protocol {
            IdpProtocol::Oidc => {
                let raw = body
                    .get("id_token")
                    .and_then(Value::as_str)
                    .ok_or("the upstream's token answer has no id_token")?;
                (
                    self.verify_upstream_id_token(
                        ep,
                        raw,
                        Some(nonce),
                        std::slice::from_ref(&idp.client_id),
                        now,
                    )
                    .await?,
                    Some(raw.to_owned()),
                )
            }
            IdpProtocol::Oauth2 => (Map::new(), None),
            IdpProtocol::Saml => return Err("a SAML provider has no token endpoint".into()),
        };
        if idp.use_userinfo || idp.protocol == IdpProtocol::Oauth2 {
            let info = self.upstream_userinfo(ep, access_token).await?;
            // OIDC Core §5.3.2: the userinfo `sub` must be the ID token's.
            if let Some(sub) = claims.get("sub") {
                if info.get("sub") != Some(sub) {
                    return Err("the upstream's userinfo names another subject".into());
                }
            }
            for (k, v) in info {
                if !matches!(k.as_str(), "iss" | "aud" | "nonce" | "amr" | "acr") {
                    claims.insert(k, v);
                }
            }
        }
        Ok(Upstream { claims, id_token })
    }

    /// OIDC Core §3.1.3.7: an ID token of the upstream: signed with one of its published keys
    /// under the algorithm the key fits (never `none` or an HMAC), issued by it, for Tessera's
    /// client there, unexpired, and (at a sign-in) carrying the nonce Tessera sent.
    pub(crate) async fn verify_upstream_id_token(
        &self,
        ep: &Endpoints,
        token: &str,
        nonce: Option<&str>,
        audiences: &[String],
        now: Timestamp,
    ) -> Result<Map<String, Value>, String> {
        let claims = self
            .verify_upstream_jwt(ep, token, &["JWT"], audiences, now)
            .await
            .map_err(|e| format!("the ID token {e}"))?;
        if let Some(azp) = claims.get("azp") {
            if !azp
                .as_str()
                .is_some_and(|a| audiences.iter().any(|x| x == a))
            {
                return Err("the ID token's azp is another client".into());
            }
        }
        // A logout token (Back-Channel Logout §2.4) written without a typ is not an ID token.
        if claims.contains_key("events") {
            return Err("the token carries events: it is not an ID token".into());
        }
        // OIDC Core §2: iat is required, and sub is a string (12345 and "12345" are not one).
        if !claims.get("iat").is_some_and(Value::is_i64) {
            return Err("the ID token has no iat".into());
        }
        if !claims.get("sub").is_some_and(Value::is_string) {
            return Err("the ID token's sub is not a string".into());
        }
        if let Some(n) = nonce {
            if claims.get("nonce").and_then(Value::as_str) != Some(n) {
                return Err("the ID token's nonce is not the one sent".into());
            }
        }
        Ok(claims)
    }

    /// A JWT the upstream signed for one of `audiences` (Tessera's client there, unless token
    /// exchange accepts more): its `typ` (when present) one of `types`, its signature by a key of
    /// the upstream's key set under the algorithm that key fits (never `none` or an HMAC), `iss`,
    /// `aud` and the times. The error completes "the … ".
    pub(crate) async fn verify_upstream_jwt(
        &self,
        ep: &Endpoints,
        token: &str,
        types: &[&str],
        audiences: &[String],
        now: Timestamp,
    ) -> Result<Map<String, Value>, String> {
        let (header, claims) = peek(token).ok_or("is not a signed JWT")?;
        // Another kind of JWT the upstream signs (a logout token, an access token) is not one.
        if let Some(typ) = &header.typ {
            if !types.iter().any(|t| typ.eq_ignore_ascii_case(t)) {
                return Err(format!("is a JWT of type {typ:?}"));
            }
        }
        let alg = id_token_alg(&format!("{:?}", header.alg))
            .ok_or("is signed with an algorithm that is not accepted")?;
        let jwk = self
            .jwks
            .key(
                self.outbound.as_ref(),
                now,
                KeySource {
                    inline: None,
                    uri: ep.jwks_uri.as_deref(),
                },
                header.kid.as_deref(),
            )
            .await
            .map_err(|e| format!("cannot be checked: {e}"))?
            .ok_or("is signed with a key that is not among the upstream's keys")?;
        if !verify_with_jwk(token, alg, &jwk) {
            return Err("has a signature that does not verify".into());
        }
        if claims["iss"].as_str() != ep.issuer.as_deref() {
            return Err("was issued by another issuer".into());
        }
        if !audience_ok(&claims, audiences) {
            return Err("is for another audience".into());
        }
        check_times(&claims, now, self.settings.clock_skew, None)
            .map_err(|e| format!("is out of time: {e}"))?;
        match claims {
            Value::Object(m) => Ok(m),
            _ => Err("has no claims".into()),
        }
    }

    /// OIDC Core §5.3: the upstream's userinfo answer (plain JSON only).
    pub(crate) async fn upstream_userinfo(
        &self,
        ep: &Endpoints,
        access_token: &str,
    ) -> Result<Map<String, Value>, String> {
        let url = ep
            .userinfo
            .clone()
            .ok_or("the upstream has no userinfo endpoint")?;
        let res = self
            .outbound
            .send(&Request {
                url,
                form: None,
                authorization: Some(format!("Bearer {access_token}")),
                accept: "application/json",
                max_bytes: None,
                json: None,
            })
            .await
            .map_err(|e| format!("the upstream's userinfo endpoint failed: {e}"))?;
        if !res.is_success() {
            return Err(format!(
                "the upstream's userinfo endpoint answered {}",
                res.status
            ));
        }
        res.json()
            .ok_or_else(|| "the upstream's userinfo answer is not a JSON object".into())
    }
}

/// The master-key context of an identity provider's client secret.
pub(crate) fn secret_context(idp: &str) -> String {
    format!("idp-secret\0{idp}")
}

pub(crate) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

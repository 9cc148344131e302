//! Request objects (RFC 9101, OIDC Core §6): the authorization request's parameters as the
//! claims of a JWT the client signs, passed by value in `request` (at `/authorize` or pushed to
//! `/par`) or by reference in `request_uri`, fetched through the guarded outbound path from a URL
//! the application registered. The signature is the client's: its registered keys (`jwks` /
//! `jwks_uri`, the algorithm pinned to the key) or HS256 with its secret; never `none`. `iss` is
//! the client, `aud` Tessera, `exp` near, and a `jti` works once. Only the object's parameters
//! are read.

use serde_json::Value;

use crate::assertion::{audience_ok, check_times, peek};
use crate::client_assertion::{typed_as, CLIENT_JWT};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::jwe::{decrypt, Decrypter};
use crate::model::{AuthMethod, Client, ContentEncryption, KeyManagement};
use crate::outbound::{redact_url, Request};
use crate::par::REQUEST_URI_PREFIX;
use crate::params::Params;
use crate::params::MAX_PARAMS;
use crate::provider::Provider;

/// The largest request object Tessera fetches by reference.
pub const MAX_FETCHED: usize = 16 * 1024;

/// How far ahead a request object may expire (FAPI 2.0 allows 60 minutes).
pub const MAX_REQUEST_OBJECT_LIFETIME: i64 = 3_600;

/// RFC 9101 §10.8: the media type a request object's `typ` may name.
const TYP: &str = "oauth-authz-req+jwt";

/// Claims about the JWT itself, not parameters of the request.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

fn refused(why: impl Into<String>) -> Error {
    Error::new(
        ErrorCode::InvalidRequestObject,
        format!("the request object is refused: {}", why.into()),
    )
}

/// A claim as the parameter it stands for: strings as they are, numbers and booleans as their
/// text, objects (`claims`) as JSON.
fn parameter(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(_) => Some(v.to_string()),
        _ => None,
    }
}

impl Provider {
    /// RFC 9101 §6: when `p` carries a `request` or a `request_uri` (by reference; a pushed
    /// request's was read before), the parameters its verified object holds (with the
    /// `client_id`), marked signed and keeping whether they were pushed; otherwise `None`.
    pub(crate) async fn request_object(
        &self,
        p: &Params,
        now: Timestamp,
    ) -> Result<Option<Params>> {
        let (by_value, by_reference) = (p.get("request")?, p.get("request_uri")?);
        if by_value.is_none() && by_reference.is_none() {
            return Ok(None);
        }
        // §5: the client_id outside the object is required, and the object's must be the same.
        let client_id = p.require("client_id")?;
        let loaded = self
            .client(client_id)
            .await?
            .filter(|l| l.client.enabled)
            .ok_or_else(|| Error::invalid_request("client_id is not a registered client"))?;
        let fetched;
        let jwt = match (by_value, by_reference) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_request("request and request_uri: give one"))
            }
            (Some(jwt), None) => jwt,
            (None, Some(uri)) => {
                fetched = self.fetch_request_object(&loaded.client, uri).await?;
                fetched.as_str()
            }
            (None, None) => return Ok(None),
        };
        // RFC 9101 §6.1: an encrypted object holds the signed one.
        let inner;
        let jwt = if jwt.split('.').count() == 5 {
            inner = self.decrypted_request_object(jwt, now)?;
            inner.as_str()
        } else {
            jwt
        };
        let (header, claims) = peek(jwt).ok_or_else(|| refused("it is not a signed JWT"))?;
        if !typed_as(&header, &[TYP, "jwt"]) {
            return Err(refused(format!("typ must be {TYP}")));
        }
        // A client that authenticates with its keys signs with them, not with a secret it may
        // still hold from before.
        if header.alg == jsonwebtoken::Algorithm::HS256
            && loaded.client.auth_method == AuthMethod::PrivateKeyJwt
        {
            return Err(refused(
                "a private_key_jwt client signs with its registered keys",
            ));
        }
        if let Err(why) = self.client_signed(&loaded, jwt, &header).await {
            tracing::debug!(client_id, why, "request object refused");
            return Err(refused(
                "its signature does not verify with the client's keys",
            ));
        }
        if claims["iss"].as_str() != Some(client_id) {
            return Err(refused("iss must be the client_id"));
        }
        if claims
            .get("client_id")
            .is_some_and(|c| c.as_str() != Some(client_id))
        {
            return Err(refused("its client_id differs from the request's"));
        }
        if !audience_ok(&claims, std::slice::from_ref(&self.settings.issuer)) {
            return Err(refused("aud must be the issuer"));
        }
        let exp = check_times(
            &claims,
            now,
            self.settings.clock_skew,
            Some(MAX_REQUEST_OBJECT_LIFETIME),
        )
        .map_err(refused)?;
        if let Some(jti) = claims.get("jti") {
            let jti = jti
                .as_str()
                .filter(|j| !j.is_empty() && j.len() <= 256)
                .ok_or_else(|| refused("jti must be a string"))?;
            if !self
                .first_use_of_jti(CLIENT_JWT, client_id, jti, exp)
                .await?
            {
                return Err(refused("this jti was already used"));
            }
        }
        if claims.as_object().is_some_and(|o| o.len() > MAX_PARAMS) {
            return Err(refused("it holds too many claims"));
        }
        let mut pairs = vec![("client_id".to_owned(), client_id.to_owned())];
        for (name, value) in claims.as_object().into_iter().flatten() {
            if JWT_CLAIMS.contains(&name.as_str()) || name == "client_id" {
                continue;
            }
            if name == "request" || name == "request_uri" {
                return Err(refused(format!("it cannot hold {name}")));
            }
            let value = parameter(value)
                .ok_or_else(|| refused(format!("{name} is not a parameter value")))?;
            pairs.push((name.clone(), value));
        }
        let mut expanded = Params::from_pairs(pairs).into_signed();
        if p.is_pushed() {
            expanded = expanded.into_pushed();
        }
        Ok(Some(expanded))
    }

    /// RFC 9101 §6.1, RFC 7516: the signed request object inside a JWE encrypted to one of
    /// Tessera's encryption keys (ECDH-ES on P-256, as published in the JWKS).
    fn decrypted_request_object(&self, jwe: &str, now: Timestamp) -> Result<String> {
        let kid = jwe
            .split('.')
            .next()
            .and_then(crate::secret::b64url_decode)
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_owned));
        let ring = self.keys();
        let algs = [
            KeyManagement::EcdhEs,
            KeyManagement::EcdhEsA128Kw,
            KeyManagement::EcdhEsA256Kw,
        ];
        for key in ring.encryption_keys(now, kid.as_deref()) {
            let opened = decrypt(
                jwe,
                Decrypter::Ec(key.private()),
                &algs,
                &ContentEncryption::ALL,
            );
            if let Some((_, plain)) = opened {
                let signed = String::from_utf8(plain)
                    .map_err(|_| refused("what it encrypts is not a signed JWT"))?;
                if signed.split('.').count() != 3 {
                    return Err(refused("what it encrypts is not a signed JWT"));
                }
                return Ok(signed);
            }
        }
        Err(refused(
            "it cannot be decrypted with Tessera's encryption keys (ECDH-ES, the keys with use enc in the JWKS)",
        ))
    }

    /// RFC 9101 §5.2, OIDC Core §6.2: the request object at `uri`, which the application must
    /// have registered (matched exactly, any fragment aside), fetched through the guarded
    /// outbound path; at most [`MAX_FETCHED`] bytes, a 2xx answer.
    async fn fetch_request_object(&self, client: &Client, uri: &str) -> Result<String> {
        let bad = |why: String| Error::new(ErrorCode::InvalidRequestUri, why);
        if uri.starts_with(REQUEST_URI_PREFIX) {
            return Err(bad("the pushed request_uri was read already".into()));
        }
        let base = uri.split_once('#').map_or(uri, |(b, _)| b);
        if !client.browser.request_uris.iter().any(|r| r == base) {
            return Err(bad(
                "the request_uri is not one the application registered (request_uris)".into(),
            ));
        }
        let shown = redact_url(base);
        let answer = self
            .outbound
            .send(&Request {
                url: base.to_owned(),
                form: None,
                authorization: None,
                accept: "application/oauth-authz-req+jwt, application/jwt",
                max_bytes: Some(MAX_FETCHED),
                json: None,
            })
            .await
            .map_err(|e| {
                tracing::warn!(uri = %shown, error = %e, "request object could not be fetched");
                // Why stays in the log: the page must not tell a stranger what the application's
                // host resolves to or how it answered.
                bad(format!(
                    "the request object at {shown} could not be fetched"
                ))
            })?;
        if !answer.is_success() {
            return Err(bad(format!(
                "the request object at {shown} could not be fetched (status {})",
                answer.status
            )));
        }
        if answer.body.len() > MAX_FETCHED {
            return Err(bad(format!("the request object at {shown} is too large")));
        }
        String::from_utf8(answer.body)
            .map(|s| s.trim().to_owned())
            .map_err(|_| bad(format!("the request object at {shown} is not text")))
    }
}

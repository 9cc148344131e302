//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3.1):
//! `client_secret_basic` and `client_secret_post`, exactly one method per request.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::{Error, ErrorCode, Result};
use crate::model::AuthMethod;
use crate::params::Params;
use crate::provider::{LoadedClient, Provider};
use crate::secret::constant_time_eq;

/// What a request to a client-authenticated endpoint carries: the `Authorization` header and the form.
#[derive(Default)]
pub struct ClientRequest {
    pub authorization: Option<String>,
    pub params: Params,
    /// The caller's network address (for throttling the password grant).
    pub address: String,
    /// RFC 9449 §4.1: the request's `DPoP` header (one at most), a proof not yet checked.
    pub dpop: Option<String>,
    /// RFC 8705: the TLS client certificate (DER) of the connection, or of a trusted proxy's.
    pub certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = self.authorization.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClientRequest")
            .field("authorization", &auth)
            .field("dpop", &self.dpop.is_some())
            .field("certificate", &self.certificate.is_some())
            .field("params", &self.params)
            .finish()
    }
}

/// What an endpoint answered, and the client the answer is for: the client that authenticated
/// in the request (or, at userinfo, the client the access token was issued to); none when that
/// failed. It decides which browser origins may read the answer (CORS).
#[derive(Debug)]
pub struct Answered<T> {
    pub client_id: Option<String>,
    pub result: Result<T>,
}

impl<T> Answered<T> {
    pub(crate) fn anonymous(e: Error) -> Answered<T> {
        Answered {
            client_id: None,
            result: Err(e),
        }
    }

    pub(crate) fn for_client(client_id: &str, result: Result<T>) -> Answered<T> {
        Answered {
            client_id: Some(client_id.to_owned()),
            result,
        }
    }
}

/// Credentials as presented, before they are checked.
#[derive(PartialEq, Eq)]
struct Presented {
    method: AuthMethod,
    client_id: String,
    secret: String,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("method", &self.method)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The one description for every failed authentication: it does not say which part was wrong.
const FAILED: &str = "client authentication failed";

/// Whether `id` could be a registered client_id (1-255 visible ASCII characters): anything else
/// is refused before it reaches the store or the client cache.
pub fn plausible_client_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// RFC 6749 §2.3.1: the client identifier and secret are form-urlencoded before base64.
fn percent_decode(s: &str) -> String {
    // Nothing to decode (a generated ID or secret): the text itself, as the decoder would give it.
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    // One value: a raw `&` is part of it, not the start of another pair that would be dropped.
    form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// RFC 6749 §2.3.1, RFC 7617: `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
pub fn parse_basic(header: &str) -> Result<Option<(String, String)>> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = STANDARD
        .decode(rest.trim())
        .map_err(|_| Error::invalid_client("the Basic credentials are not valid base64"))?;
    let text = String::from_utf8(raw)
        .map_err(|_| Error::invalid_client("the Basic credentials are not UTF-8"))?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| Error::invalid_client("the Basic credentials have no ':' separator"))?;
    Ok(Some((percent_decode(id), percent_decode(secret))))
}

/// RFC 7521 §4.2 `client_assertion_type` for JWTs.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client assertion as presented: the JWT and the body's client_id, if any.
struct PresentedAssertion {
    jwt: String,
    client_id: Option<String>,
}

/// RFC 7521 §4.2: the assertion parameters, when the request uses them.
fn presented_assertion(req: &ClientRequest) -> Result<Option<PresentedAssertion>> {
    let jwt = req.params.get("client_assertion")?;
    let ty = req.params.get("client_assertion_type")?;
    if jwt.is_none() && ty.is_none() {
        return Ok(None);
    }
    if req.authorization.is_some() || req.params.contains("client_secret") {
        return Err(Error::invalid_request(
            "the client used more than one authentication method (client_assertion and a secret)",
        ));
    }
    if ty != Some(ASSERTION_TYPE) {
        return Err(Error::invalid_request(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let jwt = jwt.ok_or_else(|| Error::invalid_request("client_assertion is required"))?;
    Ok(Some(PresentedAssertion {
        jwt: jwt.to_owned(),
        client_id: req.params.get("client_id")?.map(str::to_owned),
    }))
}

fn presented(req: &ClientRequest) -> Result<Presented> {
    let basic = match &req.authorization {
        Some(h) => parse_basic(h)?,
        None => None,
    };
    let post_secret = req.params.get("client_secret")?;
    let body_id = req.params.get("client_id")?;
    match (basic, post_secret) {
        (Some(_), Some(_)) => Err(Error::invalid_request(
            "the client used more than one authentication method (Authorization header and client_secret)",
        )),
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(Error::invalid_request("client_id in the body differs from the authenticated client"));
            }
            Ok(Presented { method: AuthMethod::ClientSecretBasic, client_id: id, secret })
        }
        (None, Some(secret)) => {
            let id = body_id.ok_or_else(|| Error::invalid_request("client_secret requires client_id in the body"))?;
            Ok(Presented { method: AuthMethod::ClientSecretPost, client_id: id.to_owned(), secret: secret.to_owned() })
        }
        // RFC 6749 §3.2.1: a public client identifies itself with client_id alone.
        (None, None) => match body_id {
            Some(id) => Ok(Presented { method: AuthMethod::None, client_id: id.to_owned(), secret: String::new() }),
            None => Err(Error::new(ErrorCode::InvalidClient, "client authentication is required")),
        },
    }
}

impl Provider {
    /// Authenticates the client of a request with the method it is registered with.
    pub async fn authenticate_client(&self, req: &ClientRequest) -> Result<Arc<LoadedClient>> {
        if let Some(a) = presented_assertion(req)? {
            return self
                .client_by_assertion(&a.jwt, a.client_id.as_deref(), self.now())
                .await;
        }
        let p = presented(req)?;
        if !plausible_client_id(&p.client_id) {
            return Err(Error::invalid_client(FAILED));
        }
        let Some(loaded) = self.client(&p.client_id).await? else {
            return Err(Error::invalid_client(FAILED));
        };
        let c = &loaded.client;
        let now = self.now();
        let mut method = p.method;
        let secret_ok = match p.method {
            // RFC 8705 §2: the client_id alone, and the certificate of the connection.
            AuthMethod::None if c.auth_method.is_certificate() => {
                method = c.auth_method;
                self.certificate_authenticates(c, req.certificate.as_deref(), now)
                    .await
            }
            AuthMethod::None => c.auth_method == AuthMethod::None,
            _ => {
                if let Some(secs) = self.client_throttled(&loaded, now).await? {
                    return Err(Error::throttled(ErrorCode::InvalidClient, secs));
                }
                let ok = loaded
                    .secret
                    .as_deref()
                    .is_some_and(|s| constant_time_eq(s, p.secret.as_bytes()));
                if !ok && loaded.secret.is_some() {
                    if let Some(secs) = self.client_failed(&loaded, now).await? {
                        return Err(Error::throttled(ErrorCode::InvalidClient, secs));
                    }
                }
                ok
            }
        };
        if !secret_ok {
            return Err(Error::invalid_client(FAILED));
        }
        if !c.enabled {
            return Err(Error::invalid_client("the client is disabled"));
        }
        if c.auth_method != method {
            return Err(Error::invalid_client(format!(
                "the client is registered for {} authentication, not {}",
                c.auth_method.as_str(),
                method.as_str()
            )));
        }
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(auth: Option<&str>, body: &str) -> ClientRequest {
        ClientRequest {
            authorization: auth.map(str::to_owned),
            params: Params::parse(body.as_bytes()).unwrap(),
            address: String::new(),
            dpop: None,
            certificate: None,
        }
    }

    #[test]
    fn basic_is_urldecoded() {
        let h = format!("Basic {}", STANDARD.encode("my%3Aid:p%40ss+word"));
        let p = presented(&req(Some(&h), "")).unwrap();
        assert_eq!(
            (p.client_id.as_str(), p.secret.as_str()),
            ("my:id", "p@ss word")
        );
        assert_eq!(p.method, AuthMethod::ClientSecretBasic);
    }

    /// A raw `&` belongs to the value: nothing after it is cut off, so a secret is accepted in
    /// one form only.
    #[test]
    fn basic_keeps_a_raw_ampersand() {
        let basic = |raw: &str| parse_basic(&format!("Basic {}", STANDARD.encode(raw)));
        assert_eq!(
            basic("x&y:s&t+u").unwrap(),
            Some(("x&y".to_owned(), "s&t u".to_owned()))
        );
        assert_eq!(
            basic("x:secret&junk").unwrap(),
            Some(("x".to_owned(), "secret&junk".to_owned()))
        );
        assert_eq!(
            basic("a%26b:c%2Bd&e").unwrap(),
            Some(("a&b".to_owned(), "c+d&e".to_owned()))
        );
    }

    #[test]
    fn two_methods_is_invalid_request() {
        let h = format!("Basic {}", STANDARD.encode("a:b"));
        let e = presented(&req(Some(&h), "client_id=a&client_secret=b")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn post_and_missing() {
        let p = presented(&req(None, "client_id=a&client_secret=b")).unwrap();
        assert_eq!(p.method, AuthMethod::ClientSecretPost);
        assert_eq!(
            presented(&req(None, "client_id=a")).unwrap().method,
            AuthMethod::None
        );
        assert_eq!(
            presented(&req(None, "")).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        assert_eq!(
            presented(&req(Some("Basic !!!"), "")).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        assert_eq!(
            presented(&req(Some("Basic"), "")).unwrap_err().code,
            ErrorCode::InvalidClient
        );
    }

    proptest! {
        #[test]
        fn basic_parser_never_panics(h in ".{0,300}") {
            let _ = parse_basic(&h);
        }

        #[test]
        fn decoding_skips_only_what_has_nothing_to_decode(s in "[a-zA-Z0-9%+=;: _~.-]{0,40}") {
            let parsed = form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            prop_assert_eq!(percent_decode(&s), parsed);
        }
    }
}

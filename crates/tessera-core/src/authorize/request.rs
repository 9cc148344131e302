//! The authorization request (RFC 6749 §4.1.1, §4.2.1; OIDC Core §3.1.2.1): parsed and checked in
//! the order that decides where an error may go. Until `client_id` and `redirect_uri` are known
//! good, errors are shown as a page; after that they go back to the client (§3.1.2.6).

use std::sync::Arc;

use serde_json::Value;

use crate::client_auth::plausible_client_id;
use crate::error::{Error, ErrorCode, Result};
use crate::grant::parse_resources;
use crate::model::{ClientType, GrantType, JwsAlg, OPENID_SCOPES};
use crate::params::{parse_scope, Params};
use crate::pkce;
use crate::provider::{LoadedClient, Provider};
use crate::response_type::canonical_response_type;
use crate::secret::b64url_decode;
use crate::uri::redirect_uri_matches;

/// OAuth 2.0 Multiple Response Type Encoding §2.1 and Form Post Response Mode §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// OIDC Core §3.1.2.1 `prompt` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    None,
    Login,
    Consent,
    SelectAccount,
}

/// Where an error or a response goes once the redirect URI is trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    /// JARM (`response_mode` `jwt`, `query.jwt`, …): the response is one JWT for this client.
    pub jarm: Option<String>,
    /// RFC 8628: the device authorization request decided here (its device code's key, base64url),
    /// with the user code shown to the user.
    pub device: Option<DeviceTarget>,
}

/// The device authorization request an authorization decides (RFC 8628 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTarget {
    pub device_key: String,
    pub user_code: String,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Arc<LoadedClient>,
    pub target: Target,
    /// The request named `redirect_uri` (RFC 6749 §4.1.3: then the token request must too).
    pub redirect_uri_given: bool,
    /// Canonical order: code, id_token, token.
    pub response_type: &'static str,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub prompt: Vec<Prompt>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint`.
    pub hint_sub: Option<String>,
    /// The level asked for (`acr_values`, or the `claims` parameter's `acr`).
    pub acr: AcrRequest,
    pub ui_locales: Vec<String>,
    pub claims: Option<Value>,
    pub pkce: Option<(String, String)>,
    pub resources: Vec<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is to be bound to.
    pub dpop_jkt: Option<String>,
}

impl AuthorizeRequest {
    pub fn wants(&self, part: &str) -> bool {
        self.response_type.split(' ').any(|p| p == part)
    }
    pub fn is_openid(&self) -> bool {
        self.scope.iter().any(|s| s == "openid")
    }
}

/// RFC 9449 §10: `dpop_jkt`, an RFC 7638 SHA-256 thumbprint (43 base64url characters).
fn dpop_jkt(p: &Params) -> Result<Option<String>> {
    match p.get("dpop_jkt")? {
        None => Ok(None),
        Some(j) if crate::secret::b64url_decode(j).is_some_and(|b| b.len() == 32) => {
            Ok(Some(j.to_owned()))
        }
        Some(_) => Err(Error::invalid_request(
            "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK (RFC 7638)",
        )),
    }
}

/// Why a request was refused, and whether the client may be told through its redirect URI.
#[derive(Debug)]
pub enum Rejection {
    /// Shown to the user: the redirect URI cannot be trusted.
    Page(Error),
    /// Sent back to the client.
    Redirect(Target, Error),
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        Rejection::Page(e)
    }
}

/// The authentication level a request asks for: `acr` values in order of preference, from the
/// `claims` parameter's `acr` (OIDC Core §5.5.1.1) or else `acr_values` (§3.1.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcrRequest {
    pub values: Vec<String>,
    /// Asked as an essential claim: a level that cannot be met fails the sign-in.
    pub essential: bool,
}

/// OIDC Core §5.5.1.1: "If this is an Essential Claim and the requirement cannot be met, then
/// the Authorization Server MUST treat that outcome as a failed authentication attempt." An
/// essential `acr` (in `id_token` or `userinfo`) naming no scheme's `acr` fails the request with
/// `unmet_authentication_requirements`; a voluntary one, like `acr_values` (§3.1.2.1), is not an
/// error: the ID token says what was done.
fn acr_request(
    claims: Option<&Value>,
    acr_values: Vec<String>,
    known: &[String],
) -> Result<AcrRequest> {
    for member in ["id_token", "userinfo"] {
        let Some(acr) = claims.map(|c| &c[member]["acr"]).filter(|a| !a.is_null()) else {
            continue;
        };
        // OIDC Core §5.5.1: `essential` a boolean, `value` a string, `values` an array of them.
        let malformed = |what: &str| Error::invalid_request(format!("claims.{member}.acr.{what}"));
        let essential = match &acr["essential"] {
            Value::Null => false,
            Value::Bool(b) => *b,
            _ => return Err(malformed("essential must be true or false")),
        };
        let wanted: Vec<String> = match (&acr["value"], &acr["values"]) {
            (Value::Null, Value::Null) => continue,
            (Value::String(v), Value::Null) => vec![v.clone()],
            (Value::Null, Value::Array(vs)) => vs
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| malformed("values must be strings"))
                })
                .collect::<Result<_>>()?,
            (Value::Null, _) => return Err(malformed("values must be an array of strings")),
            (Value::String(_), _) => return Err(malformed("value and values: give one")),
            _ => return Err(malformed("value must be a string")),
        };
        if essential && !wanted.iter().any(|w| known.contains(w)) {
            return Err(Error::new(
                ErrorCode::UnmetAuthenticationRequirements,
                format!(
                    "the essential acr {} cannot be met; this server authenticates users at {}",
                    wanted.join(" "),
                    known.join(" ")
                ),
            ));
        }
        return Ok(AcrRequest {
            values: wanted,
            essential,
        });
    }
    Ok(AcrRequest {
        values: acr_values,
        essential: false,
    })
}

impl Provider {
    /// OIDC Core §3.1.2.1–§3.1.2.2: checks the request.
    pub async fn authorize_request(
        &self,
        p: &Params,
    ) -> std::result::Result<AuthorizeRequest, Rejection> {
        if p.is_device() {
            return self.device_request(p).await.map_err(Rejection::Page);
        }
        let client_id = p.require("client_id")?;
        if !plausible_client_id(client_id) {
            return Err(Rejection::Page(Error::invalid_request(
                "client_id is not a registered client",
            )));
        }
        let client = self
            .client(client_id)
            .await?
            .ok_or_else(|| Error::invalid_request("client_id is not a registered client"))?;
        let c = &client.client;
        if !c.enabled {
            return Err(Rejection::Page(Error::unauthorized_client(
                "the client is disabled",
            )));
        }
        let b = &c.browser;
        let redirect_uri_given = p.get("redirect_uri")?.is_some();
        let redirect_uri = match p.get("redirect_uri")? {
            Some(r) => b
                .redirect_uris
                .iter()
                .any(|reg| redirect_uri_matches(reg, r, c.client_type == ClientType::Native))
                .then(|| r.to_owned())
                .ok_or_else(|| {
                    Error::invalid_request("redirect_uri does not match a registered URI")
                })?,
            // RFC 6749 §3.1.2.3: may be left out when exactly one is registered (OIDC requires it).
            None if b.redirect_uris.len() == 1
                && !p
                    .get("scope")?
                    .unwrap_or("")
                    .split(' ')
                    .any(|s| s == "openid") =>
            {
                b.redirect_uris[0].clone()
            }
            None => {
                return Err(Rejection::Page(Error::invalid_request(
                    "redirect_uri is required",
                )))
            }
        };
        let state = p.get("state")?.map(str::to_owned);
        let response_type = p.get("response_type")?.and_then(canonical_response_type);
        let default_mode = match response_type {
            Some("code") | None => ResponseMode::Query,
            Some(_) => ResponseMode::Fragment,
        };
        // JARM §2.3: `jwt` is the response type's default mode, as a JWT.
        let (mode, jwt) = match p.get("response_mode")? {
            None => (default_mode, false),
            Some("query") => (ResponseMode::Query, false),
            Some("fragment") => (ResponseMode::Fragment, false),
            Some("form_post") => (ResponseMode::FormPost, false),
            Some("jwt") => (default_mode, true),
            Some("query.jwt") => (ResponseMode::Query, true),
            Some("fragment.jwt") => (ResponseMode::Fragment, true),
            Some("form_post.jwt") => (ResponseMode::FormPost, true),
            Some(other) => {
                let t = Target {
                    redirect_uri,
                    mode: default_mode,
                    state,
                    jarm: None,
                    device: None,
                };
                return Err(Rejection::Redirect(
                    t,
                    Error::invalid_request(format!("response_mode {other} is not supported")),
                ));
            }
        };
        let target = Target {
            redirect_uri,
            mode,
            state,
            jarm: jwt.then(|| c.client_id.clone()),
            device: None,
        };
        let fail = |e: Error| Rejection::Redirect(target.clone(), e);
        self.check_request(p, &client, response_type, mode)
            .map(|parts| AuthorizeRequest {
                client: client.clone(),
                target: target.clone(),
                redirect_uri_given,
                ..parts
            })
            .map_err(fail)
    }

    /// Everything after the redirect URI is trusted.
    fn check_request(
        &self,
        p: &Params,
        client: &Arc<LoadedClient>,
        response_type: Option<&'static str>,
        mode: ResponseMode,
    ) -> Result<AuthorizeRequest> {
        let c = &client.client;
        // RFC 9126 §5: an application (or the server) that requires pushed requests takes no other.
        // Tessera's own Admin Portal and account page build their requests themselves, so the
        // server-wide requirement leaves them be (they would lock everyone out otherwise).
        let own = [crate::admin::PORTAL_CLIENT, crate::admin::ACCOUNT_CLIENT]
            .contains(&c.client_id.as_str());
        if !p.is_pushed()
            && (c.browser.require_pushed_authorization_requests
                || (self.settings.require_pushed_requests && !own))
        {
            return Err(Error::invalid_request(
                "this application's authorization requests must be pushed first (PAR, RFC 9126): POST them to the pushed_authorization_request_endpoint",
            ));
        }
        // RFC 9101 §10.5: an application that requires signed request objects takes no other.
        if !p.is_signed() && c.browser.require_signed_request_object {
            return Err(Error::invalid_request(
                "this application's authorization requests must be signed request objects (the request parameter, RFC 9101)",
            ));
        }
        let raw_type = p.require("response_type")?;
        let response_type = response_type.ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {raw_type} is not supported"),
            )
        })?;
        if !c.browser.response_types.iter().any(|r| r == response_type) {
            return Err(Error::unauthorized_client(format!(
                "the client is not allowed to use response_type {response_type}"
            )));
        }
        if response_type.contains("code") && !c.grant_types.contains(&GrantType::AuthorizationCode)
        {
            return Err(Error::unauthorized_client(
                "the client may not use the authorization_code grant",
            ));
        }
        let returns_tokens = response_type != "code";
        if returns_tokens && mode == ResponseMode::Query {
            // Multiple Response Type Encoding §2.1: tokens never travel in the query.
            return Err(Error::invalid_request(
                "response_mode query cannot carry tokens; use fragment or form_post",
            ));
        }
        let scope = match p.get("scope")? {
            Some(s) => parse_scope(s).map_err(|e| Error::invalid_scope(e.description))?,
            None => self.granted_scope(c, None, &c.apis)?,
        };
        for s in &scope {
            let standard = OPENID_SCOPES.contains(&s.as_str());
            if !(standard || c.scopes.contains(s)) {
                return Err(Error::invalid_scope(format!(
                    "scope {s} is not allowed for this client"
                )));
            }
        }
        let openid = scope.iter().any(|s| s == "openid");
        if response_type.contains("id_token") && !openid {
            return Err(Error::invalid_scope(
                "response_type id_token requires the openid scope",
            ));
        }
        let nonce = p.get("nonce")?.map(str::to_owned);
        if response_type.contains("id_token") && nonce.is_none() {
            // OIDC Core §3.2.2.1, §3.3.2.11: nonce is required when the ID token comes from the
            // authorization endpoint.
            return Err(Error::invalid_request(
                "nonce is required for implicit and hybrid flows",
            ));
        }
        let mut prompt = Vec::new();
        if let Some(v) = p.get("prompt")? {
            for x in v.split(' ').filter(|x| !x.is_empty()) {
                prompt.push(match x {
                    "none" => Prompt::None,
                    "login" => Prompt::Login,
                    "consent" => Prompt::Consent,
                    "select_account" => Prompt::SelectAccount,
                    other => {
                        return Err(Error::invalid_request(format!(
                            "prompt {other} is not supported"
                        )))
                    }
                });
            }
            if prompt.contains(&Prompt::None) && prompt.len() > 1 {
                return Err(Error::invalid_request(
                    "prompt none cannot be combined with other values",
                ));
            }
        }
        let max_age = p
            .get("max_age")?
            .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0))
            .map(|v| {
                v.ok_or_else(|| Error::invalid_request("max_age must be a non-negative integer"))
            })
            .transpose()?;
        // OAuth 2.1 §4.1.1 and FAPI 2.0: S256 only, whatever the server allows.
        let pkce = pkce::parse_challenge(
            p.get("code_challenge")?,
            p.get("code_challenge_method")?,
            self.settings.pkce_plain && !c.s256_only(),
        )?;
        if pkce.is_none() && response_type.contains("code") && c.browser.pkce_required {
            return Err(Error::invalid_request(
                "code_challenge is required (PKCE, RFC 7636)",
            ));
        }
        let hint_sub = match p.get("id_token_hint")? {
            Some(t) => Some(
                self.id_token_hint(t, client)
                    .and_then(|c| c["sub"].as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        Error::invalid_request(
                            "id_token_hint is not an ID token this server issued to the client",
                        )
                    })?,
            ),
            None => None,
        };
        let claims = match p.get("claims")? {
            Some(raw) => {
                let v: Value = serde_json::from_str(raw)
                    .map_err(|_| Error::invalid_request("claims is not a JSON object"))?;
                if !v.is_object() {
                    return Err(Error::invalid_request("claims is not a JSON object"));
                }
                Some(v)
            }
            None => None,
        };
        let words = |name: &str| -> Result<Vec<String>> {
            Ok(p.get(name)?
                .map(|v| {
                    v.split(' ')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default())
        };
        let acr = acr_request(claims.as_ref(), words("acr_values")?, &self.acr_values())?;
        let resources = parse_resources(p)?;
        if !resources.is_empty() {
            self.audience(c, resources.clone())?;
        }
        Ok(AuthorizeRequest {
            client: client.clone(),
            target: Target {
                redirect_uri: String::new(),
                mode,
                state: None,
                jarm: None,
                device: None,
            },
            redirect_uri_given: true,
            response_type,
            scope,
            nonce,
            prompt,
            max_age,
            login_hint: p.get("login_hint")?.map(str::to_owned),
            hint_sub,
            acr,
            ui_locales: words("ui_locales")?,
            claims,
            pkce,
            resources,
            dpop_jkt: dpop_jkt(p)?,
        })
    }

    /// OIDC Core §3.1.2.1 `id_token_hint`: an ID token this server signed for the client (expired
    /// or not); returns its claims.
    pub(crate) fn id_token_hint(&self, token: &str, client: &LoadedClient) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, pl, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
        // An ID token, not an access (`at+jwt`) or logout (`logout+jwt`) token of this server.
        if !crate::assertion::header_acceptable(&header) || header["typ"].as_str() != Some("JWT") {
            return None;
        }
        let signed = &token.as_bytes()[..h.len() + 1 + pl.len()];
        let sig = b64url_decode(s)?;
        let ok = match header["alg"].as_str()? {
            "HS256" => {
                let secret = client.secret.as_deref()?;
                client.client.browser.id_token_alg == JwsAlg::HS256 && {
                    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                    aws_lc_rs::hmac::verify(&key, signed, &sig).is_ok()
                }
            }
            alg => {
                let keys = self.keys();
                let key = keys.by_kid(header["kid"].as_str()?)?;
                key.alg.as_str() == alg && key.verify(signed, &sig)
            }
        };
        if !ok {
            return None;
        }
        let claims: Value = serde_json::from_slice(&b64url_decode(pl)?).ok()?;
        if claims["iss"].as_str()? != self.settings.issuer {
            return None;
        }
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == &client.client.client_id,
            Value::Array(a) => a
                .iter()
                .any(|x| x.as_str() == Some(&client.client.client_id)),
            _ => false,
        };
        // Every ID token Tessera issues has exp and auth_time; its other JWTs typed JWT for an
        // application (a userinfo answer, a JARM response) have neither or no sub.
        let id_token_shaped = claims["exp"].is_i64() && claims["auth_time"].is_i64();
        (aud_ok && claims["sub"].is_string() && id_token_shaped).then_some(claims)
    }
}

//! Who calls the admin API: the access token of the `Authorization` header, `Bearer` (RFC 6750
//! §2.1) or `DPoP` with its proof (RFC 9449 §7.1), turned into core's [`Caller`] (401
//! `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce`); what the caller may do is decided
//! by the use-cases of `tessera_core::admin`, which answer 403 `insufficient_scope`.

use axum::extract::{FromRequestParts, OriginalUri};
use http::request::Parts;
use http::{HeaderMap, Method};
use tessera_core::admin::{Admin, Caller, CallerError};
use tessera_core::resource::Presented;
use tessera_core::Provider;

use super::problem::Problem;
use crate::AppState;

/// What the admin API reads of a request to know its caller: its headers, and the method and
/// path a DPoP proof names. Reads as its headers.
pub struct AdminRequest {
    pub headers: HeaderMap,
    pub method: Method,
    /// The path as the client sent it (before the admin API's prefix was taken off).
    pub path: String,
    /// RFC 8705: the client certificate of the request.
    pub certificate: Option<Vec<u8>>,
}

impl std::ops::Deref for AdminRequest {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        &self.headers
    }
}

impl FromRequestParts<AppState> for AdminRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        Ok(AdminRequest {
            headers: parts.headers.clone(),
            method: parts.method.clone(),
            path: uri.path().to_owned(),
            certificate: crate::mtls::presented_certificate(&parts.headers, &parts.extensions, s),
        })
    }
}

/// The caller of one request.
pub async fn caller(p: &Provider, req: &AdminRequest) -> Result<Caller, Problem> {
    let (dpop, token) =
        crate::bearer::presented_token(&req.headers).ok_or_else(Problem::no_token)?;
    let url = p.settings.endpoint(&req.path);
    let alias = p.settings.mtls_alias(&req.path);
    let at = crate::bearer::Target {
        method: req.method.as_str(),
        url: &url,
        alias: alias.as_deref(),
    };
    let presented =
        crate::bearer::presentation(&req.headers, (dpop, token), at, req.certificate.as_deref())
            .map_err(|why| Problem::refused_proof("invalid_dpop_proof", why))?;
    caller_for(p, presented).await
}

/// The caller an access token stands for (the Admin Portal's session holds such a token).
pub async fn caller_for_token(p: &Provider, token: &str) -> Result<Caller, Problem> {
    caller_for(p, Presented::bearer(token)).await
}

async fn caller_for(p: &Provider, presented: Presented<'_>) -> Result<Caller, Problem> {
    p.admin_caller(presented).await.map_err(|e| match e {
        CallerError::Unavailable => Problem::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "the database is unreachable; retry shortly",
        ),
        CallerError::InvalidToken(why) => Problem::unauthenticated(why),
        CallerError::Refused { code, description } => {
            Problem::refused_proof(code.as_str(), &description)
        }
    })
}

/// The administrative use-cases as the request's caller may perform them, conditional on its
/// `If-Match`.
pub async fn admin<'a>(s: &'a AppState, req: &AdminRequest) -> Result<Admin<'a>, Problem> {
    let c = caller(&s.provider, req).await?;
    Ok(s.provider.admin(c).if_match(super::if_match(req)))
}

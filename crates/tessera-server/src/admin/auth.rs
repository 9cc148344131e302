//! Who calls the admin API: the bearer token of the `Authorization` header (RFC 6750 §2.1), turned
//! into core's [`Caller`] (RFC 6750 §3.1: 401 `invalid_token`); what the caller may do is
//! decided by the use-cases of `tessera_core::admin`, which answer 403 `insufficient_scope`.

use http::HeaderMap;
use tessera_core::admin::{Admin, Caller, CallerError};
use tessera_core::Provider;

use super::problem::Problem;
use crate::AppState;

/// The caller of one request.
pub async fn caller(p: &Provider, headers: &HeaderMap) -> Result<Caller, Problem> {
    let token = crate::bearer::bearer_token(headers)
        .ok_or_else(|| Problem::unauthenticated("a bearer access token is required"))?;
    caller_for_token(p, token).await
}

/// The caller an access token stands for (the Admin Portal's session holds such a token).
pub async fn caller_for_token(p: &Provider, token: &str) -> Result<Caller, Problem> {
    p.admin_caller(token).await.map_err(|e| match e {
        CallerError::Unavailable => Problem::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "the database is unreachable; retry shortly",
        ),
        CallerError::InvalidToken(why) => Problem::unauthenticated(why),
    })
}

/// The administrative use-cases as the request's caller may perform them, conditional on its
/// `If-Match`.
pub async fn admin<'a>(s: &'a AppState, headers: &HeaderMap) -> Result<Admin<'a>, Problem> {
    let c = caller(&s.provider, headers).await?;
    Ok(s.provider.admin(c).if_match(super::if_match(headers)))
}

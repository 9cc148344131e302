//! Who calls the admin API: a Tessera access token for the admin API (`aud` = `<issuer>/admin/api`),
//! and what its scopes allow (RFC 6750 §3.1: 401 `invalid_token`, 403 `insufficient_scope`).

use std::collections::HashSet;

use http::HeaderMap;
use tessera_core::audit::Actor;
use tessera_core::Provider;

use super::problem::Problem;

/// What an operation needs; each is granted by any of its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    ConfigRead,
    ConfigWrite,
    UsersRead,
    UsersWrite,
    /// The caller's own user (`users:self`), or any user with `users:read`.
    SelfRead,
    /// The caller's own user (`users:self`), or any user with `users:write`.
    SelfWrite,
    Consents,
    Audit,
    /// What could make its holder an administrator: the admin API and its scopes, clients that
    /// may call it, imported signing keys, membership of the administrators' group.
    Administrator,
}

impl Need {
    /// The scopes that grant it; a write scope also grants reading.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Need::ConfigRead => &["administrator", "config:read", "config:write"],
            Need::ConfigWrite => &["administrator", "config:write"],
            Need::UsersRead => &["administrator", "users:read", "users:write"],
            Need::UsersWrite => &["administrator", "users:write"],
            Need::SelfRead => &["administrator", "users:read", "users:write", "users:self"],
            Need::SelfWrite => &["administrator", "users:write", "users:self"],
            Need::Consents => &["administrator", "consents"],
            Need::Audit | Need::Administrator => &["administrator"],
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug)]
pub struct Caller {
    pub actor: Actor,
    /// The user the token was issued for; `None` for a client's own token.
    pub user_id: Option<String>,
    scopes: HashSet<String>,
}

impl Caller {
    pub fn may(&self, need: Need) -> bool {
        need.scopes().iter().any(|s| self.scopes.contains(*s))
    }

    pub fn require(&self, need: Need) -> Result<(), Problem> {
        if self.may(need) {
            Ok(())
        } else {
            Err(Problem::forbidden(need.scopes()))
        }
    }
}

/// RFC 6750 §2.1: the bearer token of the `Authorization` header, checked like any access token
/// (signature or handle, expiry, revocation, client and user still in force) and for the admin API.
pub async fn caller(p: &Provider, headers: &HeaderMap) -> Result<Caller, Problem> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::unauthenticated("a bearer access token is required"))?;
    caller_for_token(p, token).await
}

/// The caller an access token stands for, if it is active and was issued for the admin API
/// (the Admin Portal's session holds such a token).
pub async fn caller_for_token(p: &Provider, token: &str) -> Result<Caller, Problem> {
    let found = p
        .active_access_token(token, None, p.now())
        .await
        .map_err(|e| match e.code {
            tessera_core::ErrorCode::TemporarilyUnavailable => Problem::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "the database is unreachable; retry shortly",
            ),
            _ => Problem::unauthenticated("the access token is invalid, expired or revoked"),
        })?;
    let Some((claims, grant)) = found else {
        return Err(Problem::unauthenticated(
            "the access token is invalid, expired or revoked",
        ));
    };
    if !claims.aud.iter().any(|a| *a == p.admin_api()) {
        return Err(Problem::unauthenticated(
            "the access token was not issued for the admin API (its aud lacks <issuer>/admin/api)",
        ));
    }
    let (actor, user_id) = match grant {
        Some(g) => (Actor::user(&g.user.id), Some(g.user.id)),
        None => (Actor::client(&claims.client_id), None),
    };
    Ok(Caller {
        actor,
        user_id,
        scopes: claims.scope.into_iter().collect(),
    })
}

//! Admin API: a user's SSO sessions and grants, listed and revoked (`users:read`/`users:write`,
//! or `users:self` for one's own, as core decides). Ending a session sends back-channel logout
//! tokens (core does).

use axum::extract::{Path, RawQuery, State};
use tessera_core::admin::paginate;

use super::auth::{admin, AdminRequest};
use super::{limit, no_content, page, query, Reply};
use crate::AppState;

pub async fn user_sessions(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.user_sessions(&id).await?;
    let cursor = q.get("cursor").map(String::as_str);
    Ok(page(
        paginate(all, |x| &x.sid, cursor, limit(&q)?)?,
        Clone::clone,
    ))
}

/// Signs the user out everywhere: every session ends.
pub async fn end_sessions(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    admin(&s, &h).await?.end_user_sessions(&id).await?;
    Ok(no_content())
}

pub async fn end_session(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((id, sid)): Path<(String, String)>,
) -> Reply {
    admin(&s, &h).await?.end_user_session(&id, &sid).await?;
    Ok(no_content())
}

pub async fn user_grants(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.user_grants(&id).await?;
    let cursor = q.get("cursor").map(String::as_str);
    Ok(page(
        paginate(all, |g| &g.id, cursor, limit(&q)?)?,
        Clone::clone,
    ))
}

/// Revokes every grant of the user, or with `application` only that application's.
pub async fn revoke_grants(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["application"])?;
    let only = q.get("application").map(String::as_str);
    a.revoke_user_grants(&id, only).await?;
    Ok(no_content())
}

pub async fn revoke_grant(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((id, grant)): Path<(String, String)>,
) -> Reply {
    admin(&s, &h).await?.revoke_user_grant(&id, &grant).await?;
    Ok(no_content())
}

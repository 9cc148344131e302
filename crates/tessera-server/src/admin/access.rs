//! Admin API: a user's SSO sessions and grants, listed and revoked (`users:read`/`users:write`,
//! or `users:self` for one's own). Ending a session delivers back-channel logout tokens.

use axum::extract::{Path, RawQuery, State};
use http::HeaderMap;
use std::sync::Arc;
use tessera_core::admin::paginate;

use tessera_core::Provider;

use super::auth::{caller, Need};
use super::people::reach;
use super::{limit, no_content, page, query, Reply};
use crate::AppState;

/// OIDC Back-Channel Logout §2.5: the logout tokens go out in the background, through the
/// provider's guarded outbound path.
pub(crate) fn deliver(p: &Arc<Provider>, backchannel: Vec<(String, String)>) {
    for (uri, token) in backchannel {
        let p = p.clone();
        tokio::spawn(async move { p.send_logout_token(&uri, &token).await });
    }
}

pub async fn user_sessions(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let u = reach(&s, &c, Need::SelfRead, &id).await?;
    let all = s.provider.user_sessions(&u.id).await?;
    let cursor = q.get("cursor").map(String::as_str);
    Ok(page(
        paginate(all, |x| &x.sid, cursor, limit(&q)?)?,
        Clone::clone,
    ))
}

/// Signs the user out everywhere: every session ends.
pub async fn end_sessions(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = reach(&s, &c, Need::SelfWrite, &id).await?;
    let (ended, done) = s.provider.admin(c.actor).end_user_sessions(&u.id).await;
    deliver(&s.provider, ended.backchannel);
    done?;
    Ok(no_content())
}

pub async fn end_session(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = reach(&s, &c, Need::SelfWrite, &id).await?;
    let done = s
        .provider
        .admin(c.actor)
        .end_user_session(&u.id, &sid)
        .await?;
    deliver(&s.provider, done.backchannel);
    Ok(no_content())
}

pub async fn user_grants(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let u = reach(&s, &c, Need::SelfRead, &id).await?;
    let all = s.provider.user_grants(&u.id).await?;
    let cursor = q.get("cursor").map(String::as_str);
    Ok(page(
        paginate(all, |g| &g.id, cursor, limit(&q)?)?,
        Clone::clone,
    ))
}

/// Revokes every grant of the user, or with `application` only that application's.
pub async fn revoke_grants(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let q = query(q.as_deref(), &["application"])?;
    let u = reach(&s, &c, Need::SelfWrite, &id).await?;
    let only = q.get("application").map(String::as_str);
    s.provider
        .admin(c.actor)
        .revoke_user_grants(&u.id, only)
        .await?;
    Ok(no_content())
}

pub async fn revoke_grant(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((id, grant)): Path<(String, String)>,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = reach(&s, &c, Need::SelfWrite, &id).await?;
    s.provider
        .admin(c.actor)
        .revoke_user_grant(&u.id, &grant)
        .await?;
    Ok(no_content())
}

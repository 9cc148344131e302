//! Admin API: users, groups, consents, the audit log and usage counts. Each handler extracts,
//! calls the `tessera_core::admin` use-case (which decides what the caller may do) and renders.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_core::admin::{paginate, PasswordChange, UserPatch, UserSpec, UserView, Window};
use tessera_core::audit::AuditQuery;
use tessera_core::Timestamp;

use super::auth::{admin, AdminRequest};
use super::problem::Problem;
use super::{body, limit, no_content, one, page, plain, query, Reply};
use crate::AppState;

pub async fn list_users(
    State(s): State<AppState>,
    h: AdminRequest,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor", "search", "group"])?;
    let mut all = a.users().await?;
    if let Some(term) = q.get("search").map(|t| t.to_lowercase()) {
        all.retain(|u| {
            u.username.to_lowercase().contains(&term)
                || u.claims
                    .values()
                    .any(|v| v.as_str().is_some_and(|s| s.to_lowercase().contains(&term)))
        });
    }
    if let Some(g) = q.get("group") {
        all.retain(|u| u.groups.contains(g));
    }
    let p = paginate(
        all,
        |u| &u.id,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, |u| UserView::from(u)))
}

pub async fn create_user(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: UserSpec = body(&h, &b)?;
    let u = a.create_user(&spec).await?;
    Ok(one(StatusCode::CREATED, &u, &UserView::from(&u)))
}

pub async fn get_user(State(s): State<AppState>, h: AdminRequest, Path(id): Path<String>) -> Reply {
    let u = admin(&s, &h).await?.user(&id).await?;
    Ok(one(StatusCode::OK, &u, &UserView::from(&u)))
}

/// The caller's own user (a token issued for a user).
pub async fn me(State(s): State<AppState>, h: AdminRequest) -> Reply {
    let a = admin(&s, &h).await?;
    let id = a.caller().user_id().map(str::to_owned).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "the token was issued to an application, which has no user; use /users/{id}",
        )
    })?;
    let u = a.user(&id).await?;
    Ok(one(StatusCode::OK, &u, &UserView::from(&u)))
}

pub async fn update_user(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let patch: UserPatch = body(&h, &b)?;
    let u = a.update_user(&id, &patch).await?;
    Ok(one(StatusCode::OK, &u, &UserView::from(&u)))
}

pub async fn delete_user(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    admin(&s, &h).await?.delete_user(&id).await?;
    Ok(no_content())
}

/// A new password; with `users:self` alone, `current_password` too.
pub async fn set_password(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let change: PasswordChange = body(&h, &b)?;
    a.set_user_password(&id, &change).await?;
    Ok(no_content())
}

async fn set_blocked(s: AppState, h: AdminRequest, id: String, blocked: bool) -> Reply {
    let patch = UserPatch {
        blocked: Some(blocked),
        ..UserPatch::default()
    };
    let u = admin(&s, &h).await?.update_user(&id, &patch).await?;
    Ok(one(StatusCode::OK, &u, &UserView::from(&u)))
}

/// A blocked user cannot sign in or refresh, and their tokens introspect as inactive.
pub async fn block_user(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    set_blocked(s, h, id, true).await
}

pub async fn unblock_user(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    set_blocked(s, h, id, false).await
}

/// Whether the user must set up a second factor at their next sign-in.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    pub required: bool,
}

pub async fn user_factors(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    let view = admin(&s, &h).await?.user_factors(&id).await?;
    Ok(one(StatusCode::OK, &view, &view))
}

pub async fn user_identities(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    let list = admin(&s, &h).await?.identities(&id).await?;
    Ok(one(StatusCode::OK, &list, &list))
}

pub async fn backchannel_requests(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    let list = admin(&s, &h).await?.backchannel_requests(&id).await?;
    Ok(one(StatusCode::OK, &list, &list))
}

pub async fn unlink_identity(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((id, idp, subject)): Path<(String, String, String)>,
) -> Reply {
    admin(&s, &h)
        .await?
        .unlink_identity(&id, &idp, &subject)
        .await?;
    Ok(no_content())
}

pub async fn remove_factor(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((id, factor)): Path<(String, String)>,
) -> Reply {
    admin(&s, &h).await?.remove_factor(&id, &factor).await?;
    Ok(no_content())
}

pub async fn require_enrolment(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let r: EnrolmentRequest = body(&h, &b)?;
    a.require_enrolment(&id, r.required).await?;
    Ok(no_content())
}

pub async fn user_consents(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.user_consents(&id).await?;
    let cursor = q.get("cursor").map(String::as_str);
    let p = paginate(all, |c| &c.client_id, cursor, limit(&q)?)?;
    Ok(page(p, Clone::clone))
}

pub async fn revoke_consent(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((id, client_id)): Path<(String, String)>,
) -> Reply {
    admin(&s, &h).await?.revoke_consent(&id, &client_id).await?;
    Ok(no_content())
}

pub async fn list_groups(
    State(s): State<AppState>,
    h: AdminRequest,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let groups = a.groups().await?;
    let cursor = q.get("cursor").map(String::as_str);
    let p = paginate(groups, |g| &g.name, cursor, limit(&q)?)?;
    Ok(page(
        p,
        |g| json!({ "name": g.name, "members": g.members.len() }),
    ))
}

pub async fn get_group(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(name): Path<String>,
) -> Reply {
    let g = admin(&s, &h).await?.group(&name).await?;
    Ok(plain(StatusCode::OK, &g))
}

pub async fn add_member(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((name, user)): Path<(String, String)>,
) -> Reply {
    admin(&s, &h)
        .await?
        .set_membership(&name, &user, true)
        .await?;
    Ok(no_content())
}

pub async fn remove_member(
    State(s): State<AppState>,
    h: AdminRequest,
    Path((name, user)): Path<(String, String)>,
) -> Reply {
    admin(&s, &h)
        .await?
        .set_membership(&name, &user, false)
        .await?;
    Ok(no_content())
}

fn seconds(
    q: &std::collections::HashMap<String, String>,
    k: &str,
) -> Result<Option<Timestamp>, Problem> {
    q.get(k)
        .map(|v| {
            v.parse::<i64>()
                .map(Timestamp)
                .map_err(|_| Problem::invalid(k, "must be Unix seconds"))
        })
        .transpose()
}

/// The audit log, newest first: filter by actor, action (`client.` for a prefix), application
/// and time (Unix seconds); `cursor` continues a page.
pub async fn audit(State(s): State<AppState>, h: AdminRequest, RawQuery(q): RawQuery) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(
        q.as_deref(),
        &[
            "limit",
            "cursor",
            "actor",
            "action",
            "application",
            "since",
            "until",
        ],
    )?;
    let size = tessera_core::admin::page_size(limit(&q)?)?;
    let before = q
        .get("cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Problem::invalid("cursor", "is not a cursor this server returned"))
        })
        .transpose()?;
    let events = a
        .audit_events(&AuditQuery {
            actor: q.get("actor").cloned(),
            action: q.get("action").cloned(),
            client_id: q.get("application").cloned(),
            since: seconds(&q, "since")?,
            until: seconds(&q, "until")?,
            before,
            limit: size as i64 + 1,
        })
        .await?;
    let more = events.len() > size;
    let items: Vec<_> = events.into_iter().take(size).collect();
    let next = if more {
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(plain(
        StatusCode::OK,
        &json!({ "items": items, "next_cursor": next }),
    ))
}

/// The dashboard's figures (`window` hour or day, optionally one `application`).
pub async fn usage(State(s): State<AppState>, h: AdminRequest, RawQuery(q): RawQuery) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["window", "application"])?;
    let window = Window::parse(q.get("window").map_or("", String::as_str))?;
    let summary = a
        .usage(q.get("application").map(String::as_str), window)
        .await?;
    Ok(plain(StatusCode::OK, &json!(summary)))
}

//! Admin API: users (with `users:self` for one's own profile), groups, consents and the audit log.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::admin::{paginate, UserPatch, UserSpec, ADMIN_GROUP};
use tessera_core::audit::AuditQuery;
use tessera_core::model::User;
use tessera_core::Timestamp;

use super::auth::{caller, Caller, Need};
use super::problem::Problem;
use super::{body, if_match, limit, no_content, one, page, plain, query, Reply};
use crate::AppState;

/// OIDC Core §5.1 profile claims a user may edit with `users:self`.
const SELF_CLAIMS: [&str; 12] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
];

/// A user as the API shows it: never the password hash, only whether there is a password.
pub fn user_view(u: &User) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        let has_password = m.remove("password_hash").is_some();
        m.insert("has_password".into(), json!(has_password));
    }
    v
}

pub async fn list_users(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::UsersRead)?;
    let q = query(q.as_deref(), &["limit", "cursor", "search", "group"])?;
    let mut all = s.provider.list_users().await?;
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
    Ok(page(p, user_view))
}

pub async fn create_user(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::UsersWrite)?;
    let spec: UserSpec = body(&h, &b)?;
    if spec.groups.iter().any(|g| g == ADMIN_GROUP) {
        c.require(Need::Administrator)?;
    }
    let u = s.provider.admin(c.actor).create_user(&spec).await?;
    Ok(one(StatusCode::CREATED, &u, &user_view(&u)))
}

/// The user a path names (by id or username), once the caller may reach it.
pub(super) async fn reach(s: &AppState, c: &Caller, need: Need, id: &str) -> Result<User, Problem> {
    // users:self names its own user by id; any other user needs the wider scope, checked before
    // the lookup so a users:self token learns nothing about other users.
    let wide = match need {
        Need::SelfRead => Need::UsersRead,
        _ => Need::UsersWrite,
    };
    if c.user_id.as_deref() == Some(id) {
        c.require(need)?;
    } else {
        c.require(wide)?;
    }
    Ok(s.provider.find_user(id).await?)
}

pub async fn get_user(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = reach(&s, &c, Need::SelfRead, &id).await?;
    Ok(one(StatusCode::OK, &u, &user_view(&u)))
}

/// The caller's own user (a token issued for a user).
pub async fn me(State(s): State<AppState>, h: HeaderMap) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::SelfRead)?;
    let id = c.user_id.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "the token was issued to an application, which has no user; use /users/{id}",
        )
    })?;
    let u = s.provider.find_user(&id).await?;
    Ok(one(StatusCode::OK, &u, &user_view(&u)))
}

pub async fn update_user(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = reach(&s, &c, Need::SelfWrite, &id).await?;
    let patch: UserPatch = body(&h, &b)?;
    if patch
        .groups
        .as_ref()
        .is_some_and(|g| g.iter().any(|g| g == ADMIN_GROUP))
    {
        c.require(Need::Administrator)?;
    }
    // With users:self alone a user edits their profile claims, never what identifies them to
    // applications (email, phone, verified flags, attributes) or decides access.
    if !c.may(Need::UsersWrite) {
        if let Some(k) = patch
            .claims
            .keys()
            .find(|k| !SELF_CLAIMS.contains(&k.as_str()))
        {
            return Err(Problem::forbidden_because(
                format!("claims.{k} can be changed only with users:write"),
                Need::UsersWrite.scopes(),
            ));
        }
        if !patch.attributes.is_empty() {
            return Err(Problem::forbidden_because(
                "attributes can be changed only with users:write",
                Need::UsersWrite.scopes(),
            ));
        }
        for (set, field) in [
            (patch.username.is_some(), "username"),
            (patch.groups.is_some(), "groups"),
            (patch.blocked.is_some(), "blocked"),
        ] {
            if set {
                return Err(Problem::forbidden_because(
                    format!("{field} can be changed only with users:write"),
                    Need::UsersWrite.scopes(),
                ));
            }
        }
    }
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let u = admin.update_user(&u.id, &patch).await?;
    Ok(one(StatusCode::OK, &u, &user_view(&u)))
}

pub async fn delete_user(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::UsersWrite)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    admin.delete_user(&id).await?;
    Ok(no_content())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

pub async fn set_password(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = reach(&s, &c, Need::SelfWrite, &id).await?;
    let r: NewPassword = body(&h, &b)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    admin.set_user_password(&u.id, &r.password).await?;
    Ok(no_content())
}

async fn set_blocked(s: AppState, h: HeaderMap, id: String, blocked: bool) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::UsersWrite)?;
    let patch = UserPatch {
        blocked: Some(blocked),
        ..UserPatch::default()
    };
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let u = admin.update_user(&id, &patch).await?;
    Ok(one(StatusCode::OK, &u, &user_view(&u)))
}

/// A blocked user cannot sign in or refresh, and their tokens introspect as inactive.
pub async fn block_user(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    set_blocked(s, h, id, true).await
}

pub async fn unblock_user(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    set_blocked(s, h, id, false).await
}

/// Consents of one user: with `consents`, or `users:self` for one's own.
async fn consent_owner(s: &AppState, c: &Caller, id: &str) -> Result<User, Problem> {
    if c.may(Need::Consents) {
        return Ok(s.provider.find_user(id).await?);
    }
    reach(s, c, Need::SelfWrite, id).await
}

pub async fn user_consents(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let u = consent_owner(&s, &c, &id).await?;
    let all = s.provider.user_consents(&u.id).await?;
    let cursor = q.get("cursor").map(String::as_str);
    let p = paginate(all, |c| &c.client_id, cursor, limit(&q)?)?;
    Ok(page(p, Clone::clone))
}

pub async fn revoke_consent(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((id, client_id)): Path<(String, String)>,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    let u = consent_owner(&s, &c, &id).await?;
    s.provider
        .admin(c.actor)
        .revoke_consent(&u.id, &client_id)
        .await?;
    Ok(no_content())
}

pub async fn list_groups(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::UsersRead)?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let groups: Vec<(String, usize)> = s
        .provider
        .list_groups()
        .await?
        .into_iter()
        .map(|(name, members)| (name, members.len()))
        .collect();
    let cursor = q.get("cursor").map(String::as_str);
    let p = paginate(groups, |(name, _)| name, cursor, limit(&q)?)?;
    Ok(page(
        p,
        |(name, members)| json!({ "name": name, "members": members }),
    ))
}

pub async fn get_group(State(s): State<AppState>, h: HeaderMap, Path(name): Path<String>) -> Reply {
    caller(&s.provider, &h).await?.require(Need::UsersRead)?;
    let mut members: Vec<Value> = s
        .provider
        .list_users()
        .await?
        .iter()
        .filter(|u| u.groups.contains(&name))
        .map(|u| json!({ "id": u.id, "username": u.username }))
        .collect();
    if members.is_empty() {
        return Err(Problem::not_found(format!("group {name}")));
    }
    members.sort_by(|a, b| a["username"].as_str().cmp(&b["username"].as_str()));
    Ok(plain(
        StatusCode::OK,
        &json!({ "name": name, "members": members }),
    ))
}

async fn membership(s: AppState, h: HeaderMap, name: String, user: String, add: bool) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::UsersWrite)?;
    if name == ADMIN_GROUP {
        c.require(Need::Administrator)?;
    }
    let u = s.provider.find_user(&user).await?;
    let mut groups = u.groups.clone();
    groups.retain(|g| *g != name);
    if add {
        groups.push(name);
    }
    let patch = UserPatch {
        groups: Some(groups),
        ..UserPatch::default()
    };
    s.provider.admin(c.actor).update_user(&u.id, &patch).await?;
    Ok(no_content())
}

pub async fn add_member(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((name, user)): Path<(String, String)>,
) -> Reply {
    membership(s, h, name, user, true).await
}

pub async fn remove_member(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((name, user)): Path<(String, String)>,
) -> Reply {
    membership(s, h, name, user, false).await
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
pub async fn audit(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::Audit)?;
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
    let events = s
        .provider
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

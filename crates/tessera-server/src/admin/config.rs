//! Admin API: applications and their credentials, APIs (resource servers), scopes, signing keys
//! and the settings in force.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::admin::{
    paginate, ApiSpec, ClientPatch, ClientSpec, KeyWindow, LifetimePatch, ScopeSpec, ADMIN_SCOPES,
};
use tessera_core::keys::PUBLISH_AFTER_RETIREMENT;
use tessera_core::model::{Alg, Client, KeyRecord, LifetimeOverrides};
use tessera_core::{Provider, Timestamp};

use super::auth::{caller, Caller, Need};
use super::problem::Problem;
use super::{body, if_match, limit, no_content, one, page, query, Reply};
use crate::AppState;

/// An application as the API shows it: never its secret, only whether it has one; where its
/// logo is served, when it has one.
pub fn app_view(p: &Provider, c: &Client) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        let has_secret = m.remove("secret_ciphertext").is_some();
        m.insert("has_secret".into(), json!(has_secret));
        if let Some(uri) = p.logo_uri(c) {
            m.insert("logo_uri".into(), json!(uri));
        }
    }
    v
}

pub async fn list_apps(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let q = query(q.as_deref(), &["limit", "cursor", "search"])?;
    let mut all = s.provider.list_clients().await?;
    if let Some(term) = q.get("search").map(|t| t.to_lowercase()) {
        all.retain(|c| {
            c.name.to_lowercase().contains(&term) || c.client_id.to_lowercase().contains(&term)
        });
    }
    let p = paginate(
        all,
        |c| &c.client_id,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, |c| app_view(&s.provider, c)))
}

pub async fn create_app(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let spec: ClientSpec = body(&h, &b)?;
    if spec.apis.contains(&s.provider.admin_api()) {
        c.require(Need::Administrator)?;
    }
    let created = s.provider.admin(c.actor).create_client(&spec).await?;
    let view = json!({
        "application": app_view(&s.provider, &created.client),
        "client_secret": created.client_secret,
    });
    Ok(one(StatusCode::CREATED, &created.client, &view))
}

pub async fn get_app(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let client = s.provider.get_client(&id).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &app_view(&s.provider, &client),
    ))
}

/// The caller may change the stored application `id`: `config:write`, and `administrator` when
/// it may call the admin API (its secret, state or pages could make an administrator).
async fn may_change(s: &AppState, c: &Caller, id: &str) -> Result<(), Problem> {
    c.require(Need::ConfigWrite)?;
    if s.provider
        .get_client(id)
        .await?
        .apis
        .contains(&s.provider.admin_api())
    {
        c.require(Need::Administrator)?;
    }
    Ok(())
}

pub async fn update_app(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    may_change(&s, &c, &id).await?;
    let patch: ClientPatch = body(&h, &b)?;
    let admin_api = s.provider.admin_api();
    if patch.apis.as_ref().is_some_and(|a| a.contains(&admin_api)) {
        c.require(Need::Administrator)?;
    }
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let client = admin.update_client(&id, &patch).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &app_view(&s.provider, &client),
    ))
}

async fn set_enabled(s: AppState, h: HeaderMap, id: String, enabled: bool) -> Reply {
    let c = caller(&s.provider, &h).await?;
    may_change(&s, &c, &id).await?;
    let patch = ClientPatch {
        enabled: Some(enabled),
        ..ClientPatch::default()
    };
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let client = admin.update_client(&id, &patch).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &app_view(&s.provider, &client),
    ))
}

pub async fn enable_app(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    set_enabled(s, h, id, true).await
}

pub async fn disable_app(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    set_enabled(s, h, id, false).await
}

pub async fn delete_app(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    may_change(&s, &c, &id).await?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    admin.delete_client(&id).await?;
    Ok(no_content())
}

/// Seed 000 "Revoke a client secret": the old secret stops working; the new one is shown once.
pub async fn rotate_secret(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    may_change(&s, &c, &id).await?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let secret = admin.rotate_client_secret(&id).await?;
    let client = s.provider.get_client(&id).await?;
    let view = json!({ "client_id": id, "client_secret": secret });
    Ok(one(StatusCode::OK, &client, &view))
}

/// `PUT /applications/{id}/logo`: the image is the body, sent as what it is (`image/png`,
/// `image/jpeg`, `image/gif`, `image/webp`); at most 256 KiB.
pub async fn put_logo(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    may_change(&s, &c, &id).await?;
    let declared = h
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let client = admin.set_logo(&id, declared, &b).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &app_view(&s.provider, &client),
    ))
}

pub async fn delete_logo(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    may_change(&s, &c, &id).await?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    admin.remove_logo(&id).await?;
    Ok(no_content())
}

pub async fn app_consents(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    caller(&s.provider, &h).await?.require(Need::Consents)?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    s.provider.get_client(&id).await?;
    let all = s.provider.client_consents(&id).await?;
    let p = paginate(
        all,
        |c| &c.user_id,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

/// Revokes every user's consent for the application (and the grants they allowed): each user is
/// asked again at their next sign-in.
pub async fn revoke_app_consents(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::Consents)?;
    s.provider.get_client(&id).await?;
    let admin = s.provider.admin(c.actor);
    for consent in admin.client_consents(&id).await? {
        match admin.revoke_consent(&consent.user_id, &id).await {
            // Revoked meanwhile by someone else: nothing left to do.
            Ok(()) | Err(tessera_core::admin::AdminError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(no_content())
}

pub async fn list_apis(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = s.provider.list_apis().await?;
    let p = paginate(
        all,
        |a| &a.identifier,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

pub async fn create_api(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let spec: ApiSpec = body(&h, &b)?;
    guard_admin_api(&s, &c, &spec.identifier)?;
    let api = s.provider.admin(c.actor).create_api(&spec).await?;
    Ok(one(StatusCode::CREATED, &api, &api))
}

pub async fn get_api(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let api = s.provider.get_api(&id).await?;
    Ok(one(StatusCode::OK, &api, &api))
}

/// Replaces an API; the identifier is the path's.
pub async fn update_api(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let mut spec: ApiSpec = body(&h, &b)?;
    same_key("identifier", &mut spec.identifier, &id)?;
    guard_admin_api(&s, &c, &id)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let api = admin.update_api(&spec).await?;
    Ok(one(StatusCode::OK, &api, &api))
}

pub async fn delete_api(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    guard_admin_api(&s, &c, &id)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    admin.delete_api(&id).await?;
    Ok(no_content())
}

/// The admin API itself is changed only with `administrator`.
fn guard_admin_api(s: &AppState, c: &Caller, identifier: &str) -> Result<(), Problem> {
    if identifier == s.provider.admin_api() {
        c.require(Need::Administrator)?;
    }
    Ok(())
}

/// The admin API's scopes are changed only with `administrator`.
fn guard_admin_scope(c: &Caller, name: &str) -> Result<(), Problem> {
    if ADMIN_SCOPES.iter().any(|(n, _, _)| *n == name) {
        c.require(Need::Administrator)?;
    }
    Ok(())
}

/// A body naming its resource must name the path's; an empty name takes the path's.
fn same_key(field: &str, in_body: &mut String, in_path: &str) -> Result<(), Problem> {
    if in_body.is_empty() {
        *in_body = in_path.to_owned();
    }
    if in_body != in_path {
        return Err(Problem::invalid(field, "differs from the one in the path"));
    }
    Ok(())
}

pub async fn list_scopes(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = s.provider.list_scopes().await?;
    let p = paginate(
        all,
        |s| &s.name,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

pub async fn create_scope(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let spec: ScopeSpec = body(&h, &b)?;
    guard_admin_scope(&c, &spec.name)?;
    let scope = s.provider.admin(c.actor).create_scope(&spec).await?;
    Ok(one(StatusCode::CREATED, &scope, &scope))
}

pub async fn get_scope(State(s): State<AppState>, h: HeaderMap, Path(n): Path<String>) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let scope = s.provider.get_scope(&n).await?;
    Ok(one(StatusCode::OK, &scope, &scope))
}

/// Replaces a scope; the name is the path's.
pub async fn update_scope(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(n): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let mut spec: ScopeSpec = body(&h, &b)?;
    same_key("name", &mut spec.name, &n)?;
    guard_admin_scope(&c, &n)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let scope = admin.update_scope(&spec).await?;
    Ok(one(StatusCode::OK, &scope, &scope))
}

pub async fn delete_scope(State(s): State<AppState>, h: HeaderMap, Path(n): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    guard_admin_scope(&c, &n)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    admin.delete_scope(&n).await?;
    Ok(no_content())
}

/// A signing key as the API shows it: public parts, its window, and where it is in its life.
pub fn key_view(k: &KeyRecord, now: Timestamp) -> Value {
    let state = k.state(now);
    json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": state,
        "not_before": k.not_before,
        "not_after": k.not_after,
        "published_until": k.not_after.plus(PUBLISH_AFTER_RETIREMENT),
        "x5c": k.x5c,
        "created_at": k.created_at,
    })
}

pub async fn list_keys(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let now = s.provider.now();
    let all = s.provider.list_keys().await?;
    let p = paginate(
        all,
        |k| &k.kid,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, |k| key_view(k, now)))
}

/// A signing window in a request: Unix seconds.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    pub alg: Alg,
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    #[serde(default)]
    pub not_after: Option<Timestamp>,
}

/// An imported key: PKCS#8 private key and its certificate chain (leaf first), both PEM.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyImport {
    pub alg: Alg,
    pub key_pem: String,
    pub certificate_chain_pem: String,
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    #[serde(default)]
    pub not_after: Option<Timestamp>,
}

/// A new signing window for an existing key.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySchedule {
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    #[serde(default)]
    pub not_after: Option<Timestamp>,
}

pub async fn generate_key(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let r: KeyRequest = body(&h, &b)?;
    let window = KeyWindow {
        not_before: r.not_before,
        not_after: r.not_after,
    };
    let k = s
        .provider
        .admin(c.actor)
        .generate_key(r.alg, window)
        .await?;
    Ok(one(
        StatusCode::CREATED,
        &k,
        &key_view(&k, s.provider.now()),
    ))
}

pub async fn import_key(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    // Whoever knows an imported key's private part can sign any token.
    c.require(Need::Administrator)?;
    let r: KeyImport = body(&h, &b)?;
    let window = KeyWindow {
        not_before: r.not_before,
        not_after: r.not_after,
    };
    let admin = s.provider.admin(c.actor);
    let k = admin
        .import_key(r.alg, &r.key_pem, &r.certificate_chain_pem, window)
        .await?;
    Ok(one(
        StatusCode::CREATED,
        &k,
        &key_view(&k, s.provider.now()),
    ))
}

pub async fn get_key(State(s): State<AppState>, h: HeaderMap, Path(kid): Path<String>) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let k = s.provider.get_key(&kid).await?;
    Ok(one(StatusCode::OK, &k, &key_view(&k, s.provider.now())))
}

/// Seed 002 "Used From" / "Used Until": moves a key's signing window.
pub async fn schedule_key(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(kid): Path<String>,
    b: Bytes,
) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let r: KeySchedule = body(&h, &b)?;
    let window = KeyWindow {
        not_before: r.not_before,
        not_after: r.not_after,
    };
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let k = admin.schedule_key(&kid, window).await?;
    Ok(one(StatusCode::OK, &k, &key_view(&k, s.provider.now())))
}

/// Stops a key signing now; it stays published until the tokens it signed have expired.
pub async fn retire_key(State(s): State<AppState>, h: HeaderMap, Path(kid): Path<String>) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let k = admin.retire_key(&kid).await?;
    Ok(one(StatusCode::OK, &k, &key_view(&k, s.provider.now())))
}

/// The settings in force (from the configuration file and environment): default lifetimes
/// (seed 000), key rotation, sign-in limits, audit retention.
/// The settings in force: `lifetimes` are the defaults of new applications (what administrators
/// set, `lifetime_overrides`, over the configuration file's); the rest comes from the file.
fn settings_view(p: &tessera_core::Provider, overrides: &LifetimeOverrides) -> Value {
    let st = &p.settings;
    let l = st.lifetimes.overridden(overrides);
    json!({
        "issuer": st.issuer,
        "lifetimes": {
            "authorization_code": l.authorization_code,
            "access_token": l.access_token,
            "refresh_token": l.refresh_token,
            "id_token": l.id_token,
        },
        "lifetime_overrides": overrides,
        "keys": {
            "algorithms": st.keys.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "lifetime": st.keys.lifetime,
            "publish_ahead": st.keys.publish_ahead,
        },
        "sign_in": {
            "session_lifetime": st.session_lifetime,
            "max_failures_per_account": st.throttle.per_account,
            "max_failures_per_address": st.throttle.per_address,
            "max_failures_per_client": st.throttle.per_client,
            "failure_window": st.throttle.window,
        },
        "audit_retention": st.audit_retention,
    })
}

pub async fn settings(State(s): State<AppState>, h: HeaderMap) -> Reply {
    caller(&s.provider, &h).await?.require(Need::ConfigRead)?;
    let overrides = s.provider.stored_lifetimes().await?;
    Ok(one(
        StatusCode::OK,
        &overrides,
        &settings_view(&s.provider, &overrides),
    ))
}

/// What `PATCH /settings` may change: the default lifetimes of new applications.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default)]
    pub lifetimes: LifetimePatch,
}

pub async fn change_settings(State(s): State<AppState>, h: HeaderMap, b: Bytes) -> Reply {
    let c = caller(&s.provider, &h).await?;
    c.require(Need::ConfigWrite)?;
    let patch: SettingsPatch = body(&h, &b)?;
    let admin = s.provider.admin(c.actor).if_match(if_match(&h));
    let overrides = admin.change_default_lifetimes(&patch.lifetimes).await?;
    Ok(one(
        StatusCode::OK,
        &overrides,
        &settings_view(&s.provider, &overrides),
    ))
}

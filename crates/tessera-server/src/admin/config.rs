//! Admin API: applications and their credentials, APIs (resource servers), scopes, signing keys
//! and the settings in force. Each handler extracts, calls the `tessera_core::admin` use-case
//! (which decides what the caller may do) and renders.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::admin::{
    paginate, ApiSpec, ApplicationView, ClientPatch, ClientSpec, IdpSpec, KeyView, KeyWindow,
    LifetimePatch, SchemeSpec, ScopeSpec,
};
use tessera_core::model::{Alg, LifetimeOverrides};
use tessera_core::Timestamp;

use super::auth::{admin, AdminRequest};
use super::problem::Problem;
use super::{body, limit, no_content, one, page, query, Reply};
use crate::AppState;

pub async fn list_apps(State(s): State<AppState>, h: AdminRequest, RawQuery(q): RawQuery) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor", "search"])?;
    let mut all = a.applications().await?;
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
    Ok(page(p, |c| ApplicationView::of(&s.provider, c)))
}

pub async fn create_app(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: ClientSpec = body(&h, &b)?;
    let created = a.create_client(&spec).await?;
    let view = json!({
        "application": ApplicationView::of(&s.provider, &created.client),
        "client_secret": created.client_secret,
    });
    Ok(one(StatusCode::CREATED, &created.client, &view))
}

pub async fn get_app(State(s): State<AppState>, h: AdminRequest, Path(id): Path<String>) -> Reply {
    let client = admin(&s, &h).await?.application(&id).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &ApplicationView::of(&s.provider, &client),
    ))
}

pub async fn update_app(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let patch: ClientPatch = body(&h, &b)?;
    let client = a.update_client(&id, &patch).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &ApplicationView::of(&s.provider, &client),
    ))
}

async fn set_enabled(s: AppState, h: AdminRequest, id: String, enabled: bool) -> Reply {
    let patch = ClientPatch {
        enabled: Some(enabled),
        ..ClientPatch::default()
    };
    let client = admin(&s, &h).await?.update_client(&id, &patch).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &ApplicationView::of(&s.provider, &client),
    ))
}

pub async fn enable_app(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    set_enabled(s, h, id, true).await
}

pub async fn disable_app(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    set_enabled(s, h, id, false).await
}

pub async fn delete_app(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    admin(&s, &h).await?.delete_client(&id).await?;
    Ok(no_content())
}

/// Seed 000 "Revoke a client secret": the old secret stops working; the new one is shown once.
pub async fn rotate_secret(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    let (client, secret) = admin(&s, &h).await?.rotate_client_secret(&id).await?;
    let view = json!({ "client_id": id, "client_secret": secret });
    Ok(one(StatusCode::OK, &client, &view))
}

/// `PUT /applications/{id}/logo`: the image is the body, sent as what it is (`image/png`,
/// `image/jpeg`, `image/gif`, `image/webp`); at most 256 KiB and 4096×4096 pixels.
pub async fn put_logo(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let declared = h
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let client = a.set_logo(&id, declared, &b).await?;
    Ok(one(
        StatusCode::OK,
        &client,
        &ApplicationView::of(&s.provider, &client),
    ))
}

pub async fn delete_logo(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    admin(&s, &h).await?.remove_logo(&id).await?;
    Ok(no_content())
}

pub async fn app_consents(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.client_consents(&id).await?;
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
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    admin(&s, &h).await?.revoke_client_consents(&id).await?;
    Ok(no_content())
}

pub async fn list_apis(State(s): State<AppState>, h: AdminRequest, RawQuery(q): RawQuery) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.apis().await?;
    let p = paginate(
        all,
        |a| &a.identifier,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

pub async fn create_api(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: ApiSpec = body(&h, &b)?;
    let api = a.create_api(&spec).await?;
    Ok(one(StatusCode::CREATED, &api, &api))
}

/// RFC 7591 §3: an initial access token for dynamic client registration, shown once.
pub async fn create_initial_token(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: tessera_core::registration::InitialTokenSpec = body(&h, &b)?;
    let created = a.create_initial_token(&spec).await?;
    Ok(one(StatusCode::CREATED, &created, &created))
}

pub async fn get_api(State(s): State<AppState>, h: AdminRequest, Path(id): Path<String>) -> Reply {
    let api = admin(&s, &h).await?.api(&id).await?;
    Ok(one(StatusCode::OK, &api, &api))
}

/// Replaces an API; the identifier is the path's.
pub async fn update_api(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let mut spec: ApiSpec = body(&h, &b)?;
    same_key("identifier", &mut spec.identifier, &id)?;
    let api = a.update_api(&spec).await?;
    Ok(one(StatusCode::OK, &api, &api))
}

pub async fn delete_api(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(id): Path<String>,
) -> Reply {
    admin(&s, &h).await?.delete_api(&id).await?;
    Ok(no_content())
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

pub async fn list_scopes(
    State(s): State<AppState>,
    h: AdminRequest,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.scopes().await?;
    let p = paginate(
        all,
        |s| &s.name,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

pub async fn create_scope(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: ScopeSpec = body(&h, &b)?;
    let scope = a.create_scope(&spec).await?;
    Ok(one(StatusCode::CREATED, &scope, &scope))
}

pub async fn get_scope(State(s): State<AppState>, h: AdminRequest, Path(n): Path<String>) -> Reply {
    let scope = admin(&s, &h).await?.scope(&n).await?;
    Ok(one(StatusCode::OK, &scope, &scope))
}

/// Replaces a scope; the name is the path's.
pub async fn update_scope(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let mut spec: ScopeSpec = body(&h, &b)?;
    same_key("name", &mut spec.name, &n)?;
    let scope = a.update_scope(&spec).await?;
    Ok(one(StatusCode::OK, &scope, &scope))
}

pub async fn delete_scope(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
) -> Reply {
    admin(&s, &h).await?.delete_scope(&n).await?;
    Ok(no_content())
}

pub async fn list_schemes(
    State(s): State<AppState>,
    h: AdminRequest,
    RawQuery(q): RawQuery,
) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.schemes().await?;
    let p = paginate(
        all,
        |s| &s.name,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

pub async fn create_scheme(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: SchemeSpec = body(&h, &b)?;
    let scheme = a.create_scheme(&spec).await?;
    Ok(one(StatusCode::CREATED, &scheme, &scheme))
}

pub async fn get_scheme(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
) -> Reply {
    let scheme = admin(&s, &h).await?.scheme(&n).await?;
    Ok(one(StatusCode::OK, &scheme, &scheme))
}

/// Replaces a scheme; the name is the path's.
pub async fn update_scheme(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let mut spec: SchemeSpec = body(&h, &b)?;
    same_key("name", &mut spec.name, &n)?;
    let scheme = a.update_scheme(&spec).await?;
    Ok(one(StatusCode::OK, &scheme, &scheme))
}

pub async fn delete_scheme(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
) -> Reply {
    admin(&s, &h).await?.delete_scheme(&n).await?;
    Ok(no_content())
}

pub async fn list_idps(State(s): State<AppState>, h: AdminRequest, RawQuery(q): RawQuery) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let all = a.idps().await?;
    let p = paginate(
        all,
        |i| &i.spec.name,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, Clone::clone))
}

pub async fn create_idp(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let spec: IdpSpec = body(&h, &b)?;
    let view = a.create_idp(&spec).await?;
    Ok(one(StatusCode::CREATED, &view, &view))
}

pub async fn get_idp(State(s): State<AppState>, h: AdminRequest, Path(n): Path<String>) -> Reply {
    let view = admin(&s, &h).await?.idp(&n).await?;
    Ok(one(StatusCode::OK, &view, &view))
}

/// Replaces an identity provider; the name is the path's, a client secret not given is kept.
pub async fn update_idp(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let mut spec: IdpSpec = body(&h, &b)?;
    same_key("name", &mut spec.name, &n)?;
    let view = a.update_idp(&spec).await?;
    Ok(one(StatusCode::OK, &view, &view))
}

pub async fn delete_idp(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(n): Path<String>,
) -> Reply {
    admin(&s, &h).await?.delete_idp(&n).await?;
    Ok(no_content())
}

pub async fn list_keys(State(s): State<AppState>, h: AdminRequest, RawQuery(q): RawQuery) -> Reply {
    let a = admin(&s, &h).await?;
    let q = query(q.as_deref(), &["limit", "cursor"])?;
    let now = s.provider.now();
    let all = a.keys().await?;
    let p = paginate(
        all,
        |k| &k.kid,
        q.get("cursor").map(String::as_str),
        limit(&q)?,
    )?;
    Ok(page(p, |k| KeyView::of(k, now)))
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

pub async fn generate_key(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let r: KeyRequest = body(&h, &b)?;
    let window = KeyWindow {
        not_before: r.not_before,
        not_after: r.not_after,
    };
    let k = a.generate_key(r.alg, window).await?;
    Ok(one(
        StatusCode::CREATED,
        &k,
        &KeyView::of(&k, s.provider.now()),
    ))
}

pub async fn import_key(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let r: KeyImport = body(&h, &b)?;
    let window = KeyWindow {
        not_before: r.not_before,
        not_after: r.not_after,
    };
    let k = a
        .import_key(r.alg, &r.key_pem, &r.certificate_chain_pem, window)
        .await?;
    Ok(one(
        StatusCode::CREATED,
        &k,
        &KeyView::of(&k, s.provider.now()),
    ))
}

pub async fn get_key(State(s): State<AppState>, h: AdminRequest, Path(kid): Path<String>) -> Reply {
    let k = admin(&s, &h).await?.key(&kid).await?;
    Ok(one(StatusCode::OK, &k, &KeyView::of(&k, s.provider.now())))
}

/// Seed 002 "Used From" / "Used Until": moves a key's signing window.
pub async fn schedule_key(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(kid): Path<String>,
    b: Bytes,
) -> Reply {
    let a = admin(&s, &h).await?;
    let r: KeySchedule = body(&h, &b)?;
    let window = KeyWindow {
        not_before: r.not_before,
        not_after: r.not_after,
    };
    let k = a.schedule_key(&kid, window).await?;
    Ok(one(StatusCode::OK, &k, &KeyView::of(&k, s.provider.now())))
}

/// Stops a key signing now; it stays published until the tokens it signed have expired.
pub async fn retire_key(
    State(s): State<AppState>,
    h: AdminRequest,
    Path(kid): Path<String>,
) -> Reply {
    let k = admin(&s, &h).await?.retire_key(&kid).await?;
    Ok(one(StatusCode::OK, &k, &KeyView::of(&k, s.provider.now())))
}

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

pub async fn settings(State(s): State<AppState>, h: AdminRequest) -> Reply {
    let overrides = admin(&s, &h).await?.stored_lifetimes().await?;
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

pub async fn change_settings(State(s): State<AppState>, h: AdminRequest, b: Bytes) -> Reply {
    let a = admin(&s, &h).await?;
    let patch: SettingsPatch = body(&h, &b)?;
    let overrides = a.change_default_lifetimes(&patch.lifetimes).await?;
    Ok(one(
        StatusCode::OK,
        &overrides,
        &settings_view(&s.provider, &overrides),
    ))
}

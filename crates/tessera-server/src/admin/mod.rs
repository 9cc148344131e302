//! The admin REST API (`/admin/api/v1`) over the same `core::admin` use-cases as the CLI: JSON in
//! and out, cursor pagination, `ETag`/`If-Match` (RFC 9110 §13.1.1), RFC 9457 problems, and an
//! OpenAPI 3.1 document generated from the request and response types.
//!
//! - [`auth`]: the bearer token and its scopes; [`problem`]: errors
//! - [`config`]: applications, credentials, APIs, scopes, signing keys, settings
//! - [`people`]: users, groups, consents, the audit log, usage counts
//! - [`access`]: a user's sessions and grants
//! - [`openapi`]: the document at `/admin/api/openapi.json`

pub mod access;
pub mod auth;
pub mod config;
pub mod openapi;
pub mod people;
pub mod problem;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_core::admin::{etag, Page};

use crate::AppState;
use problem::Problem;

/// The largest upload a logo route reads: a logo's own limit is checked with a clear answer below
/// this, and a body above it is refused before it is read.
pub const UPLOAD_LIMIT: usize = 1024 * 1024;

/// Every route of the admin API, under `/admin/api`.
pub fn router() -> Router<AppState> {
    use access::*;
    use config::*;
    use people::*;
    let v1 = Router::new()
        .route("/applications", get(list_apps).post(create_app))
        .route(
            "/applications/{id}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route("/applications/{id}/enable", post(enable_app))
        .route("/applications/{id}/disable", post(disable_app))
        .route("/applications/{id}/credentials/rotate", post(rotate_secret))
        .route(
            "/applications/{id}/consents",
            get(app_consents).delete(revoke_app_consents),
        )
        .route(
            "/applications/{id}/logo",
            put(put_logo)
                .delete(delete_logo)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/apis", get(list_apis).post(create_api))
        .route("/registration-tokens", post(create_initial_token))
        .route(
            "/apis/{identifier}",
            get(get_api).put(update_api).delete(delete_api),
        )
        .route("/scopes", get(list_scopes).post(create_scope))
        .route(
            "/scopes/{name}",
            get(get_scope).put(update_scope).delete(delete_scope),
        )
        .route("/schemes", get(list_schemes).post(create_scheme))
        .route(
            "/schemes/{name}",
            get(get_scheme).put(update_scheme).delete(delete_scheme),
        )
        .route("/idps", get(list_idps).post(create_idp))
        .route(
            "/idps/{name}",
            get(get_idp).put(update_idp).delete(delete_idp),
        )
        .route("/keys", get(list_keys).post(generate_key))
        .route("/keys/import", post(import_key))
        .route("/keys/{kid}", get(get_key).patch(schedule_key))
        .route("/keys/{kid}/retire", post(retire_key))
        .route("/settings", get(settings).patch(change_settings))
        .route("/users", get(list_users).post(create_user))
        .route("/users/me", get(me))
        .route(
            "/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/users/{id}/password", put(set_password))
        .route("/users/{id}/block", post(block_user))
        .route("/users/{id}/unblock", post(unblock_user))
        .route("/users/{id}/factors", get(user_factors))
        .route(
            "/users/{id}/factors/{factor_id}",
            axum::routing::delete(remove_factor),
        )
        .route("/users/{id}/enrolment", put(require_enrolment))
        .route("/users/{id}/identities", get(user_identities))
        .route(
            "/users/{id}/backchannel-requests",
            get(backchannel_requests),
        )
        .route(
            "/users/{id}/identities/{idp}/{subject}",
            axum::routing::delete(unlink_identity),
        )
        .route("/users/{id}/consents", get(user_consents))
        .route(
            "/users/{id}/consents/{client_id}",
            axum::routing::delete(revoke_consent),
        )
        .route(
            "/users/{id}/sessions",
            get(user_sessions).delete(end_sessions),
        )
        .route(
            "/users/{id}/sessions/{sid}",
            axum::routing::delete(end_session),
        )
        .route("/users/{id}/grants", get(user_grants).delete(revoke_grants))
        .route(
            "/users/{id}/grants/{grant_id}",
            axum::routing::delete(revoke_grant),
        )
        .route("/groups", get(list_groups))
        .route("/groups/{name}", get(get_group))
        .route(
            "/groups/{name}/members/{user}",
            put(add_member).delete(remove_member),
        )
        .route("/audit", get(audit))
        .route("/usage", get(people::usage));
    Router::new()
        .nest("/v1", v1)
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found)
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such admin API resource")
}

/// A JSON request body (`application/json`), with the offending field named when it does not fit.
pub fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, Problem> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim().to_ascii_lowercase();
            t == "application/json" || t == "application/merge-patch+json"
        });
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // "unknown field `x`" and "missing field `x`" name the field inside the message.
        let field = match (path.as_str(), message.split('`').nth(1)) {
            (".", Some(f)) => f.to_owned(),
            (".", None) => "body".to_owned(),
            (p, _) => p.to_owned(),
        };
        let reason = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        if inner.is_syntax() || inner.is_eof() {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {reason}"),
            )
        } else {
            Problem::invalid(field, reason)
        }
    })
}

/// The query parameters, refusing any not in `allowed` and any given twice.
pub fn query(raw: Option<&str>, allowed: &[&str]) -> Result<HashMap<String, String>, Problem> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(Problem::invalid(
                k.as_ref(),
                format!("is not a parameter here; use {}", allowed.join(", ")),
            ));
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(Problem::invalid(k.as_ref(), "is given more than once"));
        }
    }
    Ok(out)
}

/// `limit` as a page size.
pub fn limit(q: &HashMap<String, String>) -> Result<Option<usize>, Problem> {
    q.get("limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| Problem::invalid("limit", "must be a whole number"))
        })
        .transpose()
}

/// `If-Match` as sent.
pub fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    let mut r = (status, serde_json::to_string(value).unwrap_or_default()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// One resource: its view, with the `ETag` of the record it shows.
pub fn one(status: StatusCode, record: &impl Serialize, view: &impl Serialize) -> Response {
    let mut r = json_response(status, view);
    if let Ok(tag) = HeaderValue::from_str(&etag(record)) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    r
}

/// A page of a list: `{"items": [...], "next_cursor": "..."}`.
pub fn page<T, V: Serialize>(p: Page<T>, view: impl Fn(&T) -> V) -> Response {
    let items: Vec<V> = p.items.iter().map(view).collect();
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "items": items, "next_cursor": p.next_cursor }),
    )
}

/// Any JSON answer without an entity tag.
pub fn plain(status: StatusCode, value: &impl Serialize) -> Response {
    json_response(status, value)
}

pub fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What every handler returns.
pub type Reply = Result<Response, Problem>;

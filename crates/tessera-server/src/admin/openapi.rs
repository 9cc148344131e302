//! The OpenAPI 3.1 document of the admin API, generated from the operations below and the JSON
//! Schemas (2020-12, OpenAPI 3.1's dialect) of the request and response types.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use tessera_core::admin::{
    ApiSpec, ClientPatch, ClientSpec, GrantView, ScopeSpec, SessionView, UserPatch, UserSpec,
};
use tessera_core::audit::AuditEvent;
use tessera_core::model::{Api, Client, Consent, Scope};

use super::auth::Need;
use super::config::{KeyImport, KeyRequest, KeySchedule, SettingsPatch};
use super::people::NewPassword;

/// One operation: method, path under `/admin/api/v1`, summary, what it needs, request and
/// response schema names (from [`schemas`]), and the success status.
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub need: Need,
    pub request: Option<&'static str>,
    pub response: Option<&'static str>,
    pub status: u16,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    need: Need,
    request: Option<&'static str>,
    response: Option<&'static str>,
    status: u16,
) -> Op {
    Op {
        method,
        path,
        summary,
        need,
        request,
        response,
        status,
    }
}

use Need::*;

/// Every operation the router serves (a test calls each one).
pub const OPS: &[Op] = &[
    op(
        "get",
        "/applications",
        "List applications (search by name or client_id)",
        ConfigRead,
        None,
        Some("ApplicationPage"),
        200,
    ),
    op(
        "post",
        "/applications",
        "Set up an application integration; the secret is returned once",
        ConfigWrite,
        Some("ClientSpec"),
        Some("CreatedApplication"),
        201,
    ),
    op(
        "get",
        "/applications/{id}",
        "Read an application",
        ConfigRead,
        None,
        Some("Application"),
        200,
    ),
    op(
        "patch",
        "/applications/{id}",
        "Change an application (If-Match)",
        ConfigWrite,
        Some("ClientPatch"),
        Some("Application"),
        200,
    ),
    op(
        "delete",
        "/applications/{id}",
        "Delete an application (If-Match)",
        ConfigWrite,
        None,
        None,
        204,
    ),
    op(
        "post",
        "/applications/{id}/enable",
        "Enable an application",
        ConfigWrite,
        None,
        Some("Application"),
        200,
    ),
    op(
        "post",
        "/applications/{id}/disable",
        "Disable an application: its tokens stop working",
        ConfigWrite,
        None,
        Some("Application"),
        200,
    ),
    op(
        "post",
        "/applications/{id}/credentials/rotate",
        "Rotate the client secret: the old one stops working, the new one is returned once",
        ConfigWrite,
        None,
        Some("RotatedSecret"),
        200,
    ),
    op(
        "get",
        "/applications/{id}/consents",
        "Users' consents for an application",
        Consents,
        None,
        Some("ConsentPage"),
        200,
    ),
    op(
        "delete",
        "/applications/{id}/consents",
        "Revoke every user's consent for an application, with the grants they allowed",
        Consents,
        None,
        None,
        204,
    ),
    op(
        "put",
        "/applications/{id}/logo",
        "Set the logo: the body is a PNG, JPEG, GIF or WebP image (at most 256 KiB) sent as its type",
        ConfigWrite,
        Some("Logo"),
        Some("Application"),
        200,
    ),
    op(
        "delete",
        "/applications/{id}/logo",
        "Remove the logo",
        ConfigWrite,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/apis",
        "List APIs (resource servers)",
        ConfigRead,
        None,
        Some("ApiPage"),
        200,
    ),
    op(
        "post",
        "/apis",
        "Create an API and the scopes it names",
        ConfigWrite,
        Some("ApiSpec"),
        Some("Api"),
        201,
    ),
    op(
        "get",
        "/apis/{identifier}",
        "Read an API (identifier percent-encoded)",
        ConfigRead,
        None,
        Some("Api"),
        200,
    ),
    op(
        "put",
        "/apis/{identifier}",
        "Replace an API (If-Match)",
        ConfigWrite,
        Some("ApiSpec"),
        Some("Api"),
        200,
    ),
    op(
        "delete",
        "/apis/{identifier}",
        "Delete an API no application uses (If-Match)",
        ConfigWrite,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/scopes",
        "List scopes",
        ConfigRead,
        None,
        Some("ScopePage"),
        200,
    ),
    op(
        "post",
        "/scopes",
        "Create a scope",
        ConfigWrite,
        Some("ScopeSpec"),
        Some("Scope"),
        201,
    ),
    op(
        "get",
        "/scopes/{name}",
        "Read a scope",
        ConfigRead,
        None,
        Some("Scope"),
        200,
    ),
    op(
        "put",
        "/scopes/{name}",
        "Replace a scope (If-Match)",
        ConfigWrite,
        Some("ScopeSpec"),
        Some("Scope"),
        200,
    ),
    op(
        "delete",
        "/scopes/{name}",
        "Delete a scope nothing uses (If-Match)",
        ConfigWrite,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/keys",
        "List signing keys with their windows",
        ConfigRead,
        None,
        Some("KeyPage"),
        200,
    ),
    op(
        "post",
        "/keys",
        "Generate a signing key (optionally scheduled)",
        ConfigWrite,
        Some("KeyRequest"),
        Some("Key"),
        201,
    ),
    op(
        "post",
        "/keys/import",
        "Import a PEM key and certificate chain",
        ConfigWrite,
        Some("KeyImport"),
        Some("Key"),
        201,
    ),
    op(
        "get",
        "/keys/{kid}",
        "Read a signing key",
        ConfigRead,
        None,
        Some("Key"),
        200,
    ),
    op(
        "patch",
        "/keys/{kid}",
        "Move a key's signing window (If-Match)",
        ConfigWrite,
        Some("KeySchedule"),
        Some("Key"),
        200,
    ),
    op(
        "post",
        "/keys/{kid}/retire",
        "Stop a key signing now; it stays published",
        ConfigWrite,
        None,
        Some("Key"),
        200,
    ),
    op(
        "get",
        "/settings",
        "The settings in force: default lifetimes of new applications, keys, sign-in limits",
        ConfigRead,
        None,
        Some("Settings"),
        200,
    ),
    op(
        "patch",
        "/settings",
        "Change the default lifetimes of new applications (null: the configuration file's; If-Match)",
        ConfigWrite,
        Some("SettingsPatch"),
        Some("Settings"),
        200,
    ),
    op(
        "get",
        "/users",
        "List users (search, group)",
        UsersRead,
        None,
        Some("UserPage"),
        200,
    ),
    op(
        "post",
        "/users",
        "Create a user",
        UsersWrite,
        Some("UserSpec"),
        Some("User"),
        201,
    ),
    op(
        "get",
        "/users/me",
        "The caller's own user",
        SelfRead,
        None,
        Some("User"),
        200,
    ),
    op(
        "get",
        "/users/{id}",
        "Read a user (users:self: only oneself)",
        SelfRead,
        None,
        Some("User"),
        200,
    ),
    op(
        "patch",
        "/users/{id}",
        "Change a user (If-Match; users:self: own claims and attributes)",
        SelfWrite,
        Some("UserPatch"),
        Some("User"),
        200,
    ),
    op(
        "delete",
        "/users/{id}",
        "Delete a user and their consents (If-Match)",
        UsersWrite,
        None,
        None,
        204,
    ),
    op(
        "put",
        "/users/{id}/password",
        "Set a user's password",
        SelfWrite,
        Some("NewPassword"),
        None,
        204,
    ),
    op(
        "post",
        "/users/{id}/block",
        "Block a user: no sign-in, no refresh, tokens inactive",
        UsersWrite,
        None,
        Some("User"),
        200,
    ),
    op(
        "post",
        "/users/{id}/unblock",
        "Unblock a user",
        UsersWrite,
        None,
        Some("User"),
        200,
    ),
    op(
        "get",
        "/users/{id}/consents",
        "A user's consents (users:self: one's own)",
        Consents,
        None,
        Some("ConsentPage"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/consents/{client_id}",
        "Revoke a consent",
        Consents,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/users/{id}/sessions",
        "A user's SSO sessions in force (users:self: one's own)",
        SelfRead,
        None,
        Some("SessionPage"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/sessions",
        "Sign a user out everywhere: every session ends, back-channel logout is sent",
        SelfWrite,
        None,
        None,
        204,
    ),
    op(
        "delete",
        "/users/{id}/sessions/{sid}",
        "End one session: grants made in it without offline_access are revoked",
        SelfWrite,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/users/{id}/grants",
        "A user's grants in force: what applications may still get tokens for",
        SelfRead,
        None,
        Some("GrantPage"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/grants",
        "Revoke every grant of a user (application=<client_id>: only that application's)",
        SelfWrite,
        None,
        None,
        204,
    ),
    op(
        "delete",
        "/users/{id}/grants/{grant_id}",
        "Revoke one grant: its refresh and access tokens stop working",
        SelfWrite,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/groups",
        "Groups and their sizes",
        UsersRead,
        None,
        Some("GroupPage"),
        200,
    ),
    op(
        "get",
        "/groups/{name}",
        "A group's members",
        UsersRead,
        None,
        Some("Group"),
        200,
    ),
    op(
        "put",
        "/groups/{name}/members/{user}",
        "Add a user to a group",
        UsersWrite,
        None,
        None,
        204,
    ),
    op(
        "delete",
        "/groups/{name}/members/{user}",
        "Remove a user from a group",
        UsersWrite,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/audit",
        "The audit log, newest first (actor, action, application, since, until)",
        Audit,
        None,
        Some("AuditPage"),
        200,
    ),
];

/// Registers `T`'s schema (and those it uses) under its name.
fn define<T: JsonSchema>(g: &mut SchemaGenerator) {
    g.subschema_for::<T>();
}

fn page_of(item: Value) -> Value {
    json!({
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": { "type": "array", "items": item },
            "next_cursor": { "type": ["string", "null"], "description": "pass as cursor for the next page" }
        }
    })
}

/// The named schemas of requests and responses.
fn schemas() -> Map<String, Value> {
    let mut g = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    define::<ClientSpec>(&mut g);
    define::<ClientPatch>(&mut g);
    define::<ApiSpec>(&mut g);
    define::<Api>(&mut g);
    define::<ScopeSpec>(&mut g);
    define::<Scope>(&mut g);
    define::<UserSpec>(&mut g);
    define::<UserPatch>(&mut g);
    define::<NewPassword>(&mut g);
    define::<KeyRequest>(&mut g);
    define::<KeyImport>(&mut g);
    define::<KeySchedule>(&mut g);
    define::<Consent>(&mut g);
    define::<AuditEvent>(&mut g);
    define::<Client>(&mut g);
    define::<SettingsPatch>(&mut g);
    define::<SessionView>(&mut g);
    define::<GrantView>(&mut g);
    let mut m: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    // An application as shown: the client without its secret's ciphertext.
    let mut app = m.remove("Client").unwrap_or_else(|| json!({}));
    if let Some(props) = app
        .pointer_mut("/properties")
        .and_then(Value::as_object_mut)
    {
        props.remove("secret_ciphertext");
        props.insert("has_secret".into(), json!({ "type": "boolean" }));
        props.insert(
            "logo_uri".into(),
            json!({ "type": "string", "description": "where the logo is served, when there is one" }),
        );
    }
    let key = json!({
        "type": "object",
        "properties": {
            "kid": { "type": "string" }, "alg": { "type": "string" },
            "state": { "enum": ["upcoming", "signing", "retired", "expired"] },
            "not_before": { "type": "integer" }, "not_after": { "type": "integer" },
            "published_until": { "type": "integer" },
            "x5c": { "type": "array", "items": { "type": "string" } },
            "created_at": { "type": "integer" }
        }
    });
    let user = json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" }, "username": { "type": "string" },
            "claims": { "type": "object" }, "attributes": { "type": "object" },
            "groups": { "type": "array", "items": { "type": "string" } },
            "blocked": { "type": "boolean" }, "has_password": { "type": "boolean" },
            "created_at": { "type": "integer" }, "updated_at": { "type": "integer" }
        }
    });
    let entries: Vec<(&str, Value)> = vec![
        ("Application", app.clone()),
        ("ApplicationPage", page_of(app.clone())),
        (
            "CreatedApplication",
            json!({
                "type": "object",
                "properties": { "application": app, "client_secret": { "type": ["string", "null"], "description": "shown once" } }
            }),
        ),
        (
            "RotatedSecret",
            json!({
                "type": "object",
                "properties": { "client_id": { "type": "string" }, "client_secret": { "type": "string", "description": "shown once" } }
            }),
        ),
        ("Key", key.clone()),
        ("KeyPage", page_of(key)),
        ("User", user.clone()),
        ("UserPage", page_of(user)),
        (
            "ApiPage",
            page_of(json!({ "$ref": "#/components/schemas/Api" })),
        ),
        (
            "ScopePage",
            page_of(json!({ "$ref": "#/components/schemas/Scope" })),
        ),
        (
            "ConsentPage",
            page_of(json!({ "$ref": "#/components/schemas/Consent" })),
        ),
        (
            "SessionPage",
            page_of(json!({ "$ref": "#/components/schemas/SessionView" })),
        ),
        (
            "GrantPage",
            page_of(json!({ "$ref": "#/components/schemas/GrantView" })),
        ),
        (
            "AuditPage",
            page_of(json!({ "$ref": "#/components/schemas/AuditEvent" })),
        ),
        (
            "GroupPage",
            page_of(json!({
                "type": "object", "properties": { "name": { "type": "string" }, "members": { "type": "integer" } }
            })),
        ),
        (
            "Group",
            json!({
                "type": "object",
                "properties": { "name": { "type": "string" }, "members": { "type": "array", "items": {
                    "type": "object", "properties": { "id": { "type": "string" }, "username": { "type": "string" } } } } }
            }),
        ),
        ("Settings", json!({ "type": "object" })),
        (
            "Problem",
            json!({
                "type": "object",
                "description": "RFC 9457 problem details",
                "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" },
                    "status": { "type": "integer" }, "detail": { "type": "string" },
                    "invalid-params": { "type": "array", "items": { "type": "object",
                        "properties": { "name": { "type": "string" }, "reason": { "type": "string" } } } }
                }
            }),
        ),
    ];
    for (name, s) in entries {
        m.insert(name.into(), s);
    }
    m
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// The whole document.
pub fn build(issuer: &str) -> Value {
    let mut paths = Map::new();
    for o in OPS {
        let mut operation = json!({
            "summary": o.summary,
            "security": [{ "bearer": o.need.scopes() }],
            "responses": {
                "401": problem("no valid access token for the admin API"),
                "403": problem(&format!("the token has none of: {}", o.need.scopes().join(", "))),
                "404": problem("not found"),
                "412": problem("If-Match does not hold"),
                "422": problem("invalid input; invalid-params names the field"),
            }
        });
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        match o.request {
            // An image, not JSON.
            Some("Logo") => {
                let image =
                    json!({ "schema": { "type": "string", "contentMediaType": "image/*" } });
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "image/png": image, "image/jpeg": image, "image/gif": image, "image/webp": image }
                });
            }
            Some(req) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{req}") } } }
                });
            }
            None => {}
        }
        let ok = match o.response {
            Some(r) => json!({
                "description": "success",
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{r}") } } }
            }),
            None => json!({ "description": "done" }),
        };
        operation["responses"][o.status.to_string()] = ok;
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tessera admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Applications, APIs, scopes, users, consents, signing keys and the audit log. Bearer access tokens issued by this server for the admin API (aud <issuer>/admin/api); their scopes decide what each call may do.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{ "url": format!("{issuer}/admin/api/v1") }],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A Tessera access token for the admin API" }
            }
        }
    })
}

/// `GET /admin/api/openapi.json`: public, like discovery.
pub async fn document(axum::extract::State(s): axum::extract::State<crate::AppState>) -> Response {
    let mut r = build(&s.provider.settings.issuer)
        .to_string()
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

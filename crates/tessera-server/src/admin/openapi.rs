//! The OpenAPI 3.1 document of the admin API, generated from the operations below and the JSON
//! Schemas (2020-12, OpenAPI 3.1's dialect) of the request and response types.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use tessera_core::admin::permission::required;
use tessera_core::admin::{
    ApiSpec, ApplicationView, ClientPatch, ClientSpec, FactorsView, GrantView, GroupView, KeyView,
    Operation, PasswordChange, SchemeSpec, ScopeSpec, SessionView, TargetKind, UserPatch, UserSpec,
    UserView,
};
use tessera_core::audit::AuditEvent;
use tessera_core::model::{Api, Consent, Scope};
use tessera_core::scheme::AuthScheme;

use super::config::{KeyImport, KeyRequest, KeySchedule, SettingsPatch};

/// One operation: method, path under `/admin/api/v1`, summary, the core use-case it calls (whose
/// permission rule the document states), request and response schema names (from [`schemas`]),
/// and the success status.
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub operation: Operation,
    pub request: Option<&'static str>,
    pub response: Option<&'static str>,
    pub status: u16,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    operation: Operation,
    request: Option<&'static str>,
    response: Option<&'static str>,
    status: u16,
) -> Op {
    Op {
        method,
        path,
        summary,
        operation,
        request,
        response,
        status,
    }
}

use Operation as O;

/// Every operation the router serves (a test calls each one).
pub const OPS: &[Op] = &[
    op(
        "get",
        "/applications",
        "List applications (search by name or client_id)",
        O::ListApplications,
        None,
        Some("ApplicationPage"),
        200,
    ),
    op(
        "post",
        "/applications",
        "Set up an application integration; the secret is returned once",
        O::CreateApplication,
        Some("ClientSpec"),
        Some("CreatedApplication"),
        201,
    ),
    op(
        "get",
        "/applications/{id}",
        "Read an application",
        O::ReadApplication,
        None,
        Some("Application"),
        200,
    ),
    op(
        "patch",
        "/applications/{id}",
        "Change an application (If-Match)",
        O::ChangeApplication,
        Some("ClientPatch"),
        Some("Application"),
        200,
    ),
    op(
        "delete",
        "/applications/{id}",
        "Delete an application (If-Match)",
        O::DeleteApplication,
        None,
        None,
        204,
    ),
    op(
        "post",
        "/applications/{id}/enable",
        "Enable an application",
        O::EnableApplication,
        None,
        Some("Application"),
        200,
    ),
    op(
        "post",
        "/applications/{id}/disable",
        "Disable an application: its tokens stop working",
        O::DisableApplication,
        None,
        Some("Application"),
        200,
    ),
    op(
        "post",
        "/applications/{id}/credentials/rotate",
        "Rotate the client secret: the old one stops working, the new one is returned once",
        O::RotateSecret,
        None,
        Some("RotatedSecret"),
        200,
    ),
    op(
        "get",
        "/applications/{id}/consents",
        "Users' consents for an application",
        O::ListApplicationConsents,
        None,
        Some("ConsentPage"),
        200,
    ),
    op(
        "delete",
        "/applications/{id}/consents",
        "Revoke every user's consent for an application, with the grants they allowed",
        O::RevokeApplicationConsents,
        None,
        None,
        204,
    ),
    op(
        "put",
        "/applications/{id}/logo",
        "Set the logo: the body is a PNG, JPEG, GIF or WebP image (at most 256 KiB) sent as its type",
        O::SetLogo,
        Some("Logo"),
        Some("Application"),
        200,
    ),
    op(
        "delete",
        "/applications/{id}/logo",
        "Remove the logo",
        O::RemoveLogo,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/apis",
        "List APIs (resource servers)",
        O::ListApis,
        None,
        Some("ApiPage"),
        200,
    ),
    op(
        "post",
        "/registration-tokens",
        "An initial access token for dynamic client registration (shown once)",
        O::CreateInitialToken,
        Some("InitialTokenSpec"),
        Some("CreatedInitialToken"),
        201,
    ),
    op(
        "post",
        "/apis",
        "Create an API and the scopes it names",
        O::CreateApi,
        Some("ApiSpec"),
        Some("Api"),
        201,
    ),
    op(
        "get",
        "/apis/{identifier}",
        "Read an API (identifier percent-encoded)",
        O::ReadApi,
        None,
        Some("Api"),
        200,
    ),
    op(
        "put",
        "/apis/{identifier}",
        "Replace an API (If-Match)",
        O::ReplaceApi,
        Some("ApiSpec"),
        Some("Api"),
        200,
    ),
    op(
        "delete",
        "/apis/{identifier}",
        "Delete an API no application uses (If-Match)",
        O::DeleteApi,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/scopes",
        "List scopes",
        O::ListScopes,
        None,
        Some("ScopePage"),
        200,
    ),
    op(
        "post",
        "/scopes",
        "Create a scope",
        O::CreateScope,
        Some("ScopeSpec"),
        Some("Scope"),
        201,
    ),
    op(
        "get",
        "/scopes/{name}",
        "Read a scope",
        O::ReadScope,
        None,
        Some("Scope"),
        200,
    ),
    op(
        "put",
        "/scopes/{name}",
        "Replace a scope (If-Match)",
        O::ReplaceScope,
        Some("ScopeSpec"),
        Some("Scope"),
        200,
    ),
    op(
        "delete",
        "/scopes/{name}",
        "Delete a scope nothing uses (If-Match)",
        O::DeleteScope,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/idps",
        "List upstream identity providers",
        O::ListIdps,
        None,
        Some("IdpPage"),
        200,
    ),
    op(
        "post",
        "/idps",
        "Add an upstream identity provider (OpenID Connect or OAuth 2.0)",
        O::CreateIdp,
        Some("IdpSpec"),
        Some("IdpView"),
        201,
    ),
    op(
        "get",
        "/idps/{name}",
        "Read an identity provider (never its client secret)",
        O::ReadIdp,
        None,
        Some("IdpView"),
        200,
    ),
    op(
        "put",
        "/idps/{name}",
        "Replace an identity provider; a client secret not given is kept (If-Match)",
        O::ReplaceIdp,
        Some("IdpSpec"),
        Some("IdpView"),
        200,
    ),
    op(
        "delete",
        "/idps/{name}",
        "Delete an identity provider no scheme names; its linked identities are unlinked (If-Match)",
        O::DeleteIdp,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/schemes",
        "List authentication schemes (the built-in password first)",
        O::ListSchemes,
        None,
        Some("SchemePage"),
        200,
    ),
    op(
        "post",
        "/schemes",
        "Create an authentication scheme",
        O::CreateScheme,
        Some("SchemeSpec"),
        Some("AuthScheme"),
        201,
    ),
    op(
        "get",
        "/schemes/{name}",
        "Read an authentication scheme",
        O::ReadScheme,
        None,
        Some("AuthScheme"),
        200,
    ),
    op(
        "put",
        "/schemes/{name}",
        "Replace an authentication scheme (If-Match)",
        O::ReplaceScheme,
        Some("SchemeSpec"),
        Some("AuthScheme"),
        200,
    ),
    op(
        "delete",
        "/schemes/{name}",
        "Delete an authentication scheme no application uses (If-Match)",
        O::DeleteScheme,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/keys",
        "List signing keys with their windows",
        O::ListKeys,
        None,
        Some("KeyPage"),
        200,
    ),
    op(
        "post",
        "/keys",
        "Generate a signing key (optionally scheduled)",
        O::GenerateKey,
        Some("KeyRequest"),
        Some("Key"),
        201,
    ),
    op(
        "post",
        "/keys/import",
        "Import a PEM key and certificate chain",
        O::ImportKey,
        Some("KeyImport"),
        Some("Key"),
        201,
    ),
    op(
        "get",
        "/keys/{kid}",
        "Read a signing key",
        O::ReadKey,
        None,
        Some("Key"),
        200,
    ),
    op(
        "patch",
        "/keys/{kid}",
        "Move a key's signing window (If-Match)",
        O::ScheduleKey,
        Some("KeySchedule"),
        Some("Key"),
        200,
    ),
    op(
        "post",
        "/keys/{kid}/retire",
        "Stop a key signing now; it stays published",
        O::RetireKey,
        None,
        Some("Key"),
        200,
    ),
    op(
        "get",
        "/settings",
        "The settings in force: default lifetimes of new applications, keys, sign-in limits",
        O::ReadSettings,
        None,
        Some("Settings"),
        200,
    ),
    op(
        "patch",
        "/settings",
        "Change the default lifetimes of new applications (null: the configuration file's; If-Match)",
        O::ChangeSettings,
        Some("SettingsPatch"),
        Some("Settings"),
        200,
    ),
    op(
        "get",
        "/users",
        "List users (search, group)",
        O::ListUsers,
        None,
        Some("UserPage"),
        200,
    ),
    op(
        "post",
        "/users",
        "Create a user",
        O::CreateUser,
        Some("UserSpec"),
        Some("User"),
        201,
    ),
    op(
        "get",
        "/users/me",
        "The caller's own user",
        O::ReadUser,
        None,
        Some("User"),
        200,
    ),
    op(
        "get",
        "/users/{id}",
        "Read a user (users:self: only oneself)",
        O::ReadUser,
        None,
        Some("User"),
        200,
    ),
    op(
        "patch",
        "/users/{id}",
        "Change a user (If-Match; users:self: own profile claims, not one an application takes its subject from)",
        O::ChangeUser,
        Some("UserPatch"),
        Some("User"),
        200,
    ),
    op(
        "delete",
        "/users/{id}",
        "Delete a user and their consents (If-Match)",
        O::DeleteUser,
        None,
        None,
        204,
    ),
    op(
        "put",
        "/users/{id}/password",
        "Set a user's password",
        O::SetPassword,
        Some("NewPassword"),
        None,
        204,
    ),
    op(
        "post",
        "/users/{id}/block",
        "Block a user: no sign-in, no refresh, tokens inactive",
        O::BlockUser,
        None,
        Some("User"),
        200,
    ),
    op(
        "post",
        "/users/{id}/unblock",
        "Unblock a user",
        O::UnblockUser,
        None,
        Some("User"),
        200,
    ),
    op(
        "get",
        "/users/{id}/backchannel-requests",
        "A user's CIBA requests waiting for a decision (for a notifier to tell the user)",
        O::ListBackchannelRequests,
        None,
        Some("BackchannelRequestList"),
        200,
    ),
    op(
        "get",
        "/users/{id}/identities",
        "The upstream identities linked to a user",
        O::ListIdentities,
        None,
        Some("IdentityList"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/identities/{idp}/{subject}",
        "Unlink an upstream identity (never a password-less user's last way in)",
        O::UnlinkIdentity,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/users/{id}/factors",
        "A user's second factors and recovery codes (never a secret or key)",
        O::ListFactors,
        None,
        Some("FactorsView"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/factors/{factor_id}",
        "Remove a factor: totp, recovery_codes or passkey:{credential id}",
        O::RemoveFactor,
        None,
        None,
        204,
    ),
    op(
        "put",
        "/users/{id}/enrolment",
        "Require (or stop requiring) a second factor at the user's next sign-in",
        O::RequireEnrolment,
        Some("EnrolmentRequest"),
        None,
        204,
    ),
    op(
        "get",
        "/users/{id}/consents",
        "A user's consents (users:self: one's own)",
        O::ListUserConsents,
        None,
        Some("ConsentPage"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/consents/{client_id}",
        "Revoke a consent",
        O::RevokeConsent,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/users/{id}/sessions",
        "A user's SSO sessions in force (users:self: one's own)",
        O::ListSessions,
        None,
        Some("SessionPage"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/sessions",
        "Sign a user out everywhere: every session ends, back-channel logout is sent",
        O::EndSession,
        None,
        None,
        204,
    ),
    op(
        "delete",
        "/users/{id}/sessions/{sid}",
        "End one session: grants made in it without offline_access are revoked",
        O::EndSession,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/users/{id}/grants",
        "A user's grants in force: what applications may still get tokens for",
        O::ListGrants,
        None,
        Some("GrantPage"),
        200,
    ),
    op(
        "delete",
        "/users/{id}/grants",
        "Revoke every grant of a user (application=<client_id>: only that application's)",
        O::RevokeGrant,
        None,
        None,
        204,
    ),
    op(
        "delete",
        "/users/{id}/grants/{grant_id}",
        "Revoke one grant: its refresh and access tokens stop working",
        O::RevokeGrant,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/groups",
        "Groups and their sizes",
        O::ListGroups,
        None,
        Some("GroupPage"),
        200,
    ),
    op(
        "get",
        "/groups/{name}",
        "A group's members",
        O::ReadGroup,
        None,
        Some("Group"),
        200,
    ),
    op(
        "put",
        "/groups/{name}/members/{user}",
        "Add a user to a group",
        O::AddMember,
        None,
        None,
        204,
    ),
    op(
        "delete",
        "/groups/{name}/members/{user}",
        "Remove a user from a group",
        O::RemoveMember,
        None,
        None,
        204,
    ),
    op(
        "get",
        "/audit",
        "The audit log, newest first (actor, action, application, since, until)",
        O::ReadAudit,
        None,
        Some("AuditPage"),
        200,
    ),
    op(
        "get",
        "/usage",
        "Sign-ins, tokens by grant, throttled requests and the busiest applications of the last hour or day (window, application)",
        O::ReadUsage,
        None,
        None,
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
    define::<PasswordChange>(&mut g);
    define::<KeyRequest>(&mut g);
    define::<KeyImport>(&mut g);
    define::<KeySchedule>(&mut g);
    define::<Consent>(&mut g);
    define::<AuditEvent>(&mut g);
    define::<ApplicationView>(&mut g);
    define::<UserView>(&mut g);
    define::<KeyView>(&mut g);
    define::<GroupView>(&mut g);
    define::<SettingsPatch>(&mut g);
    define::<SessionView>(&mut g);
    define::<GrantView>(&mut g);
    define::<SchemeSpec>(&mut g);
    define::<AuthScheme>(&mut g);
    define::<FactorsView>(&mut g);
    define::<tessera_core::admin::IdpSpec>(&mut g);
    define::<tessera_core::admin::IdpView>(&mut g);
    define::<tessera_core::federation::LinkedIdentity>(&mut g);
    define::<tessera_core::ciba::PendingBackchannel>(&mut g);
    define::<tessera_core::registration::InitialTokenSpec>(&mut g);
    define::<tessera_core::registration::CreatedInitialToken>(&mut g);
    define::<super::people::EnrolmentRequest>(&mut g);
    let mut m: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    let app = json!({ "$ref": "#/components/schemas/ApplicationView" });
    let key = json!({ "$ref": "#/components/schemas/KeyView" });
    let user = json!({ "$ref": "#/components/schemas/UserView" });
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
        ("Group", json!({ "$ref": "#/components/schemas/GroupView" })),
        (
            "ApiPage",
            page_of(json!({ "$ref": "#/components/schemas/Api" })),
        ),
        (
            "ScopePage",
            page_of(json!({ "$ref": "#/components/schemas/Scope" })),
        ),
        (
            "SchemePage",
            page_of(json!({ "$ref": "#/components/schemas/AuthScheme" })),
        ),
        (
            "IdpPage",
            page_of(json!({ "$ref": "#/components/schemas/IdpView" })),
        ),
        (
            "BackchannelRequestList",
            json!({ "type": "array", "items": { "$ref": "#/components/schemas/PendingBackchannel" } }),
        ),
        (
            "IdentityList",
            json!({ "type": "array", "items": { "$ref": "#/components/schemas/LinkedIdentity" } }),
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

/// What an operation needs, from the one model: on an ordinary target, and on each other kind of
/// target it can meet.
fn permission_text(op: Operation) -> String {
    let mut text = format!("Needs {}.", op.need().describe());
    for k in op.targets() {
        if *k == TargetKind::Ordinary {
            continue;
        }
        text.push_str(&format!(
            " On {}: {}.",
            k.describe(),
            required(op, *k).describe()
        ));
    }
    text
}

/// The whole document.
pub fn build(issuer: &str) -> Value {
    let mut paths = Map::new();
    for o in OPS {
        let need = o.operation.need();
        let mut operation = json!({
            "summary": o.summary,
            "x-tessera-operation": o.operation.name(),
            "description": permission_text(o.operation),
            // OpenAPI: the requirements are alternatives; the scopes of one are all needed.
            "security": need
                .alternatives()
                .iter()
                .map(|all| json!({ "bearer": all.iter().map(|s| s.name()).collect::<Vec<_>>() }))
                .collect::<Vec<_>>(),
            "responses": {
                "401": problem("no valid access token for the admin API"),
                "403": problem(&format!("the token's scopes do not meet: {}", need.describe())),
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

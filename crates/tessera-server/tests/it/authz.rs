//! The one authorization model held against every front-end: each admin scope (and a pair, and
//! none) × each operation × each kind of target it can meet (ordinary, the caller's own user, an
//! application that asserts users, administrators and the admin API) is refused with 403
//! exactly when `tessera_core::admin::permission::required` says so: over the admin REST API,
//! the Admin Portal's forms, and the command line's caller.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use tessera_core::admin::permission::required;
use tessera_core::admin::{
    AdminScope, ApiSpec, Caller, ClientSpec, Operation, ScopeSpec, TargetKind, UserSpec,
};
use tessera_core::model::{Alg, ClientType, GrantType, JwtBearerSubject, TrustedIssuer};
use tessera_server::admin::openapi::OPS;

use crate::admin_api::{automation, call, own_token, self_service, setup, V1};
use crate::flow::{enc, hidden, PASSWORD};
use crate::support::{Harness, Reply, TestClient};

use AdminScope as S;

/// The scope sets every cell is tried with; `administrator` last, so the rest meet targets a
/// permitted change has not altered yet.
fn scope_sets() -> Vec<Vec<AdminScope>> {
    let mut sets: Vec<Vec<AdminScope>> = vec![vec![]];
    sets.extend(
        AdminScope::ALL
            .into_iter()
            .filter(|s| *s != S::Administrator)
            .map(|s| vec![s]),
    );
    sets.push(vec![S::ConfigWrite, S::UsersWrite]);
    sets.push(vec![S::Administrator]);
    sets
}

fn names(scopes: &[AdminScope]) -> Vec<&'static str> {
    scopes.iter().map(|s| s.name()).collect()
}

/// `selfie`'s own admin API token with `scopes`.
async fn selfie_token(h: &Harness, app: &TestClient, scopes: &[AdminScope]) -> String {
    own_token(h, app, "selfie", &names(scopes)).await
}

/// A harness with `selfie`, an administrator whose own account the `Own` cells act on (so the
/// administrator scope in their tokens counts), and the application their tokens come from.
async fn with_selfie() -> (Harness, String, TestClient) {
    let h = setup().await;
    let selfie = h.user("selfie").await;
    h.provider
        .admin(Caller::local())
        .set_membership("tessera-admins", &selfie, true)
        .await
        .expect("administrator");
    let app = self_service(&h).await;
    (h, selfie, app)
}

/// Counts targets so each call gets fresh ones.
struct Fresh(std::sync::atomic::AtomicUsize);

impl Fresh {
    fn next(&self) -> usize {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

struct World {
    h: Harness,
    selfie: String,
    kid: String,
    partner_jwk: Value,
    fresh: Fresh,
}

impl World {
    fn local(&self) -> tessera_core::admin::Admin<'_> {
        self.h.provider.admin(Caller::local())
    }

    async fn app(&self, kind: TargetKind) -> String {
        let n = self.fresh.next();
        let spec = match kind {
            TargetKind::Protected => ClientSpec {
                apis: vec![self.h.provider.admin_api()],
                scopes: vec!["config:read".into()],
                ..ClientSpec::new(&format!("admin app {n}"), ClientType::M2m)
            },
            TargetKind::AssertsUsers => ClientSpec {
                grant_types: Some(vec![GrantType::JwtBearer]),
                trusted_issuers: vec![TrustedIssuer {
                    issuer: "https://partner.example.com".into(),
                    jwks: Some(json!({"keys": [self.partner_jwk]})),
                    jwks_uri: None,
                }],
                jwt_bearer_subject: Some(JwtBearerSubject::User),
                ..ClientSpec::new(&format!("asserting app {n}"), ClientType::M2m)
            },
            _ => ClientSpec::new(&format!("app {n}"), ClientType::M2m),
        };
        self.local()
            .create_client(&spec)
            .await
            .expect("app")
            .client
            .client_id
    }

    fn app_body(&self, kind: TargetKind) -> Value {
        let n = self.fresh.next();
        match kind {
            TargetKind::Protected => json!({"name": format!("new admin app {n}"), "type": "m2m",
                "apis": [self.h.provider.admin_api()], "scopes": ["config:read"]}),
            TargetKind::AssertsUsers => {
                json!({"name": format!("new asserting app {n}"), "type": "m2m",
                "grant_types": ["jwt_bearer"], "jwt_bearer_subject": "user",
                "trusted_issuers": [{"issuer": "https://partner.example.com", "jwks": {"keys": [self.partner_jwk]}}]})
            }
            _ => json!({"name": format!("new app {n}"), "type": "m2m"}),
        }
    }

    /// A user of the kind (no password: fast to make); members of `staff` when ordinary.
    async fn user(&self, kind: TargetKind) -> String {
        if kind == TargetKind::Own {
            return self.selfie.clone();
        }
        let n = self.fresh.next();
        let group = if kind == TargetKind::Protected {
            "tessera-admins"
        } else {
            "staff"
        };
        self.local()
            .create_user(&UserSpec {
                username: format!("user{n}"),
                groups: vec![group.into()],
                ..UserSpec::default()
            })
            .await
            .expect("user")
            .id
    }

    async fn api(&self, kind: TargetKind) -> String {
        if kind == TargetKind::Protected {
            return self.h.provider.admin_api();
        }
        let identifier = format!("https://api{}.example.com", self.fresh.next());
        self.local()
            .create_api(&ApiSpec {
                identifier: identifier.clone(),
                ..ApiSpec::default()
            })
            .await
            .expect("api");
        identifier
    }

    async fn scope(&self, kind: TargetKind) -> String {
        if kind == TargetKind::Protected {
            return "administrator".into();
        }
        let name = format!("scope{}", self.fresh.next());
        self.local()
            .create_scope(&ScopeSpec {
                name: name.clone(),
                ..ScopeSpec::default()
            })
            .await
            .expect("scope");
        name
    }

    /// An authentication scheme; a protected one is the Admin Portal's.
    async fn scheme(&self, kind: TargetKind) -> String {
        let n = self.fresh.next();
        let name = format!("scheme{n}");
        self.local()
            .create_scheme(&tessera_core::admin::SchemeSpec {
                name: name.clone(),
                methods: vec![vec![tessera_core::factor::Method::Password]],
                acr: format!("acr-{n}"),
                ..Default::default()
            })
            .await
            .expect("scheme");
        if kind == TargetKind::Protected {
            let patch = tessera_core::admin::ClientPatch {
                authentication_scheme: Some(name.clone()),
                ..Default::default()
            };
            self.local()
                .update_client(tessera_core::admin::PORTAL_CLIENT, &patch)
                .await
                .expect("portal scheme");
        }
        name
    }

    /// An identity provider; a protected one is named by the scheme the Admin Portal uses.
    async fn idp(&self, kind: TargetKind) -> String {
        let n = self.fresh.next();
        let name = format!("idp{n}");
        self.local()
            .create_idp(&tessera_core::admin::IdpSpec {
                name: name.clone(),
                issuer: Some("https://idp.example.com".into()),
                client_id: "tessera".into(),
                auth_method: tessera_core::federation::UpstreamAuth::None,
                ..Default::default()
            })
            .await
            .expect("idp");
        if kind == TargetKind::Protected {
            let scheme = format!("scheme{name}");
            self.local()
                .create_scheme(&tessera_core::admin::SchemeSpec {
                    name: scheme.clone(),
                    methods: vec![
                        vec![tessera_core::factor::Method::Password],
                        vec![tessera_core::factor::Method::Upstream],
                    ],
                    acr: format!("acr-idp-{n}"),
                    identity_providers: vec![name.clone()],
                    ..Default::default()
                })
                .await
                .expect("scheme");
            let patch = tessera_core::admin::ClientPatch {
                authentication_scheme: Some(scheme),
                ..Default::default()
            };
            self.local()
                .update_client(tessera_core::admin::PORTAL_CLIENT, &patch)
                .await
                .expect("portal scheme");
        }
        name
    }

    /// A signing key scheduled far ahead, so changing it touches no key that signs.
    async fn future_key(&self) -> String {
        let ahead = crate::support::now() + 400 * 86_400 + self.fresh.next() as i64 * 86_400;
        self.local()
            .generate_key(
                Alg::EdDSA,
                tessera_core::admin::KeyWindow {
                    not_before: Some(tessera_core::Timestamp(ahead)),
                    not_after: Some(tessera_core::Timestamp(ahead + 3600)),
                },
            )
            .await
            .expect("key")
            .kid
    }
}

fn enc_path(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The request that performs `op` (at `path` of the OpenAPI table) on a fresh target of `kind`.
async fn fixture(
    w: &World,
    op: Operation,
    path: &str,
    kind: TargetKind,
) -> (String, Option<Value>) {
    use Operation as O;
    let mut p = path.to_owned();
    let mut body = None;
    // The resource a replacing body must name as its path does.
    let mut named = String::new();
    if op == O::RevokeApplicationConsents {
        // The kind is that of the users who consented: an ordinary application, and a consent
        // of a user of the kind.
        let app = w.app(TargetKind::Ordinary).await;
        let user = w.user(kind).await;
        w.h.provider
            .store
            .put_consent(&tessera_core::model::Consent {
                user_id: user,
                client_id: app.clone(),
                scopes: vec!["openid".into()],
                updated_at: tessera_core::Timestamp(crate::support::now()),
            })
            .await
            .expect("consent");
        p = p.replace("{id}", &app);
    } else if p.contains("/applications/{id}") {
        p = p.replace("{id}", &w.app(kind).await);
    } else if p.starts_with("/users/{id}") {
        p = p.replace("{id}", &w.user(kind).await);
    } else if p.contains("{identifier}") {
        named = w.api(kind).await;
        p = p.replace("{identifier}", &enc_path(&named));
    } else if p.starts_with("/idps/{name}") {
        named = w.idp(kind).await;
        p = p.replace("{name}", &named);
    } else if p.starts_with("/schemes/{name}") {
        named = w.scheme(kind).await;
        p = p.replace("{name}", &named);
    } else if p.starts_with("/scopes/{name}") {
        named = w.scope(kind).await;
        p = p.replace("{name}", &enc_path(&named));
    } else if p.contains("{kid}") {
        p = p.replace(
            "{kid}",
            &if op == O::ReadKey {
                w.kid.clone()
            } else {
                w.future_key().await
            },
        );
    } else if p.starts_with("/groups/{name}") {
        let group = if kind == TargetKind::Protected {
            "tessera-admins"
        } else {
            "staff"
        };
        let member = match (op, kind) {
            // Taking an administrator out of the administrators' group.
            (O::RemoveMember, TargetKind::Protected) => w.user(TargetKind::Protected).await,
            _ => w.user(TargetKind::Ordinary).await,
        };
        p = p.replace("{name}", group).replace("{user}", &member);
    }
    p = p
        .replace("{client_id}", "no-such-client")
        .replace("{sid}", "no-such-session")
        .replace("{grant_id}", "no-such-grant")
        .replace("{factor_id}", "totp")
        .replace("{idp}", "no-such-idp")
        .replace("{subject}", "no-such-subject");
    match op {
        O::CreateApplication => body = Some(w.app_body(kind)),
        O::CreateInitialToken => body = Some(json!({"uses": 1})),
        O::ChangeApplication => body = Some(json!({"description": "changed"})),
        O::CreateApi => {
            let identifier = match kind {
                TargetKind::Protected => w.h.provider.admin_api(),
                _ => format!("https://new{}.example.com", w.fresh.next()),
            };
            body = Some(json!({ "identifier": identifier }));
        }
        O::ReplaceApi => {
            let scopes: Vec<&str> = if kind == TargetKind::Protected {
                AdminScope::ALL.iter().map(|s| s.name()).collect()
            } else {
                vec![]
            };
            body = Some(json!({"identifier": named, "name": "Renamed", "scopes": scopes}));
        }
        O::CreateScope => {
            let name = match kind {
                TargetKind::Protected => "administrator".to_owned(),
                _ => format!("newscope{}", w.fresh.next()),
            };
            body = Some(json!({ "name": name }));
        }
        O::ReplaceScope => body = Some(json!({"name": named, "display_name": "Renamed"})),
        O::CreateScheme => {
            let n = w.fresh.next();
            body = Some(
                json!({"name": format!("new{n}"), "methods": [["password"]], "acr": format!("new-{n}")}),
            );
        }
        O::ReplaceScheme => {
            let n = w.fresh.next();
            body = Some(
                json!({"name": named, "methods": [["password", "totp"]], "acr": format!("r-{n}")}),
            );
        }
        O::RequireEnrolment => body = Some(json!({"required": true})),
        O::CreateIdp => {
            let n = w.fresh.next();
            body = Some(
                json!({"name": format!("newidp{n}"), "issuer": "https://idp.example.com",
                "client_id": "tessera", "auth_method": "none"}),
            );
        }
        O::ReplaceIdp => {
            body = Some(json!({"name": named, "issuer": "https://idp.example.com",
                "client_id": "tessera", "auth_method": "none", "display_name": "Renamed"}));
        }
        O::GenerateKey => {
            let ahead = crate::support::now() + 800 * 86_400;
            body = Some(json!({"alg": "EdDSA", "not_before": ahead, "not_after": ahead + 60}));
        }
        O::ImportKey => {
            body = Some(
                json!({"alg": "ES256", "key_pem": "not a key", "certificate_chain_pem": "none"}),
            )
        }
        O::ScheduleKey => body = Some(json!({})),
        O::ChangeSettings => body = Some(json!({"lifetimes": {}})),
        O::CreateUser => {
            let groups: Vec<&str> = if kind == TargetKind::Protected {
                vec!["tessera-admins"]
            } else {
                vec![]
            };
            body = Some(json!({"username": format!("new{}", w.fresh.next()), "groups": groups}));
        }
        O::ChangeUser => body = Some(json!({"claims": {"nickname": "Nick"}})),
        O::SetPassword => {
            body = Some(json!({"password": PASSWORD, "current_password": PASSWORD}));
        }
        _ => {}
    }
    (p, body)
}

/// A logo upload (its body is the image, not JSON).
async fn put_logo(h: &Harness, path: &str, token: &str) -> Reply {
    let req = Request::builder()
        .method("PUT")
        .uri(format!("{V1}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "image/png")
        .body(Body::from(crate::logo::png()))
        .expect("request");
    h.send(req).await
}

#[tokio::test]
async fn every_scope_meets_every_operation_as_the_model_says() {
    let (h, selfie, self_app) = with_selfie().await;
    let kid = h.provider.keys().all().next().expect("a key").kid.clone();
    let w = World {
        selfie,
        kid,
        partner_jwk: crate::assertions::key_pair("partner").jwk,
        fresh: Fresh(std::sync::atomic::AtomicUsize::new(0)),
        h,
    };
    let mut tokens = Vec::new();
    for scopes in scope_sets() {
        let client = automation(&w.h, &names(&scopes)).await;
        tokens.push((scopes, client));
    }
    let mut cells = 0;
    for o in OPS {
        for &kind in o.operation.targets() {
            // `/users/me` names the caller itself: only a user's own token has one.
            if o.path == "/users/me" && kind != TargetKind::Own {
                continue;
            }
            let need = required(o.operation, kind);
            for (scopes, client) in &tokens {
                // A user's own token is made anew: a permitted cell may revoke their grants.
                let token = if kind == TargetKind::Own {
                    selfie_token(&w.h, &self_app, scopes).await
                } else {
                    client.clone()
                };
                let token = &token;
                let (path, body) = fixture(&w, o.operation, o.path, kind).await;
                let method = o.method.to_uppercase();
                let r = if o.operation == Operation::SetLogo {
                    put_logo(&w.h, &path, token).await
                } else {
                    call(&w.h, &method, &path, token, body).await
                };
                let allowed = need.met_by(|s| scopes.contains(&s));
                let what = format!(
                    "{method} {path} ({kind:?}) with {:?}: {} {}",
                    names(scopes),
                    r.status,
                    r.text
                );
                if allowed {
                    assert_ne!(r.status, StatusCode::FORBIDDEN, "allowed: {what}");
                    assert!(r.status.as_u16() < 500, "{what}");
                } else {
                    assert_eq!(r.status, StatusCode::FORBIDDEN, "refused: {what}");
                    assert!(
                        r.header("www-authenticate").contains("insufficient_scope"),
                        "{what}"
                    );
                }
                cells += 1;
            }
        }
    }
    assert!(cells > 900, "{cells} cells");
}

/// The command line acts as the operator of the machine: every operation on every target.
#[test]
fn the_command_line_may_do_everything_the_model_knows() {
    let local = Caller::local();
    for op in Operation::ALL {
        for &kind in op.targets() {
            assert!(local.meets(required(op, kind)), "{op:?} {kind:?}");
        }
    }
}

/// A portal session holding `scopes` for `user`: the session cookie is the admin API token.
struct Portal<'a> {
    h: &'a Harness,
    token: String,
}

impl Portal<'_> {
    async fn send(&self, method: &str, path: &str, form: Option<&str>) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", format!("tessera_admin={}", self.token));
        let body = match form {
            Some(f) => {
                b = b.header("content-type", "application/x-www-form-urlencoded");
                Body::from(f.to_owned())
            }
            None => Body::empty(),
        };
        self.h.send(b.body(body).expect("request")).await
    }

    /// The session's CSRF token, from any page it renders.
    async fn csrf(&self) -> String {
        let page = self.send("GET", "/admin/audit", None).await;
        hidden(&page.text, "csrf")
    }
}

#[tokio::test]
async fn the_portal_refuses_what_the_model_refuses() {
    let (h, _, self_app) = with_selfie().await;
    let local = h.provider.admin(Caller::local());
    let ordinary = h.user("ordinary").await;
    let root = local
        .create_user(&UserSpec {
            username: "root".into(),
            groups: vec!["tessera-admins".into()],
            ..UserSpec::default()
        })
        .await
        .expect("root")
        .id;
    let admin_app = local
        .create_client(&ClientSpec {
            apis: vec![h.provider.admin_api()],
            scopes: vec!["config:read".into()],
            ..ClientSpec::new("admin automation", ClientType::M2m)
        })
        .await
        .expect("app")
        .client
        .client_id;
    let plain_app = local
        .create_client(&ClientSpec::new("plain", ClientType::M2m))
        .await
        .expect("app")
        .client
        .client_id;
    use Operation as O;
    use TargetKind as K;
    let cases = vec![
        case(
            "GET",
            "/admin/applications".into(),
            vec![],
            O::ListApplications,
            K::Ordinary,
        ),
        case(
            "GET",
            "/admin/users".into(),
            vec![],
            O::ListUsers,
            K::Ordinary,
        ),
        case(
            "GET",
            "/admin/keys".into(),
            vec![],
            O::ListKeys,
            K::Ordinary,
        ),
        case(
            "GET",
            "/admin/settings".into(),
            vec![],
            O::ReadSettings,
            K::Ordinary,
        ),
        case(
            "GET",
            format!("/admin/applications/{plain_app}/rotate"),
            vec![],
            O::RotateSecret,
            K::Ordinary,
        ),
        case(
            "GET",
            format!("/admin/applications/{admin_app}/rotate"),
            vec![],
            O::RotateSecret,
            K::Protected,
        ),
        case(
            "GET",
            format!("/admin/users/{ordinary}/delete"),
            vec![],
            O::DeleteUser,
            K::Ordinary,
        ),
        case(
            "GET",
            format!("/admin/users/{root}/delete"),
            vec![],
            O::DeleteUser,
            K::Protected,
        ),
        case(
            "POST",
            format!("/admin/users/{ordinary}/blocked"),
            vec![("blocked", "false".into())],
            O::UnblockUser,
            K::Ordinary,
        ),
        case(
            "POST",
            format!("/admin/users/{root}/blocked"),
            vec![("blocked", "false".into())],
            O::UnblockUser,
            K::Protected,
        ),
        case(
            "POST",
            format!("/admin/users/{ordinary}/password"),
            vec![("password", PASSWORD.into())],
            O::SetPassword,
            K::Ordinary,
        ),
        case(
            "POST",
            format!("/admin/users/{root}/password"),
            vec![("password", PASSWORD.into())],
            O::SetPassword,
            K::Protected,
        ),
        case(
            "POST",
            "/admin/users".into(),
            vec![
                ("username", "new-admin".into()),
                ("password", PASSWORD.into()),
                ("groups", "tessera-admins".into()),
            ],
            O::CreateUser,
            K::Protected,
        ),
        case(
            "POST",
            "/admin/apis".into(),
            vec![
                ("identifier", h.provider.admin_api()),
                ("name", "Mine".into()),
            ],
            O::CreateApi,
            K::Protected,
        ),
        case(
            "POST",
            "/admin/keys/import".into(),
            vec![
                ("alg", "ES256".into()),
                ("key_pem", "x".into()),
                ("chain_pem", "x".into()),
            ],
            O::ImportKey,
            K::Ordinary,
        ),
        case(
            "POST",
            "/admin/settings".into(),
            vec![],
            O::ChangeSettings,
            K::Ordinary,
        ),
        case(
            "GET",
            "/admin/audit".into(),
            vec![],
            O::ReadAudit,
            K::Ordinary,
        ),
        case("GET", "/admin".into(), vec![], O::ReadUsage, K::Ordinary),
        case(
            "GET",
            format!("/admin/applications/{plain_app}?tab=usage"),
            vec![],
            O::ReadUsage,
            K::Ordinary,
        ),
        case(
            "POST",
            "/admin/schemes".into(),
            vec![
                ("name", "portal-made".into()),
                ("methods", "password+totp, passkey".into()),
                ("acr", "urn:example:portal".into()),
            ],
            O::CreateScheme,
            K::Ordinary,
        ),
        case(
            "POST",
            format!("/admin/users/{ordinary}/factors"),
            vec![("factor", "totp".into())],
            O::RemoveFactor,
            K::Ordinary,
        ),
        case(
            "POST",
            format!("/admin/users/{root}/factors"),
            vec![("factor", "totp".into())],
            O::RemoveFactor,
            K::Protected,
        ),
        case(
            "POST",
            format!("/admin/users/{root}/enrolment"),
            vec![("required", "true".into())],
            O::RequireEnrolment,
            K::Protected,
        ),
        case(
            "GET",
            format!("/admin/users/{root}/factors?factor=totp"),
            vec![],
            O::RemoveFactor,
            K::Protected,
        ),
        case(
            "GET",
            "/admin/schemes/delete?name=none".into(),
            vec![],
            O::DeleteScheme,
            K::Ordinary,
        ),
        case(
            "GET",
            "/admin/idps".into(),
            vec![],
            O::ListIdps,
            K::Ordinary,
        ),
        case(
            "POST",
            "/admin/idps".into(),
            vec![
                ("name", "portal-idp".into()),
                ("protocol", "oidc".into()),
                ("issuer", "https://login.example.com".into()),
                ("client_id", "tessera".into()),
                ("auth_method", "none".into()),
                ("jit", "on".into()),
                ("enabled", "on".into()),
            ],
            O::CreateIdp,
            K::Ordinary,
        ),
        case(
            "GET",
            "/admin/idps/delete?name=none".into(),
            vec![],
            O::DeleteIdp,
            K::Ordinary,
        ),
        case(
            "POST",
            format!("/admin/users/{ordinary}/identities"),
            vec![("idp", "corp".into()), ("subject", "s-1".into())],
            O::UnlinkIdentity,
            K::Ordinary,
        ),
        case(
            "GET",
            format!("/admin/users/{root}/identities?idp=corp&subject=s-1"),
            vec![],
            O::UnlinkIdentity,
            K::Protected,
        ),
    ];
    assert_eq!(cases.len(), 30);
    let mut checked = 0;
    for scopes in scope_sets() {
        let portal = Portal {
            h: &h,
            token: selfie_token(&h, &self_app, &scopes).await,
        };
        let csrf = portal.csrf().await;
        for PortalCase {
            method,
            path,
            fields,
            op,
            kind,
        } in &cases
        {
            let mut pairs: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            if *op == O::ChangeSettings {
                let page = portal.send("GET", "/admin/settings", None).await;
                // Without config:read there is no form to take the tag from.
                let etag = if page.text.contains("name=\"etag\"") {
                    hidden(&page.text, "etag")
                } else {
                    String::new()
                };
                let r = portal
                    .send(
                        "POST",
                        path,
                        Some(&enc(&[("csrf", &csrf), ("etag", &etag)])),
                    )
                    .await;
                check(&r, *op, *kind, &scopes, path);
                checked += 1;
                continue;
            }
            pairs.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            let form = (*method == "POST").then(|| enc(&pairs));
            let r = portal.send(method, path, form.as_deref()).await;
            check(&r, *op, *kind, &scopes, path);
            checked += 1;
        }
    }
    assert_eq!(checked, cases.len() * scope_sets().len());
}

/// One portal request, the operation it performs and the kind of its target.
struct PortalCase {
    method: &'static str,
    path: String,
    fields: Vec<(&'static str, String)>,
    op: Operation,
    kind: TargetKind,
}

fn case(
    method: &'static str,
    path: String,
    fields: Vec<(&'static str, String)>,
    op: Operation,
    kind: TargetKind,
) -> PortalCase {
    PortalCase {
        method,
        path,
        fields,
        op,
        kind,
    }
}

fn check(r: &Reply, op: Operation, kind: TargetKind, scopes: &[AdminScope], path: &str) {
    let allowed = required(op, kind).met_by(|s| scopes.contains(&s));
    let what = format!(
        "{op:?} {path} ({kind:?}) with {:?}: {}",
        names(scopes),
        r.status
    );
    if allowed {
        assert_ne!(
            r.status,
            StatusCode::FORBIDDEN,
            "allowed: {what}: {}",
            r.text
        );
    } else {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "refused: {what}");
        assert!(r.text.contains("does not allow"), "{what}: {}", r.text);
    }
}

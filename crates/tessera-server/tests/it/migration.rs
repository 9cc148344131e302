//! Moving in from another system: imported password hashes (bcrypt, PBKDF2, scrypt, argon2 of
//! other costs) sign in, and the first successful sign-in replaces each with argon2id at Tessera's
//! cost, without the apply file that imported it undoing that; a Keycloak realm export imports.

use http::StatusCode;
use serde_json::Value;
use tessera_core::admin::{Action, Caller, Outcome, Spec, UserSpec};
use tessera_core::model::{AuthMethod, ClientType, GrantType};
use tessera_core::password;

use crate::support::Harness;

/// One vector of the password hash fixture (made by the other systems' own libraries).
fn vector(id: &str) -> (String, String, String) {
    let doc: Value = serde_json::from_str(include_str!(
        "../../../tessera-core/tests/password_hashes.json"
    ))
    .expect("JSON");
    let v = doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"));
    let s = |k: &str| v[k].as_str().expect(k).to_owned();
    (s("hash"), s("password"), s("wrong_password"))
}

async fn stored_hash(h: &Harness, user: &str) -> String {
    h.provider
        .store
        .find_user(user)
        .await
        .expect("store")
        .expect("user")
        .password_hash
        .expect("hash")
}

#[tokio::test]
async fn imported_hashes_sign_in_then_become_argon2id() {
    let h = Harness::new().await;
    let app = h
        .web_app(|s| s.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::Password]))
        .await;
    let people = [
        ("php", "bcrypt-2y-1"),
        ("django", "django-pbkdf2_sha256-1"),
        ("flask", "werkzeug-scrypt-1"),
        ("passlib", "passlib-pbkdf2_sha512-1"),
        ("old-argon", "argon2i-phc-noversion-1"),
    ];
    let spec = Spec {
        users: people
            .iter()
            .map(|(user, id)| UserSpec {
                username: (*user).into(),
                password_hash: Some(vector(id).0),
                ..UserSpec::default()
            })
            .collect(),
        ..Spec::default()
    };
    let admin = h.provider.admin(Caller::local());
    admin
        .apply_plan(&admin.plan(&spec, false).await.expect("plan"))
        .await
        .expect("apply");

    for (user, id) in people {
        let (imported, pw, wrong) = vector(id);
        let stored = password::stored_form(&imported).expect("readable");
        assert_eq!(stored_hash(&h, user).await, stored, "{id}");
        // A wrong password changes nothing.
        assert_eq!(
            h.password_grant(&app, user, &wrong).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(stored_hash(&h, user).await, stored, "{id}");
        // The right one signs in and replaces the hash with Tessera's argon2id.
        assert_eq!(
            h.password_grant(&app, user, &pw).await,
            StatusCode::OK,
            "{id}"
        );
        let now = stored_hash(&h, user).await;
        assert!(
            now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{id}: {now}"
        );
        assert!(!password::needs_rehash(&now));
        // And keeps signing in, on the new hash.
        assert_eq!(
            h.password_grant(&app, user, &pw).await,
            StatusCode::OK,
            "{id}"
        );
        assert_eq!(
            stored_hash(&h, user).await,
            now,
            "{id}: rehashed once, not at every sign-in"
        );
    }

    // The file that imported the old hashes is still in step: it does not put them back.
    let again = admin.plan(&spec, false).await.expect("plan");
    assert!(
        again.items.iter().all(|i| i.action == Action::Unchanged),
        "{:?}",
        again.items
    );
    // Nor when an administrator sets a new password: the imported hash stays known.
    admin
        .set_user_password(
            "flask",
            &tessera_core::admin::PasswordChange {
                password: "a brand new password".into(),
                current_password: None,
            },
        )
        .await
        .expect("set");
    let after_reset = admin.plan(&spec, false).await.expect("plan");
    assert!(
        after_reset
            .items
            .iter()
            .all(|i| i.action == Action::Unchanged),
        "{:?}",
        after_reset.items
    );
    // A different hash declared for one of them is a real change, and is applied.
    let (other, other_pw, _) = vector("bcrypt-2b-1");
    let mut changed = spec.clone();
    changed.users[0].password_hash = Some(other);
    let plan = admin.plan(&changed, false).await.expect("plan");
    assert_eq!(plan.items[0].action, Action::Update);
    admin.apply_plan(&plan).await.expect("apply");
    assert_eq!(
        h.password_grant(&app, "php", &other_pw).await,
        StatusCode::OK
    );

    // Each replacement is in the audit log, naming the scheme it replaced.
    let events = h
        .provider
        .store
        .list_events(&tessera_core::audit::AuditQuery {
            action: Some("user.password_rehashed".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("events");
    let from: Vec<&str> = events
        .iter()
        .filter_map(|e| e.detail["from"].as_str())
        .collect();
    for scheme in [
        "bcrypt",
        "pbkdf2-sha256",
        "scrypt",
        "pbkdf2-sha512",
        "argon2i",
    ] {
        assert!(from.contains(&scheme), "{scheme} in {from:?}");
    }
}

fn keycloak_export() -> &'static str {
    include_str!("../../../tessera-core/tests/keycloak-realm-export.json")
}

/// The realm export of Keycloak 26 (`kc.sh export`), written from Keycloak's documented format
/// with real hashes: each mapped feature lands, what cannot be carried over is reported with the
/// reason, and the users sign in with their Keycloak passwords, then on argon2id.
#[tokio::test]
async fn a_keycloak_realm_imports_and_its_users_sign_in() {
    let h = Harness::new().await;
    let admin = h.provider.admin(Caller::local());
    let import = admin
        .import_keycloak(keycloak_export(), None)
        .await
        .expect("import");
    assert_eq!(
        (import.realm.as_str(), import.keycloak_version.as_str()),
        ("acme", "26.0.7")
    );
    let spec = &import.spec;
    let found = |at: &str| {
        import
            .findings
            .iter()
            .find(|f| f.at == at)
            .unwrap_or_else(|| panic!("no finding at {at}: {:#?}", import.findings))
    };

    // Scopes, their claims, and the API their audience mapper names.
    let department = spec
        .scopes
        .iter()
        .find(|s| s.name == "department")
        .expect("scope");
    assert_eq!(department.claims["department"], "department");
    assert_eq!(department.claims["groups"], "groups");
    assert_eq!(department.display_name, "Your department");
    assert_eq!(spec.apis[0].identifier, "https://api.example.com/orders");
    assert_eq!(spec.apis[0].scopes, ["read:orders"]);
    assert_eq!(
        found("clientScopes[department].protocolMappers[tenant]").outcome,
        Outcome::Dropped
    );
    assert!(
        found("clientScopes[department].protocolMappers[cost centre (script)]")
            .reason
            .contains("script")
    );

    // Applications: type, grants, URIs, authentication, PKCE, lifetimes, scopes.
    let client = |id: &str| {
        spec.clients
            .iter()
            .find(|c| c.client_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no client {id}"))
    };
    let web = client("webapp");
    assert_eq!(web.client_type, ClientType::Web);
    assert_eq!(
        web.client_secret.as_deref(),
        Some("nT4qLx9cVb2ZrW7yHs5KdE3mPa8JfG6u")
    );
    assert_eq!(
        web.redirect_uris,
        ["https://app.example.com/oauth2/callback"]
    );
    assert!(web
        .post_logout_redirect_uris
        .contains(&"https://app.example.com/logged-out".to_owned()));
    assert_eq!(web.pkce_required, Some(true));
    assert_eq!(
        web.frontchannel_logout_uri.as_deref(),
        Some("https://app.example.com/logout/frontchannel")
    );
    assert_eq!(
        web.backchannel_logout_uri.as_deref(),
        Some("https://app.example.com/logout/backchannel")
    );
    assert!(web
        .allowed_origins
        .contains(&"https://app.example.com".to_owned()));
    assert_eq!(
        found("clients[webapp].redirectUris[0]").outcome,
        Outcome::Dropped
    );
    let spa = client("spa");
    assert_eq!(spa.client_type, ClientType::Spa);
    assert_eq!(spa.allowed_origins, ["https://spa.example.com"]);
    assert!(spa.scopes.contains(&"read:orders".to_owned()));
    assert_eq!(spa.apis, ["https://api.example.com/orders"]);
    assert_eq!(spa.access_token_ttl, Some(300));
    let worker = client("orders-worker");
    assert_eq!(worker.client_type, ClientType::M2m);
    assert_eq!(worker.grant_types, Some(vec![GrantType::ClientCredentials]));
    let partner = client("partner-gateway");
    assert_eq!(partner.auth_method, Some(AuthMethod::PrivateKeyJwt));
    assert_eq!(
        partner.jwks_uri.as_deref(),
        Some("https://partner.example.net/.well-known/jwks.json")
    );
    for (at, reason) in [
        ("clients[intranet-wiki]", "must use https"),
        ("clients[orders-api]", "bearer-only"),
        ("clients[https://sp.example.com/saml/metadata]", "SAML"),
        ("clients[account]", "Keycloak's own client"),
    ] {
        let f = found(at);
        assert_eq!(f.outcome, Outcome::NotImported, "{at}");
        assert!(f.reason.contains(reason), "{at}: {}", f.reason);
    }

    // The upstream identity provider, with its secret.
    let corp = &spec.identity_providers[0];
    assert_eq!(corp.name, "corp-oidc");
    assert_eq!(
        corp.issuer.as_deref(),
        Some("https://login.corp.example.com")
    );
    assert_eq!(
        corp.client_secret.as_deref(),
        Some("corp-oidc-Secret-9f8e7d6c")
    );
    assert!(found("identityProviders[partner-saml]")
        .reason
        .contains("metadata"));

    // Users: claims, attributes, groups and realm roles as groups; the refused ones say why.
    let user = |name: &str| spec.users.iter().find(|u| u.username == name);
    let alice = user("alice").expect("alice");
    assert_eq!(alice.claims["email"], "alice@example.com");
    assert_eq!(alice.claims["given_name"], "Alice");
    assert_eq!(alice.claims["locale"], "en");
    assert_eq!(alice.attributes["department"], "engineering");
    assert!(
        alice.groups.contains(&"platform".to_owned()),
        "{:?}",
        alice.groups
    );
    assert!(alice.groups.contains(&"admin".to_owned()));
    assert!(
        alice.groups.contains(&"auditor".to_owned()),
        "a role of a parent group"
    );
    assert!(user("judy").expect("judy").blocked);
    assert!(user("heidi").is_none() && user("ivan").is_none() && user("Ivan").is_none());
    assert!(found("users[heidi]").reason.contains("md5-custom"));
    assert!(found("users[ivan]").reason.contains("case"));
    assert!(found("users[grace].credentials[1]").reason.contains("otp"));
    assert_eq!(
        found("users[service-account-orders-worker]").outcome,
        Outcome::NotImported
    );

    // It applies as it is, and the users sign in with their Keycloak passwords.
    admin
        .apply_plan(&admin.plan(spec, false).await.expect("plan"))
        .await
        .expect("apply");
    let app = h
        .web_app(|s| s.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::Password]))
        .await;
    for (user, pw) in [
        ("alice", "Argon2-Alice!2024"),
        ("bob", "bob-legacy-27500"),
        ("carol", "Carol#Sha256#2023"),
        ("dave", "Dave.Sha512.210k"),
        ("erin", "erin sha1 légacy"),
        ("frank", "Frank$Bcrypt10"),
    ] {
        assert_eq!(
            h.password_grant(&app, user, "not the password").await,
            StatusCode::BAD_REQUEST,
            "{user}"
        );
        assert_eq!(
            h.password_grant(&app, user, pw).await,
            StatusCode::OK,
            "{user}"
        );
        assert!(stored_hash(&h, user)
            .await
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            h.password_grant(&app, user, pw).await,
            StatusCode::OK,
            "{user}"
        );
    }
    // Alice's old password (a password-history credential) is not her password.
    assert_eq!(
        h.password_grant(&app, "alice", "Old-Alice-Pass-0").await,
        StatusCode::BAD_REQUEST
    );
    // A disabled Keycloak user stays blocked.
    assert_eq!(
        h.password_grant(&app, "judy", "Judy-Disabled-9").await,
        StatusCode::BAD_REQUEST
    );
    // The import again, once applied: an import adds, it never changes what is there.
    let again = admin
        .import_keycloak(keycloak_export(), None)
        .await
        .expect("import");
    let s = &again.spec;
    assert!(
        s.clients.is_empty() && s.users.is_empty() && s.scopes.is_empty() && s.apis.is_empty(),
        "{s:?}"
    );
    assert!(s.identity_providers.is_empty());
    let exists = |at: &str| {
        again
            .findings
            .iter()
            .any(|f| f.at == at && f.reason.contains("already in this Tessera"))
    };
    for at in [
        "clients[webapp]",
        "users[alice]",
        "clientScopes[department]",
        "apis[https://api.example.com/orders]",
        "identityProviders[corp-oidc]",
    ] {
        assert!(exists(at), "{at}");
    }
}

/// Bad exports are refused with the place in the file; an export of several realms needs one named.
#[tokio::test]
async fn bad_keycloak_exports_say_where() {
    let h = Harness::new().await;
    let admin = h.provider.admin(Caller::local());
    let err = |text: &str, realm: Option<&str>| {
        let admin = &admin;
        let text = text.to_owned();
        let realm = realm.map(str::to_owned);
        async move {
            admin
                .import_keycloak(&text, realm.as_deref())
                .await
                .expect_err("refused")
                .to_string()
        }
    };
    let malformed = err("{\"realm\": \"acme\",\n \"clients\": [", None).await;
    assert!(malformed.contains("line 2"), "{malformed}");
    let typed = err(
        r#"{"realm": "acme", "keycloakVersion": "26.0.1", "clients": [{"clientId": "x", "redirectUris": "https://a"}]}"#,
        None,
    )
    .await;
    assert!(typed.contains("clients[0].redirectUris"), "{typed}");
    let old = err(r#"{"realm": "acme", "keycloakVersion": "12.0.4"}"#, None).await;
    assert!(
        old.contains("keycloakVersion") && old.contains("19 to 26"),
        "{old}"
    );
    let unnamed = err(r#"{"realm": "acme"}"#, None).await;
    assert!(unnamed.contains("keycloakVersion"), "{unnamed}");
    let two = r#"[{"realm": "a", "keycloakVersion": "25.0.0"}, {"realm": "b", "keycloakVersion": "25.0.0"}]"#;
    assert!(err(two, None).await.contains("--realm"));
    let b = admin
        .import_keycloak(two, Some("b"))
        .await
        .expect("realm b");
    assert_eq!(b.realm, "b");

    // An export cannot reach Tessera's own records, its administrators' group (as a role or a
    // group) or an existing user (an administrator above all), whatever the case.
    admin
        .create_user(&UserSpec {
            username: "root".into(),
            groups: vec!["tessera-admins".into()],
            ..UserSpec::default()
        })
        .await
        .expect("administrator");
    let admin_api = h.provider.admin_api();
    let hostile = format!(
        r#"{{"realm": "x", "keycloakVersion": "26.0.0",
        "clients": [{{"clientId": "tessera-admin-portal", "publicClient": true,
                     "redirectUris": ["https://evil.example.com/cb"]}},
                    {{"clientId": "{admin_api}", "publicClient": true,
                     "redirectUris": ["https://evil.example.com/cb"]}}],
        "clientScopes": [{{"name": "config:write", "protocol": "openid-connect"}}],
        "groups": [{{"name": "tessera-admins", "path": "/tessera-admins"}}],
        "users": [{{"username": "mallory", "realmRoles": ["tessera-admins", "tessera-admins\u200b"],
                   "groups": ["/tessera-admins"],
                   "credentials": [{{"type": "password", "value": "a long enough password"}}]}},
                  {{"username": "ROOT", "credentials": [{{"type": "password", "value": "the attacker's password"}}]}},
                  {{"username": "temp", "credentials": [{{"type": "password", "value": "a shared first password", "temporary": true}}]}}]}}"#
    );
    let imported = admin.import_keycloak(&hostile, None).await.expect("import");
    assert!(imported.spec.clients.is_empty() && imported.spec.scopes.is_empty());
    assert!(imported
        .findings
        .iter()
        .any(|f| f.at == format!("clients[{admin_api}]") && f.reason.contains("admin API")));
    assert!(imported
        .findings
        .iter()
        .any(|f| f.at == "users[ROOT]" && f.reason.contains("already in this Tessera")));
    let temp = imported
        .spec
        .users
        .iter()
        .find(|u| u.username == "temp")
        .expect("temp");
    assert!(
        temp.password_hash.is_none(),
        "a temporary password is not carried over"
    );
    let mallory = &imported.spec.users[0];
    assert!(mallory.groups.is_empty(), "{:?}", mallory.groups);
    assert!(mallory.password.is_none(), "the file keeps hashes only");
    assert!(mallory
        .password_hash
        .as_deref()
        .is_some_and(|h| h.starts_with("$argon2id$")));
    let reasons: Vec<&str> = imported
        .findings
        .iter()
        .map(|f| f.reason.as_str())
        .collect();
    let own = reasons
        .iter()
        .filter(|r| r.contains("Tessera's own"))
        .count();
    assert_eq!(own, 2, "{reasons:?}");
    let refused_admin = reasons
        .iter()
        .filter(|r| r.contains("Tessera administrator"))
        .count();
    assert_eq!(refused_admin, 2, "the role and the group: {reasons:?}");
}

/// The command line: the file and the report, the plan with `--apply --dry-run`, then applied.
#[test]
fn tessera_import_keycloak_writes_the_file_and_the_report() {
    use crate::process::{cli, json, stdout, tessera};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let export = d.join("realm-export.json");
    std::fs::write(&export, keycloak_export()).expect("write");
    let export = export.to_str().expect("path");
    let out = tessera()
        .args(["import", "keycloak", export, "-f", "acme.yaml"])
        .current_dir(d)
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("realm acme (Keycloak 26.0.7)"), "{report}");
    assert!(
        report.contains("not imported  users[heidi]  password:"),
        "{report}"
    );
    let file = std::fs::read_to_string(d.join("acme.yaml")).expect("file");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.join("acme.yaml"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "it holds secrets and hashes");
    assert!(file.starts_with("# tessera import keycloak: realm acme"));
    let dry = json(&cli(
        d,
        &[
            "import",
            "keycloak",
            export,
            "--apply",
            "--dry-run",
            "--output",
            "json",
        ],
    ));
    assert_eq!(dry["report"]["imported"]["users"], 9);
    assert!(dry["report"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["at"] == "clients[intranet-wiki]" && f["outcome"] == "not_imported"));
    assert!(dry["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .all(|i| i["action"] == "create"));
    let applied = stdout(&cli(d, &["apply", "-f", "acme.yaml"]));
    assert!(applied.contains("create     client  webapp"), "{applied}");
    let again = stdout(&cli(
        d,
        &["apply", "-f", "acme.yaml", "--dry-run", "--exit-code"],
    ));
    assert!(again.contains("0 change(s)"), "{again}");
    let bad = tessera()
        .args(["import", "keycloak", "acme.yaml"])
        .current_dir(d)
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("malformed JSON at line 1"));
}

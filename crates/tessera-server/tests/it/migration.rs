//! Moving users in from another system: their imported password hashes (bcrypt, PBKDF2, scrypt,
//! argon2 of other costs) sign in, and the first successful sign-in replaces each with argon2id at
//! Tessera's cost, without the apply file that imported it undoing that.

use http::StatusCode;
use serde_json::Value;
use tessera_core::admin::{Action, Caller, Spec, UserSpec};
use tessera_core::model::GrantType;
use tessera_core::password;

use crate::flow::enc;
use crate::support::{Harness, TestClient};

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

async fn password_grant(h: &Harness, app: &TestClient, user: &str, pw: &str) -> StatusCode {
    h.post(
        "/token",
        Some(&app.basic()),
        &enc(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", pw),
        ]),
    )
    .await
    .status
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
            password_grant(&h, &app, user, &wrong).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(stored_hash(&h, user).await, stored, "{id}");
        // The right one signs in and replaces the hash with Tessera's argon2id.
        assert_eq!(
            password_grant(&h, &app, user, &pw).await,
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
            password_grant(&h, &app, user, &pw).await,
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
    // A different hash declared for one of them is a real change, and is applied.
    let (other, other_pw, _) = vector("bcrypt-2b-1");
    let mut changed = spec.clone();
    changed.users[0].password_hash = Some(other);
    let plan = admin.plan(&changed, false).await.expect("plan");
    assert_eq!(plan.items[0].action, Action::Update);
    admin.apply_plan(&plan).await.expect("apply");
    assert_eq!(
        password_grant(&h, &app, "php", &other_pw).await,
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

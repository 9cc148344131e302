//! The `tessera` binary as a real process: zero-configuration start, CLI changes picked up by a
//! running server within a second, `apply`, keys, graceful shutdown on SIGTERM.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::process::{cli, cli_env, json, stdout, tessera, Server};

#[tokio::test]
async fn zero_configuration_server_picks_up_cli_changes_live() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    server.wait_ready().await;

    let key = dir.path().join("tessera-data/master.key");
    assert!(dir.path().join("tessera-data/tessera.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key)
                .expect("master.key")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    cli(
        dir.path(),
        &[
            "api",
            "create",
            "--identifier",
            "https://api.example.com",
            "--scope",
            "read:things",
        ],
    );
    let created = json(&cli_env(
        dir.path(),
        &[
            "client",
            "create",
            "--type",
            "m2m",
            "--name",
            "billing",
            "--api",
            "https://api.example.com",
            "--scope",
            "read:things",
            "--output",
            "json",
        ],
        &[("TESSERA_LIFETIMES__ACCESS_TOKEN", "600")],
    ));
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    assert!(created.get("secret_ciphertext").is_none());

    let took = server.until_status(&id, &secret, 200).await;
    assert!(
        took <= Duration::from_secs(1),
        "a new client works within a second, took {took:?}"
    );
    let body: Value = server.token(&id, &secret).await.json().await.expect("json");
    assert_eq!(
        body["expires_in"], 600,
        "TESSERA_LIFETIMES__ACCESS_TOKEN sets the default lifetime"
    );

    let rotated = json(&cli(
        dir.path(),
        &["client", "rotate-secret", &id, "--output", "json"],
    ));
    let new_secret = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let took = server.until_status(&id, &secret, 401).await;
    assert!(
        took <= Duration::from_secs(1),
        "the old secret is refused within a second, took {took:?}"
    );
    assert_eq!(server.token(&id, &new_secret).await.status(), 200);

    let list = json(&cli(dir.path(), &["client", "list", "--output", "json"]));
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .filter(|c| {
            ![
                tessera_core::admin::PORTAL_CLIENT,
                tessera_core::admin::ACCOUNT_CLIENT,
            ]
            .contains(c)
        })
        .collect();
    assert_eq!(
        ids,
        [id.as_str()],
        "the server adds only the Admin Portal's and the account page's clients"
    );
    assert!(stdout(&cli(dir.path(), &["client", "show", &id])).contains("billing"));
    assert!(
        !stdout(&cli(dir.path(), &["client", "show", &id])).contains(&new_secret),
        "a secret is never shown again"
    );

    let log = server.terminate();
    assert!(
        log.contains("tessera is serving")
            && log.contains("http://localhost:8080")
            && log.contains("tessera-data"),
        "{log}"
    );
    assert!(log.contains("stopped"));
    assert!(
        !log.contains(&secret) && !log.contains(&new_secret),
        "secrets never appear in logs"
    );
}

const SPEC: &str = r#"
scopes:
  - name: read:things
    display_name: Read things
    description: Read access to things
apis:
  - identifier: https://api.example.com
    name: Example API
    scopes: [read:things]
clients:
  - client_id: legacy-billing
    client_secret: an-existing-secret-value-1234
    name: Billing
    type: m2m
    apis: [https://api.example.com]
    scopes: [read:things]
    token_format: opaque
"#;

#[test]
fn apply_is_idempotent_and_prunes_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tessera.yaml");
    std::fs::write(&file, SPEC).expect("write");
    let f = file.to_str().expect("path");

    let first = stdout(&cli(dir.path(), &["apply", "-f", f]));
    assert!(
        first.contains("create     scope   read:things")
            && first.contains("create     client  legacy-billing"),
        "{first}"
    );
    let second = json(&cli(dir.path(), &["apply", "-f", f, "--output", "json"]));
    assert!(
        second["plan"]
            .as_array()
            .expect("plan")
            .iter()
            .all(|i| i["action"] == "unchanged"),
        "{second}"
    );

    std::fs::write(&file, SPEC.replace("name: Billing", "name: Billing v2")).expect("write");
    let dry = stdout(&cli(dir.path(), &["apply", "-f", f, "--dry-run"]));
    assert!(
        dry.contains("update     client  legacy-billing") && dry.contains("dry run"),
        "{dry}"
    );
    assert!(
        stdout(&cli(dir.path(), &["client", "show", "legacy-billing"])).contains("Billing\n"),
        "dry run wrote nothing"
    );
    cli(dir.path(), &["apply", "-f", f]);
    assert!(stdout(&cli(dir.path(), &["client", "show", "legacy-billing"])).contains("Billing v2"));

    cli(
        dir.path(),
        &["client", "create", "--type", "m2m", "--name", "stray"],
    );
    let kept = json(&cli(dir.path(), &["apply", "-f", f, "--output", "json"]));
    assert!(kept["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .all(|i| i["action"] != "delete"));
    let pruned = stdout(&cli(dir.path(), &["apply", "-f", f, "--prune"]));
    assert!(pruned.contains("delete"), "{pruned}");
    assert_eq!(
        json(&cli(dir.path(), &["client", "list", "--output", "json"]))
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "clients:\n  - name: x\n    type: m2m\n    scopes: [nope]\n",
    )
    .expect("write");
    let out = tessera()
        .args(["apply", "-f", bad.to_str().expect("path")])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope nope does not exist"));
}

#[test]
fn key_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = json(&cli(dir.path(), &["key", "list", "--output", "json"]));
    assert_eq!(keys.as_array().map(Vec::len), Some(4));
    let es = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["alg"] == "ES256")
        .expect("ES256")
        .clone();
    assert_eq!(es["state"], "signing");

    let retired = json(&cli(
        dir.path(),
        &[
            "key",
            "retire",
            es["kid"].as_str().expect("kid"),
            "--output",
            "json",
        ],
    ));
    assert_eq!(retired["state"], "retired");
    let next = json(&cli(
        dir.path(),
        &[
            "key",
            "generate",
            "--alg",
            "EdDSA",
            "--not-before",
            "2100-01-01T00:00:00Z",
            "--output",
            "json",
        ],
    ));
    assert_eq!(next["state"], "upcoming");

    let key = dir.path().join("k.pem");
    let cert = dir.path().join("c.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=imported",
            "-days",
            "30",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if made.is_ok_and(|o| o.status.success()) {
        let imported = json(&cli(
            dir.path(),
            &[
                "key",
                "import",
                "--alg",
                "ES256",
                "--key",
                key.to_str().expect("p"),
                "--cert",
                cert.to_str().expect("p"),
                "--output",
                "json",
            ],
        ));
        assert_eq!(imported["state"], "signing");
        let wrong = tessera()
            .args([
                "key",
                "import",
                "--alg",
                "RS256",
                "--key",
                key.to_str().expect("p"),
                "--cert",
                cert.to_str().expect("p"),
            ])
            .current_dir(dir.path())
            .output()
            .expect("run");
        assert!(!wrong.status.success(), "an EC key is refused for RS256");
    }
}

#[test]
fn users_are_managed_from_the_cli_and_apply_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = [("TESSERA_NEW_PASSWORD", "correct horse battery")];
    let u = json(&cli_env(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "Alice",
            "--claim",
            "email=alice@example.com",
            "--claim",
            "email_verified=true",
            "--attribute",
            "department=R&D",
            "--group",
            "staff",
            "--output",
            "json",
        ],
        &pw,
    ));
    assert_eq!(
        u["claims"]["email_verified"], true,
        "JSON values are parsed"
    );
    assert_eq!(u["has_password"], true);
    assert!(
        u.get("password_hash").is_none(),
        "the hash is never printed"
    );
    let id = u["id"].as_str().expect("id").to_owned();
    let shown = json(&cli(
        dir.path(),
        &["user", "show", "alice", "--output", "json"],
    ));
    assert_eq!(shown["id"], id.as_str(), "usernames are case-insensitive");
    let blocked = json(&cli(
        dir.path(),
        &["user", "block", &id, "--output", "json"],
    ));
    assert_eq!(blocked["blocked"], true);
    let updated = json(&cli(
        dir.path(),
        &[
            "user",
            "update",
            "alice",
            "--claim",
            "name=Alice A.",
            "--group",
            "admins",
            "--output",
            "json",
        ],
    ));
    assert_eq!(updated["claims"]["name"], "Alice A.");
    assert_eq!(updated["groups"], serde_json::json!(["admins"]));
    let bad = tessera()
        .args(["user", "update", "alice", "--claim", "colour=blue"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an OpenID Connect standard claim"));
    cli_env(
        dir.path(),
        &["user", "set-password", "alice"],
        &[("TESSERA_NEW_PASSWORD", "another good one")],
    );
    let short = tessera()
        .args(["user", "set-password", "alice", "--password", "short"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(!short.status.success(), "passwords have a minimum length");

    let phc = tessera_core::password::hash("migrated secret").expect("hash");
    let f = dir.path().join("users.yaml");
    std::fs::write(
        &f,
        format!(
            "users:\n  - username: bob\n    password: bob's password\n    claims: {{email: bob@example.com}}\n  - username: carol\n    password_hash: '{phc}'\n    groups: [staff]\nclients:\n  - name: Portal\n    type: web\n    redirect_uris: [https://portal.example.com/cb]\n    consent: auto-accept\n"
        ),
    )
    .expect("write");
    let f = f.to_str().expect("path");
    let first = json(&cli(dir.path(), &["apply", "-f", f, "--output", "json"]));
    let actions: Vec<(String, String)> = first["plan"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or("").to_owned(),
                i["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("user".into(), "create".into())),
        "{actions:?}"
    );
    let again = json(&cli(dir.path(), &["apply", "-f", f, "--output", "json"]));
    assert!(
        again["plan"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["action"] == "unchanged"),
        "idempotent, passwords included: {again}"
    );
    let users = json(&cli(dir.path(), &["user", "list", "--output", "json"]));
    assert_eq!(users.as_array().expect("list").len(), 3);
    cli(dir.path(), &["user", "delete", "bob"]);
    assert_eq!(
        json(&cli(dir.path(), &["user", "list", "--output", "json"]))
            .as_array()
            .expect("list")
            .len(),
        2
    );
}

/// Identity providers from the command line and apply files: the secret is never printed, a
/// provider a scheme names cannot be deleted, a declared secret equal to the stored one is no
/// change, a scheme naming an undeclared provider is refused, and prune removes a provider.
#[test]
fn identity_providers_from_the_cli_and_apply_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let created = json(&cli_env(
        d,
        &[
            "idp",
            "create",
            "corp",
            "--issuer",
            "https://login.corp.example.com",
            "--client-id",
            "tessera",
            "--domain",
            "corp.example.com",
            "--map",
            "email=email",
            "--map",
            "department=attributes.department",
            "--amr",
            "urn:corp:mfa=mfa",
            "--link-by-email",
            "--output",
            "json",
        ],
        &[("TESSERA_IDP_CLIENT_SECRET", "upstream secret 1")],
    ));
    assert_eq!(created["has_client_secret"], true);
    assert!(
        !created.to_string().contains("upstream secret 1"),
        "{created}"
    );
    assert!(created["redirect_uri"]
        .as_str()
        .expect("redirect_uri")
        .ends_with("/federation/corp/callback"));
    assert_eq!(created["mappings"][1]["to"], "attributes.department");
    let bad = tessera()
        .args([
            "idp",
            "create",
            "intranet",
            "--issuer",
            "https://10.0.0.8",
            "--client-id",
            "x",
            "--auth-method",
            "none",
        ])
        .current_dir(d)
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("private"));

    cli(
        d,
        &[
            "scheme",
            "create",
            "corp-sso",
            "--methods",
            "upstream",
            "--acr",
            "urn:corp",
            "--identity-provider",
            "corp",
        ],
    );
    let refused = tessera()
        .args(["idp", "delete", "corp"])
        .current_dir(d)
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("corp-sso"));
    let shown = json(&cli(d, &["idp", "show", "corp", "--output", "json"]));
    assert_eq!(shown["link_by_email"], true);
    assert!(shown.get("client_secret").is_none());

    cli(d, &["user", "create", "--username", "ann"]);
    let none = json(&cli(d, &["user", "identities", "ann", "--output", "json"]));
    assert_eq!(none, serde_json::json!([]));
    let missing = tessera()
        .args(["user", "unlink-identity", "ann", "corp", "s-1"])
        .current_dir(d)
        .output()
        .expect("run");
    assert!(!missing.status.success());

    let file = d.join("idps.yaml");
    let spec = |secret: &str, scheme_idp: &str| {
        format!(
            "identity_providers:\n  - name: corp\n    issuer: https://login.corp.example.com\n    client_id: tessera\n    client_secret: {secret}\n    domains: [corp.example.com]\n    mappings: [{{claim: email, to: email}}, {{claim: department, to: attributes.department}}]\n    amr_map: {{'urn:corp:mfa': mfa}}\n    link_by_email: true\n  - name: social\n    protocol: oauth2\n    authorization_endpoint: https://social.example.com/authorize\n    token_endpoint: https://social.example.com/token\n    userinfo_endpoint: https://api.social.example.com/user\n    client_id: abc\n    client_secret: s2\nschemes:\n  - name: corp-sso\n    methods: [[upstream]]\n    acr: urn:corp\n    identity_providers: [{scheme_idp}]\n"
        )
    };
    std::fs::write(&file, spec("'upstream secret 1'", "corp")).expect("write");
    let f = file.to_str().expect("path");
    let plan = stdout(&cli(d, &["apply", "-f", f]));
    assert!(
        plan.contains("unchanged  idp     corp")
            && plan.contains("create     idp     social")
            && plan.contains("unchanged  scheme  corp-sso"),
        "{plan}"
    );
    std::fs::write(&file, spec("'upstream secret 2'", "corp")).expect("write");
    let plan = stdout(&cli(d, &["apply", "-f", f]));
    assert!(plan.contains("update     idp     corp"), "{plan}");
    std::fs::write(&file, spec("'upstream secret 2'", "nowhere")).expect("write");
    let out = tessera()
        .args(["apply", "-f", f])
        .current_dir(d)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no identity provider nowhere"));

    std::fs::write(
        &file,
        "schemes:\n  - name: corp-sso\n    methods: [[upstream]]\n    acr: urn:corp\n    identity_providers: [corp]\nidentity_providers:\n  - name: corp\n    issuer: https://login.corp.example.com\n    client_id: tessera\n",
    )
    .expect("write");
    let pruned = stdout(&cli(d, &["apply", "-f", f, "--prune"]));
    assert!(
        pruned.contains("update     idp     corp") && pruned.contains("delete     idp     social"),
        "{pruned}"
    );
    let left = json(&cli(d, &["idp", "list", "--output", "json"]));
    assert_eq!(left.as_array().map(Vec::len), Some(1));
    assert_eq!(
        left[0]["has_client_secret"], true,
        "an absent secret is kept"
    );
    assert_eq!(left[0]["link_by_email"], false);
}

//! The real pages in a real browser: Debian chromium, driven by `tests/browser/signin.mjs`
//! (playwright-core), signs in with the keyboard, approves consent and lands on the relying
//! party's redirect; a second run in the same browser profile signs in without a password. The
//! Admin Portal is driven by `tests/browser/portal.mjs`: the wizard, the secret, rotation,
//! lifetimes, blocking a user.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::flow::{enc, pkce, PASSWORD, RP};
use crate::process::{cli_env, exclusive, free_port, json as json_out, Server};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the sign-in driver script with one JSON argument; returns its one line of JSON.
fn drive(args: &Value) -> Value {
    drive_script("signin.mjs", args)
}

/// Runs a driver script of `tests/browser` with one JSON argument; returns its one line of JSON.
fn drive_script(script: &str, args: &Value) -> Value {
    let browser_dir = repo_root().join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").exists() {
        let ok = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&browser_dir)
            .status()
            .expect("npm (Node.js) is needed for the browser test");
        assert!(ok.success(), "npm ci in tests/browser failed");
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the browser test needs Debian's chromium at {chromium} (apt-get install chromium; .ci/run installs it)"
    );
    let out = std::process::Command::new("node")
        .arg(browser_dir.join(script))
        .arg(args.to_string())
        .output()
        .expect("node");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|_| {
        panic!(
            "driver output: {line} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "browser run failed: {v:#}");
    v
}

fn params(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

#[tokio::test]
async fn chromium_signs_in_through_the_real_pages() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [("TESSERA_ISSUER", base.as_str())];
    cli_env(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--claim",
            "email=alice@example.com",
            "--claim",
            "name=Alice Example",
        ],
        &[
            ("TESSERA_ISSUER", base.as_str()),
            ("TESSERA_NEW_PASSWORD", PASSWORD),
        ],
    );
    let c = json_out(&cli_env(
        dir.path(),
        &[
            "client",
            "create",
            "--type",
            "web",
            "--name",
            "Browser RP",
            "--redirect-uri",
            RP,
            "--output",
            "json",
        ],
        &env,
    ));
    let (id, secret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let server = Server::start_on(dir.path(), port, &env);
    server.wait_ready().await;

    let (verifier, challenge) = pkce();
    let authorize = |state: &str| {
        format!(
            "{base}/authorize?{}",
            enc(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", RP),
                ("scope", "openid profile email"),
                ("state", state),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256")
            ])
        )
    };
    let profile = dir.path().join("browser-state.json");
    let first = tokio::task::spawn_blocking({
        let args = json!({"authorize_url": authorize("first"), "username": "alice", "password": PASSWORD,
            "redirect_prefix": RP, "consent": "allow", "storage_state_out": profile});
        move || drive(&args)
    })
    .await
    .unwrap();
    assert_eq!(first["login"]["title"], "Sign in to Browser RP");
    assert_eq!(first["login"]["username_autocomplete"], "username");
    assert_eq!(first["login"]["password_autocomplete"], "current-password");
    assert!(first["login"]["csp"]
        .as_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let scopes: Vec<String> = serde_json::from_value(first["consent_scopes"].clone()).unwrap();
    assert!(
        scopes.iter().any(|s| s.contains("Your email address")),
        "{scopes:?}"
    );
    let url = first["final_url"].as_str().unwrap();
    assert!(url.starts_with(RP), "{url}");
    let p = params(url);
    assert_eq!(p["state"], "first");
    assert_eq!(p["iss"], base);

    let http = crate::process::http();
    let tokens: Value = http
        .post(format!("{base}/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", RP),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");

    // Same browser profile: the session cookie signs in without a password, consent is remembered.
    let second = tokio::task::spawn_blocking({
        let args = json!({"authorize_url": authorize("second"), "redirect_prefix": RP,
            "expect_no_login": true, "storage_state_in": profile});
        move || drive(&args)
    })
    .await
    .unwrap();
    let p = params(second["final_url"].as_str().unwrap());
    assert_eq!(p["state"], "second");
    assert!(p.contains_key("code"));
    server.kill();
}

/// The Admin Portal walk-through in a real browser: an administrator signs in through
/// Tessera (a non-administrator is turned away), sets up each application type with the wizard,
/// copies the secret with its button and gets a token with it, revokes it for a new one (the old
/// one fails, the new one works), edits the access-token lifetime and sees it in issued tokens,
/// and blocks a user whose sign-in is then refused. With `TESSERA_SCREENSHOTS=<dir>` the driver
/// saves the screenshots the README shows.
#[tokio::test]
async fn chromium_administers_through_the_admin_portal() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("TESSERA_ISSUER", base.as_str()),
        ("TESSERA_NEW_PASSWORD", PASSWORD),
    ];
    cli_env(dir.path(), &["admin", "create", "--username", "root"], &env);
    cli_env(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--claim",
            "name=Bob Example",
        ],
        &env,
    );
    let server = Server::start_on(dir.path(), port, &env[..1]);
    server.wait_ready().await;

    let web_redirect = "https://store.example.com/callback";
    let out = tokio::task::spawn_blocking({
        let args = json!({"base": base, "admin": "root", "user": "bob", "password": PASSWORD,
            "web_redirect": web_redirect,
            "screenshots": std::env::var("TESSERA_SCREENSHOTS").ok()});
        move || drive_script("portal.mjs", &args)
    })
    .await
    .unwrap();
    assert!(
        out["non_admin"]["error"]
            .as_str()
            .unwrap()
            .contains("Only members of the tessera-admins group"),
        "{out:#}"
    );
    assert!(out["signed_in_url"]
        .as_str()
        .unwrap()
        .ends_with("/admin/applications"));
    let csp = out["csp"].as_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));

    assert_eq!(
        out["forged"],
        json!({"wrong_csrf": 403, "cross_origin": 403})
    );
    let m2m = &out["m2m"];
    assert!(m2m["warning"]
        .as_str()
        .unwrap()
        .contains("it will not be shown again"));
    assert_eq!(m2m["first_token"]["status"], 200, "{out:#}");
    assert_eq!(m2m["first_token"]["expires_in"], 900, "the seed's default");
    assert_eq!(m2m["saved"], "Saved.");
    let id = m2m["client_id"].as_str().unwrap();
    let (old, new) = (
        m2m["first_secret"].as_str().unwrap(),
        m2m["second_secret"].as_str().unwrap(),
    );
    assert_ne!(old, new);
    let http = crate::process::http();
    let token = |secret: &str| {
        http.post(format!("{base}/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let refused = token(old).await.unwrap();
    assert_eq!(refused.status(), 401, "the revoked secret fails");
    let issued: Value = token(new).await.unwrap().json().await.unwrap();
    assert_eq!(issued["expires_in"], 600, "the edited lifetime: {issued}");

    assert!(
        out["settings"].as_str().unwrap().starts_with("Saved"),
        "{out:#}"
    );
    assert_eq!(
        out["web"]["access_token_ttl"], "1200",
        "set up after the default changed"
    );
    assert_eq!(
        out["list_logos"],
        json!([16]),
        "the Storefront's logo, loaded"
    );
    assert_eq!(out["sign_in_logo"], 16, "the logo on the sign-in page");
    assert_eq!(out["admin_user"]["end_session_buttons"], 1, "{out:#}");
    assert_eq!(
        out["admin_user"]["portal_rows"], 2,
        "the portal in the session and as a grant"
    );
    assert_eq!(out["api"], "The API was added.");
    assert!(out["web"]["client_id"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(out["spa"]["notice"], "The application was created.");
    assert_eq!(out["spa"]["copied_token_url"], format!("{base}/token"));
    assert!(out["blocked"].as_str().unwrap().contains("blocked"));
    let audit: Vec<String> = serde_json::from_value(out["audit_actions"].clone()).unwrap();
    for action in ["client.created", "client.secret_rotated", "user.blocked"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    assert!(
        !out["blocked_sign_in"].as_str().unwrap().is_empty(),
        "the blocked user's sign-in is refused: {out:#}"
    );
    assert_eq!(out["console_errors"], json!([]), "no script or CSP errors");
    server.kill();
}

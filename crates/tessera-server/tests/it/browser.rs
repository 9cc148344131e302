//! The real pages in a real browser: Debian chromium, driven by `tests/browser/signin.mjs`
//! (playwright-core), signs in with the keyboard, approves consent and lands on the relying
//! party's redirect; a second run in the same browser profile signs in without a password. The
//! Admin Portal is driven by `tests/browser/portal.mjs`: the wizard, the secret, rotation,
//! lifetimes, blocking a user. `tests/browser/rp.mjs` is a relying party on openid-client v6.

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
    let (ok, v) = run_script(script, args);
    assert!(ok, "browser run failed: {v:#}");
    v
}

/// [`drive_script`] for a run that may fail: whether it succeeded, and its line of JSON.
fn run_script(script: &str, args: &Value) -> (bool, Value) {
    let browser_dir = browser_tools();
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
    (out.status.success(), v)
}

/// `tests/browser`, its packages installed and chromium present.
fn browser_tools() -> PathBuf {
    let browser_dir = repo_root().join("tests/browser");
    let installed = ["playwright-core", "openid-client"]
        .iter()
        .all(|m| browser_dir.join("node_modules").join(m).exists());
    if !installed {
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
    browser_dir
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

/// openid-client v6, unchanged, with a pushed authorization request (RFC 9126): discovery finds
/// the endpoint, the browser carries only `client_id` and `request_uri`, chromium signs in, and
/// openid-client exchanges the code and validates the ID token. The application requires pushed
/// requests, so the same library without PAR is refused.
#[tokio::test]
async fn openid_client_signs_in_with_a_pushed_request() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let rp = OpenIdClientRp::start(
        dir.path(),
        &[
            "--name",
            "openid-client RP",
            "--require-pushed-authorization-requests",
            "true",
        ],
        json!({}),
    )
    .await;
    let started = rp.step(json!({"step": "start", "par": true})).await;
    assert_eq!(
        started["authorize_params"],
        json!(["client_id", "request_uri"]),
        "{started}"
    );
    let signed_in = rp.sign_in(&started).await;
    let finished = rp.finish(&started, &signed_in).await;
    assert!(
        finished["sub"].as_str().is_some_and(|s| !s.is_empty()),
        "{finished}"
    );
    assert_eq!(finished["scope"], "openid profile", "{finished}");
    assert_eq!(finished["id_token_claims"]["iss"], rp.base.as_str());

    // Not pushed: refused with invalid_request at the redirect URI.
    let plain = rp.step(json!({"step": "start", "par": false})).await;
    let refused = tokio::task::spawn_blocking({
        let args = json!({"authorize_url": plain["authorize_url"], "redirect_prefix": RP,
            "expect_no_login": true});
        move || drive(&args)
    })
    .await
    .unwrap();
    let p = params(refused["final_url"].as_str().unwrap());
    assert_eq!(p["error"], "invalid_request", "{p:?}");
    rp.server.kill();
}

/// Every request and response protection at once, with openid-client v6 unchanged: the request
/// is a request object signed with the application's ES256 key (JAR), encrypted by jose to
/// Tessera's encryption key from its JWKS, and pushed (PAR); the
/// response comes as a JWT (JARM) encrypted to the application's ECDH-ES key; the ID token is
/// encrypted to it too. openid-client decrypts and validates both; chromium signs in between.
#[tokio::test]
async fn openid_client_signs_in_with_par_jar_jarm_and_an_encrypted_id_token() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = tokio::task::spawn_blocking(|| drive_script("rp.mjs", &json!({"step": "keys"})))
        .await
        .unwrap();
    let jwks = dir.path().join("rp-jwks.json");
    std::fs::write(&jwks, keys["public_jwks"].to_string()).unwrap();
    let rp = OpenIdClientRp::start(
        dir.path(),
        &[
            "--name",
            "Protected RP",
            "--jwks-file",
            jwks.to_str().unwrap(),
            "--require-pushed-authorization-requests",
            "true",
            "--require-signed-request-object",
            "true",
            "--id-token-encryption",
            "ECDH-ES/A256GCM",
            "--authorization-encryption",
            "ECDH-ES/A256GCM",
        ],
        json!({"jarm": true, "decrypt": keys["encryption"], "enc": "A256GCM"}),
    )
    .await;
    let started = rp
        .step(
            json!({"step": "start", "par": true, "jar": keys["signing"], "encrypt_request": true}),
        )
        .await;
    assert_eq!(
        started["authorize_params"],
        json!(["client_id", "request_uri"]),
        "{started}"
    );
    let signed_in = rp.sign_in(&started).await;
    let back = params(signed_in["final_url"].as_str().unwrap());
    assert_eq!(
        back.keys().collect::<Vec<_>>(),
        vec!["response"],
        "only the JARM response comes back: {back:?}"
    );
    assert_eq!(
        back["response"].split('.').count(),
        5,
        "the response JWT is encrypted"
    );
    let finished = rp.finish(&started, &signed_in).await;
    assert_eq!(finished["scope"], "openid profile", "{finished}");
    assert_eq!(finished["id_token_claims"]["iss"], rp.base.as_str());
    assert_eq!(
        finished["encrypted"],
        json!({"id_token": true, "authorization_response": true}),
        "{finished}"
    );

    // A plain request (not signed, not pushed) from the same library is refused.
    let (pushed, plain) = rp.try_step(json!({"step": "start", "par": true})).await;
    assert!(
        !pushed
            && plain["error"]
                .as_str()
                .is_some_and(|e| e.contains("signed request object")),
        "{plain}"
    );
    rp.server.kill();
}

/// DPoP (RFC 9449) with openid-client v6 unchanged, the server requiring nonces and the
/// application DPoP-bound tokens: the pushed request carries a proof (binding the code), the code
/// exchange, userinfo and a refresh carry proofs made with the same key (openid-client answering
/// each `use_dpop_nonce` with the nonce it was given); the tokens are bound to the key's
/// thumbprint, and the access token is refused when presented as a plain bearer token.
#[tokio::test]
async fn openid_client_binds_its_tokens_with_dpop_and_server_nonces() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = tokio::task::spawn_blocking(|| drive_script("rp.mjs", &json!({"step": "keys"})))
        .await
        .unwrap();
    let rp = OpenIdClientRp::start_with(
        dir.path(),
        &[
            "--name",
            "DPoP RP",
            "--dpop-bound-access-tokens",
            "true",
            "--require-pushed-authorization-requests",
            "true",
        ],
        json!({"dpop": keys["dpop"]}),
        &[("TESSERA_DPOP__REQUIRE_NONCE", "true")],
    )
    .await;
    let started = rp.step(json!({"step": "start", "par": true})).await;
    let signed_in = rp.sign_in(&started).await;
    let finished = rp.finish(&started, &signed_in).await;
    let bound = &finished["dpop"];
    assert_eq!(finished["token_type"], "dpop", "{finished}");
    assert_eq!(bound["refreshed_token_type"], "dpop", "{finished}");
    assert_eq!(bound["userinfo_sub"], finished["sub"], "{finished}");
    assert_eq!(bound["cnf"]["jkt"], bound["thumbprint"], "{finished}");
    assert_eq!(
        bound["refreshed_cnf"]["jkt"], bound["thumbprint"],
        "{finished}"
    );
    let at = bound["access_token"].as_str().unwrap();
    let r = crate::process::http()
        .get(format!("{}/userinfo", rp.base))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Without the key, the same library is refused a token.
    let (ok, out) = rp
        .try_step(json!({"step": "start", "par": true, "dpop": null}))
        .await;
    assert!(ok, "pushing needs no proof: {out}");
    let signed_in = rp.sign_in(&out).await;
    let (ok, refused) = rp
        .try_step(
            json!({"step": "finish", "callback_url": signed_in["final_url"],
            "state": out["state"], "nonce": out["nonce"], "code_verifier": out["code_verifier"],
            "dpop": null}),
        )
        .await;
    assert!(
        !ok && refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_dpop_proof") || e.contains("DPoP")),
        "{refused}"
    );
    rp.server.kill();
}

/// The device authorization grant (RFC 8628) with openid-client v6 unchanged: it asks for the
/// codes and polls (honouring `interval` and `slow_down`) while chromium opens
/// `verification_uri_complete`, confirms the filled-in code, signs alice in and allows on the
/// consent page; openid-client then gets the tokens and validates the ID token.
#[tokio::test]
async fn openid_client_device_flow_approved_in_chromium_while_it_polls() {
    use std::io::BufRead;
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let rp = OpenIdClientRp::start(
        dir.path(),
        &[
            "--name",
            "TV app",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "device_code",
            "--grant-type",
            "refresh_token",
        ],
        json!({}),
    )
    .await;
    let mut args = rp.args.clone();
    args["step"] = json!("device");
    let base = rp.base.clone();
    let (started, signed_in, finished) = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("node")
            .arg(browser_tools().join("rp.mjs"))
            .arg(args.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("first line");
        let started: Value = serde_json::from_str(line.trim()).expect("device codes");
        let signed_in = drive(
            &json!({"authorize_url": started["verification_uri_complete"],
            "username": "alice", "password": PASSWORD, "consent": "allow", "device": true,
            "redirect_prefix": format!("{base}/device?result=")}),
        );
        line.clear();
        out.read_line(&mut line).expect("second line");
        let status = child.wait().expect("rp.mjs");
        let finished: Value = serde_json::from_str(line.trim()).expect("tokens");
        assert!(status.success(), "{finished}");
        (started, signed_in, finished)
    })
    .await
    .unwrap();
    assert!(
        started["user_code"].as_str().is_some_and(|c| c.len() == 9),
        "{started}"
    );
    assert!(
        signed_in["final_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/device?result=approved")),
        "{signed_in}"
    );
    assert!(
        finished["sub"].as_str().is_some_and(|s| !s.is_empty()),
        "{finished}"
    );
    assert_eq!(finished["token_type"], "bearer", "{finished}");
    rp.server.kill();
}

/// A relying party on openid-client v6 (`tests/browser/rp.mjs`) against a fresh Tessera with the
/// user alice and one web application created with the given CLI arguments.
struct OpenIdClientRp {
    base: String,
    /// What every step of rp.mjs is given: issuer, client, redirect URI, scope and options.
    args: Value,
    server: Server,
}

impl OpenIdClientRp {
    async fn start(dir: &Path, client_args: &[&str], options: Value) -> OpenIdClientRp {
        OpenIdClientRp::start_with(dir, client_args, options, &[]).await
    }

    /// [`OpenIdClientRp::start`], the server also given `server_env`.
    async fn start_with(
        dir: &Path,
        client_args: &[&str],
        options: Value,
        server_env: &[(&str, &str)],
    ) -> OpenIdClientRp {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let env = [("TESSERA_ISSUER", base.as_str())];
        cli_env(
            dir,
            &["user", "create", "--username", "alice"],
            &[
                ("TESSERA_ISSUER", base.as_str()),
                ("TESSERA_NEW_PASSWORD", PASSWORD),
            ],
        );
        let mut create = vec![
            "client",
            "create",
            "--type",
            "web",
            "--redirect-uri",
            RP,
            "--consent",
            "auto-accept",
            "--output",
            "json",
        ];
        create.extend_from_slice(client_args);
        let c = json_out(&cli_env(dir, &create, &env));
        let mut args = json!({"issuer": base, "client_id": c["client_id"],
            "client_secret": c["client_secret"], "redirect_uri": RP, "scope": "openid profile"});
        for (k, v) in options.as_object().expect("options") {
            args[k] = v.clone();
        }
        let mut all_env = env.to_vec();
        all_env.extend_from_slice(server_env);
        let server = Server::start_on(dir, port, &all_env);
        server.wait_ready().await;
        OpenIdClientRp { base, args, server }
    }

    /// One rp.mjs step with the RP's arguments and `extra`: whether it succeeded, and its output.
    async fn try_step(&self, extra: Value) -> (bool, Value) {
        let mut args = self.args.clone();
        for (k, v) in extra.as_object().expect("extra") {
            args[k] = v.clone();
        }
        tokio::task::spawn_blocking(move || run_script("rp.mjs", &args))
            .await
            .expect("driver")
    }

    async fn step(&self, extra: Value) -> Value {
        let (ok, out) = self.try_step(extra).await;
        assert!(ok, "rp.mjs failed: {out:#}");
        out
    }

    /// Chromium signs alice in at the URL a `start` step built.
    async fn sign_in(&self, started: &Value) -> Value {
        let args = json!({"authorize_url": started["authorize_url"], "username": "alice",
            "password": PASSWORD, "redirect_prefix": RP, "consent": "none"});
        tokio::task::spawn_blocking(move || drive(&args))
            .await
            .expect("driver")
    }

    /// The `finish` step: the code exchanged and the ID token validated by openid-client.
    async fn finish(&self, started: &Value, signed_in: &Value) -> Value {
        self.step(
            json!({"step": "finish", "callback_url": signed_in["final_url"],
            "state": started["state"], "nonce": started["nonce"],
            "code_verifier": started["code_verifier"]}),
        )
        .await
    }
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
    assert!(
        out["signed_in_url"].as_str().unwrap().ends_with("/admin"),
        "the dashboard is the Portal's home page"
    );
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
    let web = &out["web"];
    assert!(
        web["encryption_without_keys"]
            .as_str()
            .unwrap()
            .contains("jwks or jwks_uri"),
        "{out:#}"
    );
    assert_eq!(
        web["kept_choice"], "RSA-OAEP-256",
        "the refused form keeps what was chosen"
    );
    assert_eq!(web["encryption_saved"], "Saved.", "{out:#}");
    assert_eq!(web["decoupled_saved"], "Saved.", "{out:#}");
    assert_eq!(
        web["decoupled"],
        json!({"device": true, "ciba": true}),
        "{out:#}"
    );
    assert_eq!(
        web["encryption"],
        json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "userinfo": "ES256",
            "jwks_uri": "https://store.example.com/jwks.json"})
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
    // The dashboard counted the sign-ins of this run (the blocked user's refusal among the
    // failures) and drew its charts; the application's Usage tab draws its own.
    let dashboard = &out["dashboard"];
    assert_eq!(dashboard["heading"], "Dashboard", "{out:#}");
    assert!(dashboard["sign_ins"].as_i64().unwrap() >= 2, "{dashboard}");
    assert!(dashboard["failed"].as_i64().unwrap() >= 1, "{dashboard}");
    assert_eq!(
        dashboard["charts"], 8,
        "four charts for each of the two windows"
    );
    assert_eq!(
        out["app_usage_charts"], 4,
        "sign-ins and tokens, of each window"
    );
    assert_eq!(out["console_errors"], json!([]), "no script or CSP errors");
    server.kill();
}

/// An authorization request of `client_id` (PKCE S256 with `challenge`, nonce `n`), with `extra`
/// parameters.
fn authorize_url(
    base: &str,
    client_id: &str,
    challenge: &str,
    state: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut q: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", RP),
        ("scope", "openid profile"),
        ("state", state),
        ("nonce", "n"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    q.extend_from_slice(extra);
    format!("{base}/authorize?{}", enc(&q))
}

/// Redeems the code of a driver's `final_url` (a redirect to [`RP`] with `state`, from the issuer
/// `base`) at the token endpoint of `server`; returns the ID token's claims.
async fn redeem(
    (server, base): (&str, &str),
    (id, secret): (&str, &str),
    verifier: &str,
    final_url: &Value,
    state: &str,
) -> Value {
    let url = final_url.as_str().expect("final_url");
    assert!(url.starts_with(RP), "{url}");
    let p = params(url);
    assert_eq!(p.get("state").map(String::as_str), Some(state), "{url}");
    assert_eq!(p.get("iss").map(String::as_str), Some(base), "{url}");
    let code = p.get("code").expect("a code");
    let tokens: Value = crate::process::http()
        .post(format!("{server}/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response");
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no ID token ({state}): {tokens}"));
    let claims = crate::flow::jwt_claims(id_token);
    assert_eq!(claims["nonce"], "n", "{claims}");
    claims
}

/// The `amr` of ID token claims.
fn amr(claims: &Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).unwrap_or_else(|_| panic!("amr in {claims}"))
}

/// Multi-factor sign-in in a real browser, driven by `tests/browser/mfa.mjs` with Chromium's
/// virtual WebAuthn authenticator (DevTools protocol). An application whose scheme is a password
/// with TOTP or a passkey, or a passkey alone: alice signs in with her password and sets up a
/// passkey on the enrolment page (then saves her recovery codes); in fresh browsers holding that
/// passkey she signs in with it alone, then with her password and it as the second factor. bob
/// sets up TOTP from the key on the page, later verifies with a fresh code (the code he set it
/// up with is refused: its step is spent) and with a recovery code. A password-only application
/// gives bob acr "0"; asking it again for the scheme's acr in the same browser asks only for the
/// code. The codes are redeemed here and the ID tokens' acr and amr checked.
#[tokio::test]
async fn chromium_signs_in_with_passkeys_totp_and_recovery_codes() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // WebAuthn: the RP id is the issuer's host, and it must be a domain in a secure context;
    // http://localhost is one (the server still listens on 127.0.0.1).
    let base = format!("http://localhost:{port}");
    let env = [("TESSERA_ISSUER", base.as_str())];
    let mfa_acr = "urn:example:mfa";
    for user in ["alice", "bob"] {
        cli_env(
            dir.path(),
            &[
                "user",
                "create",
                "--username",
                user,
                "--claim",
                &format!("name={user}"),
            ],
            &[
                ("TESSERA_ISSUER", base.as_str()),
                ("TESSERA_NEW_PASSWORD", PASSWORD),
            ],
        );
    }
    cli_env(
        dir.path(),
        &[
            "scheme",
            "create",
            "mfa",
            "--methods",
            "password+totp",
            "--methods",
            "password+passkey",
            "--methods",
            "passkey",
            "--acr",
            mfa_acr,
        ],
        &env,
    );
    let client = |name: &str, scheme: Option<&str>| {
        let mut args = vec![
            "client",
            "create",
            "--type",
            "web",
            "--name",
            name,
            "--redirect-uri",
            RP,
            "--consent",
            "auto-accept",
            "--output",
            "json",
        ];
        if let Some(s) = scheme {
            args.extend(["--authentication-scheme", s]);
        }
        let c = json_out(&cli_env(dir.path(), &args, &env));
        (
            c["client_id"].as_str().unwrap().to_owned(),
            c["client_secret"].as_str().unwrap().to_owned(),
        )
    };
    let (mfa_id, mfa_secret) = client("MFA RP", Some("mfa"));
    let (plain_id, plain_secret) = client("Plain RP", None);
    let mfa_app = (mfa_id.as_str(), mfa_secret.as_str());
    let plain_app = (plain_id.as_str(), plain_secret.as_str());
    let server = Server::start_on(dir.path(), port, &env);
    server.wait_ready().await;
    // The server is called at the address it listens on; the browser goes through localhost.
    let urls = (server.base.as_str(), base.as_str());

    let (verifier, challenge) = pkce();
    let at = |id: &str, state: &str| authorize_url(&base, id, &challenge, state, &[]);
    let step_up = authorize_url(
        &base,
        &plain_id,
        &challenge,
        "step_up",
        &[("acr_values", mfa_acr)],
    );
    let args = json!({
        "redirect_prefix": RP,
        "passkey_user": "alice",
        "totp_user": "bob",
        "password": PASSWORD,
        "passkey_name": "Test laptop",
        "screenshots": std::env::var("TESSERA_SCREENSHOTS").ok(),
        "authorize": {
            "passkey_enrol": at(&mfa_id, "passkey_enrol"),
            "passwordless": at(&mfa_id, "passwordless"),
            "passkey_verify": at(&mfa_id, "passkey_verify"),
            "totp_enrol": at(&mfa_id, "totp_enrol"),
            "totp_verify": at(&mfa_id, "totp_verify"),
            "recovery": at(&mfa_id, "recovery"),
            "plain": at(&plain_id, "plain"),
            "step_up": step_up,
        },
    });
    let out = tokio::task::spawn_blocking(move || drive_script("mfa.mjs", &args))
        .await
        .unwrap();

    // A: the enrolment page (its script allowed by the CSP), a passkey, ten recovery codes.
    let a = &out["passkey_enrol"];
    assert_eq!(
        a["pages"],
        json!([
            "Sign in to MFA RP",
            "Set up a second factor",
            "Save your recovery codes"
        ]),
        "{out:#}"
    );
    assert_eq!(a["login_passkey_button"], true, "a passkey alone suffices");
    let csp = a["enrol"]["csp"].as_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    for shown in ["qr_svg", "totp_secret_shown", "passkey_form"] {
        assert_eq!(a["enrol"][shown], true, "{shown}: {out:#}");
    }
    let codes =
        |v: &Value| -> Vec<String> { serde_json::from_value(v["recovery_codes"].clone()).unwrap() };
    let (alice_codes, bob_codes) = (codes(a), codes(&out["totp_enrol"]));
    for c in alice_codes.iter().chain(&bob_codes) {
        let (l, r) = c.split_once('-').unwrap_or_else(|| panic!("{c}"));
        assert!(l.len() == 5 && r.len() == 5, "{c}");
    }
    assert_eq!(alice_codes.len(), 10);
    assert_eq!(bob_codes.len(), 10);
    assert!(alice_codes.iter().all(|c| !bob_codes.contains(c)));
    assert_eq!(
        a["credentials"],
        json!([{"rp_id": "localhost", "is_resident_key": true, "has_user_handle": true,
            "sign_count": 1}]),
        "one discoverable credential for the issuer's host"
    );
    let a_id = redeem(urls, mfa_app, &verifier, &a["final_url"], "passkey_enrol").await;
    assert_eq!(a_id["acr"], mfa_acr);
    let a_amr = amr(&a_id);
    assert!(
        a_amr.iter().any(|m| m == "pwd") && a_amr.iter().any(|m| m == "mfa"),
        "{a_amr:?}"
    );
    assert!(a_amr.iter().any(|m| m == "hwk" || m == "swk"), "{a_amr:?}");

    // B: no cookies, the passkey alone; an authenticator without it fails first, and says so.
    let b = &out["passwordless"];
    assert_eq!(b["pages"], json!(["Sign in to MFA RP"]));
    assert_eq!(b["passkey_button"], "Sign in with a passkey");
    assert!(
        b["without_passkey"]["status"]
            .as_str()
            .unwrap()
            .contains("The passkey was not used"),
        "{out:#}"
    );
    assert_eq!(
        b["navigations"],
        json!(["GET /authorize 200", "POST /login/passkey 303"]),
        "no password posted"
    );
    let b_id = redeem(urls, mfa_app, &verifier, &b["final_url"], "passwordless").await;
    assert_eq!(b_id["sub"], a_id["sub"]);
    assert_eq!(b_id["acr"], mfa_acr);
    let b_amr = amr(&b_id);
    assert!(!b_amr.iter().any(|m| m == "pwd"), "passwordless: {b_amr:?}");
    assert!(b_amr.iter().any(|m| m == "hwk" || m == "swk"), "{b_amr:?}");
    assert!(
        b_amr.iter().any(|m| m == "mfa"),
        "a user-verifying passkey: {b_amr:?}"
    );

    // B': the password, then the passkey as the second factor (the ceremony names her credential).
    let v = &out["passkey_verify"];
    assert_eq!(v["pages"], json!(["Sign in to MFA RP", "Verify it is you"]));
    assert_eq!(
        v["factor_page"],
        json!({"totp": false, "passkey": true, "allow_credentials": 1, "recovery": true})
    );
    let v_id = redeem(urls, mfa_app, &verifier, &v["final_url"], "passkey_verify").await;
    assert_eq!(v_id["sub"], a_id["sub"]);
    assert_eq!(v_id["acr"], mfa_acr);
    let v_amr = amr(&v_id);
    assert!(
        v_amr.iter().any(|m| m == "pwd") && v_amr.iter().any(|m| m == "mfa"),
        "{v_amr:?}"
    );
    assert!(v_amr.iter().any(|m| m == "hwk" || m == "swk"), "{v_amr:?}");

    // C: TOTP set up from the key on the page, then a fresh code; the spent one is refused.
    let c = &out["totp_enrol"];
    assert_eq!(
        c["pages"],
        json!([
            "Sign in to MFA RP",
            "Set up a second factor",
            "Save your recovery codes"
        ])
    );
    assert_eq!(c["key_bytes"], 20, "RFC 4226 §4 R6's recommended 160 bits");
    assert!(
        c["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/"),
        "{out:#}"
    );
    let c_id = redeem(urls, mfa_app, &verifier, &c["final_url"], "totp_enrol").await;
    assert_ne!(c_id["sub"], a_id["sub"]);
    assert_eq!(c_id["acr"], mfa_acr);
    assert_eq!(c_id["amr"], json!(["pwd", "otp", "mfa"]));
    let t = &out["totp_verify"];
    assert_eq!(
        t["factor_page"],
        json!({"totp": true, "passkey": false, "allow_credentials": 0, "recovery": true})
    );
    assert_eq!(
        t["replayed_code"],
        json!({"status": 401, "error": "That did not work. Check the code or try another way."})
    );
    let t_id = redeem(urls, mfa_app, &verifier, &t["final_url"], "totp_verify").await;
    assert_eq!(t_id["sub"], c_id["sub"]);
    assert_eq!(t_id["acr"], mfa_acr);
    assert_eq!(t_id["amr"], json!(["pwd", "otp", "mfa"]));

    // D: a recovery code instead.
    let d = &out["recovery"];
    assert_eq!(d["code"], bob_codes[0].as_str());
    let d_id = redeem(urls, mfa_app, &verifier, &d["final_url"], "recovery").await;
    assert_eq!(d_id["sub"], c_id["sub"]);
    assert_eq!(d_id["acr"], mfa_acr);
    assert!(amr(&d_id).iter().any(|m| m == "mfa"), "{d_id}");

    // E: the password-only application, then step-up by acr_values: only the code is asked.
    let e = &out["plain"];
    let e_id = redeem(urls, plain_app, &verifier, &e["final_url"], "plain").await;
    assert_eq!(e_id["sub"], c_id["sub"]);
    assert_eq!(e_id["acr"], "0");
    assert_eq!(e_id["amr"], json!(["pwd"]));
    let s = &out["step_up"];
    assert_eq!(s["pages"], json!(["Verify it is you"]), "{out:#}");
    assert_eq!(s["password_field"], false);
    assert_eq!(s["username_field"], false);
    let s_id = redeem(urls, plain_app, &verifier, &s["final_url"], "step_up").await;
    assert_eq!(s_id["sub"], c_id["sub"]);
    assert_eq!(s_id["acr"], mfa_acr);
    let s_amr = amr(&s_id);
    assert!(
        s_amr.iter().any(|m| m == "otp") && s_amr.iter().any(|m| m == "mfa"),
        "{s_amr:?}"
    );

    // The factors as the CLI sees them: the passkey's name as typed, one recovery code used.
    let factors = |user: &str| {
        json_out(&cli_env(
            dir.path(),
            &["user", "factors", user, "--output", "json"],
            &env,
        ))
    };
    let alice = factors("alice");
    assert!(
        alice["factors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "passkey" && f["name"] == "Test laptop"),
        "{alice:#}"
    );
    let bob = factors("bob");
    assert!(
        bob["factors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "recovery_codes" && f["remaining"] == 9),
        "{bob:#}"
    );

    // No script or CSP error; the refused code's 401 is the one expected console message.
    for err in out["console_errors"].as_array().unwrap() {
        let err = err.as_str().unwrap();
        assert!(
            err.starts_with("totp_verify: ") && err.contains("401"),
            "{err}"
        );
    }
    server.kill();
}

/// Federation in a real browser: the `tessera` binary set up from the CLI with an upstream
/// OpenID Provider (node-oidc-provider) and a SAML identity provider (pysaml2); chromium presses
/// each button on Tessera's sign-in page, signs in on the upstream's own page and comes back
/// (for SAML, through the Response form the IdP's page posts to Tessera's ACS) to the relying
/// party with a code that redeems for an ID token saying `fed`.
#[tokio::test]
async fn chromium_signs_in_through_an_openid_and_a_saml_provider() {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let oidc = crate::federation::Peer::start(&json!({
        "port": 0,
        "clients": [{"client_id": "tessera", "client_secret": "upstream-secret",
                     "redirect_uris": [format!("{base}/federation/corp/callback")]}],
        "accounts": {"alice": {"sub": "alice-sub", "email": "alice@corp.example",
                               "email_verified": true, "preferred_username": "alice"}},
    }))
    .await;
    let saml = crate::saml::SamlPeer::start(&json!({
        "port": 0,
        "users": {"bob": {"uid": "bob", "email": "bob@corp.example"}},
    }))
    .await;
    let env = [
        ("TESSERA_ISSUER", base.as_str()),
        ("TESSERA_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true"),
        ("TESSERA_IDP_CLIENT_SECRET", "upstream-secret"),
    ];
    let metadata = saml.url("metadata_url");
    for args in [
        &[
            "idp",
            "create",
            "corp",
            "--issuer",
            &oidc.issuer,
            "--client-id",
            "tessera",
            "--display-name",
            "Corp SSO",
        ][..],
        &[
            "idp",
            "create",
            "corp-saml",
            "--protocol",
            "saml",
            "--metadata-url",
            &metadata,
            "--display-name",
            "Corp SAML",
        ],
        &[
            "scheme",
            "create",
            "fed",
            "--methods",
            "upstream",
            "--methods",
            "password",
            "--acr",
            "urn:example:fed",
            "--identity-provider",
            "corp",
            "--identity-provider",
            "corp-saml",
        ],
    ] {
        cli_env(dir.path(), args, &env);
    }
    let c = json_out(&cli_env(
        dir.path(),
        &[
            "client",
            "create",
            "--type",
            "web",
            "--name",
            "Federated RP",
            "--redirect-uri",
            RP,
            "--authentication-scheme",
            "fed",
            "--consent",
            "auto-accept",
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
    // The SAML IdP reads Tessera's SP metadata from the running server.
    let loaded = reqwest::Client::new()
        .post(format!("{}/__sp_metadata", saml.url("base_url")))
        .json(&json!({"url": format!("{base}/saml/metadata/corp-saml")}))
        .send()
        .await
        .unwrap();
    assert!(loaded.status().is_success());

    for (button, login_field, user, state) in [
        ("Sign in with Corp SSO", "login", "alice", "oidc"),
        ("Sign in with Corp SAML", "username", "bob", "saml"),
    ] {
        let (verifier, challenge) = pkce();
        let authorize = format!(
            "{base}/authorize?{}",
            enc(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", RP),
                ("scope", "openid email"),
                ("state", state),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256")
            ])
        );
        let out = tokio::task::spawn_blocking({
            let args = json!({"authorize_url": authorize, "button": button,
                "login_field": login_field, "username": user, "password": "secret",
                "redirect_prefix": RP});
            move || drive_script("federation.mjs", &args)
        })
        .await
        .unwrap();
        let p = params(out["final_url"].as_str().unwrap());
        assert_eq!(p["state"], state, "{out}");
        let t: Value = reqwest::Client::new()
            .post(format!("{base}/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", p["code"].as_str()),
                ("redirect_uri", RP),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .expect("driver")
            .json()
            .await
            .expect("driver");
        let claims = crate::flow::jwt_claims(t["id_token"].as_str().expect("id token"));
        assert_eq!(claims["acr"], "urn:example:fed");
        assert_eq!(claims["amr"][0], "fed", "{claims}");
    }
    let users = json_out(&cli_env(
        dir.path(),
        &["user", "list", "--output", "json"],
        &env,
    ));
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );
}

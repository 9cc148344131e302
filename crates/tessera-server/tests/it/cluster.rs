//! Several `tessera` nodes on one PostgreSQL (runs when `TEST_DATABASE_URL` is set): what one node
//! issues, changes or revokes, the other sees within a second.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::flow::{enc, hidden, pkce, PASSWORD, RP};
use crate::process::{cli_env, create_client, create_web_client, json, Server};

/// Signs `username` in on the node at `base` through the real pages (authorization request, login
/// form with its CSRF token and interaction cookie); returns the code the node redirects with.
pub(crate) async fn sign_in_for_code(
    base: &str,
    client_id: &str,
    username: &str,
    challenge: &str,
) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let q = enc(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", RP),
        ("scope", "openid"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    // The application was just created: the node knows it within a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = client
            .get(format!("{base}/authorize?{q}"))
            .send()
            .await
            .expect("authorize");
        if page.status() == 200 || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let html = page.text().await.expect("page");
    let form = enc(&[
        ("interaction", &hidden(&html, "interaction")),
        ("csrf", &hidden(&html, "csrf")),
        ("username", username),
        ("password", PASSWORD),
    ]);
    let done = client
        .post(format!("{base}/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("login");
    let location = done
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no redirect after sign-in: {}", done.status()))
        .to_owned();
    let url = url::Url::parse(&location).expect("redirect");
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}

/// Polls `check` every 20 ms until it holds; returns how long that took (fails after 5 s).
/// Asserts that `token` introspects as inactive at `base` within a second.
async fn inactive_within_a_second(what: &str, base: &str, client: (&str, &str), token: &str) {
    let took = within(what, || async {
        post(base, "/introspect", client.0, client.1, &[("token", token)])
            .await
            .1["active"]
            == false
    })
    .await;
    assert!(took <= Duration::from_secs(1), "{what}: seen in {took:?}");
}

async fn within<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not seen within 5 s");
}

async fn post(
    base: &str,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = crate::process::http()
        .post(format!("{base}{path}"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: Value = crate::process::http()
        .get(format!("{base}/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn two_nodes_share_one_postgresql() {
    let _serial = crate::process::exclusive().await;
    let Some(url) =
        tessera_store::testing::fresh_postgres_database("cluster::two_nodes_share_one_postgresql")
            .await
    else {
        return;
    };
    let master = tessera_core::secret::MasterKey::generate_text();
    let env = [
        ("TESSERA_DATABASE_URL", url.as_str()),
        ("TESSERA_MASTER_KEY", master.as_str()),
    ];
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // Both start at once on an empty database: one generates the signing keys, the other finds them.
    let a = Server::start(dir_a.path(), &env);
    let b = Server::start(dir_b.path(), &env);
    a.wait_ready().await;
    b.wait_ready().await;
    let (mut ka, mut kb) = (jwks_kids(&a.base).await, jwks_kids(&b.base).await);
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb, "one set of keys");
    // Four signing keys, and the encryption key derived with the ES256 one: the same on both
    // nodes, as they share the master key.
    assert_eq!(ka.len(), 5, "one key per algorithm, not one per node");

    let cli = |args: &[&str]| {
        json(&cli_env(
            dir_a.path(),
            &[args, &["--output", "json"]].concat(),
            &env,
        ))
    };
    cli(&[
        "api",
        "create",
        "--identifier",
        "https://api.example.com",
        "--scope",
        "read:things",
    ]);
    let (id, secret) = create_client(
        dir_a.path(),
        &env,
        "svc",
        &[
            "--api",
            "https://api.example.com",
            "--token-format",
            "opaque",
        ],
    );
    a.until_status(&id, &secret, 200).await;

    // A token issued by A introspects on B, is revoked on B, and A sees it revoked within a second.
    let (_, t) = post(
        &a.base,
        "/token",
        &id,
        &secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let token = t["access_token"].as_str().expect("token").to_owned();
    let (_, i) = post(&b.base, "/introspect", &id, &secret, &[("token", &token)]).await;
    assert_eq!(i["active"], true);
    let (_, i) = post(&a.base, "/introspect", &id, &secret, &[("token", &token)]).await;
    assert_eq!(i["active"], true);
    assert_eq!(
        post(&b.base, "/revoke", &id, &secret, &[("token", &token)])
            .await
            .0,
        200
    );
    inactive_within_a_second("the revocation on node A", &a.base, (&id, &secret), &token).await;

    // A code issued by A is redeemed once on B; the replay on A fails.
    cli_env(
        dir_a.path(),
        &["user", "create", "--username", "alice"],
        &[env.as_slice(), &[("TESSERA_NEW_PASSWORD", PASSWORD)]].concat(),
    );
    let (web_id, web_secret) = create_web_client(dir_a.path(), &env, RP, &[]);
    let (verifier, challenge) = pkce();
    let code = sign_in_for_code(&a.base, &web_id, "alice", &challenge).await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", RP),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, t) = post(&b.base, "/token", &web_id, &web_secret, &redeem).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["id_token"].is_string());
    let (status, replay) = post(&a.base, "/token", &web_id, &web_secret, &redeem).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let at = t["access_token"].as_str().expect("at");
    inactive_within_a_second(
        "the grant revoked by the replay, on node B",
        &b.base,
        (&web_id, &web_secret),
        at,
    )
    .await;

    // A secret rotated through the CLI is refused by both nodes within a second.
    let rotated = cli(&["client", "rotate-secret", &id]);
    let new_secret = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let took = within("the old secret refused on node B", || async {
        b.token(&id, &secret).await.status() == 401
    })
    .await;
    assert!(took <= Duration::from_secs(1), "rotation seen in {took:?}");
    let took = within("the new secret accepted on node A", || async {
        a.token(&id, &new_secret).await.status() == 200
    })
    .await;
    assert!(took <= Duration::from_secs(1), "rotation seen in {took:?}");
    assert_eq!(a.token(&id, &secret).await.status(), 401);

    // A key generated for the cluster appears in both nodes' JWKS within a second.
    let key = cli(&[
        "key",
        "generate",
        "--alg",
        "ES256",
        "--not-before",
        "2100-01-01T00:00:00Z",
    ]);
    let kid = key["kid"].as_str().expect("kid").to_owned();
    let took = within("the new key in node B's JWKS", || async {
        jwks_kids(&b.base).await.contains(&kid)
    })
    .await;
    assert!(took <= Duration::from_secs(1), "key seen in {took:?}");

    a.terminate();
    b.terminate();
}

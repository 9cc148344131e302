//! Faults: with the database cut off (a TCP proxy in front of PostgreSQL stops forwarding),
//! requests that need it fail fast with 503 `temporarily_unavailable`, those that do not keep
//! working, and service resumes by itself once the database is back (runs when
//! `TEST_DATABASE_URL` is set); a node killed with SIGKILL under load loses no token it returned;
//! a node told to stop (SIGTERM) finishes the requests it is serving; a code exchange that fails
//! in its write leaves the code to be redeemed by the retry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::flow::{pkce, PASSWORD, RP};
use crate::process::{cli_env, create_client, create_web_client, Server};

/// Forwards loopback connections to `target` while open; when cut, it drops every forwarded
/// connection and closes new ones at once.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (o, g) = (open.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let target = target.clone();
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            open,
            generation,
        }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

async fn token(base: &str, id: &str, secret: &str) -> (u16, Value, Duration) {
    let start = Instant::now();
    let r = crate::process::http()
        .post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (
        status,
        r.json().await.unwrap_or(Value::Null),
        start.elapsed(),
    )
}

// Multi-threaded: the proxy must keep forwarding while the test blocks on CLI processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_and_recovers() {
    let _serial = crate::process::exclusive().await;
    let Some(url) = tessera_store::testing::fresh_postgres_database(
        "faults::database_outage_fails_fast_and_recovers",
    )
    .await
    else {
        return;
    };
    // postgres://user@127.0.0.1:PORT/db -> the same through the proxy.
    let (scheme_user, rest) = url.split_once('@').expect("url has a host");
    let (hostport, db) = rest.split_once('/').expect("url has a database");
    let proxy = Proxy::start(hostport.to_owned()).await;
    let proxied = format!("{scheme_user}@127.0.0.1:{}/{db}", proxy.port);

    let master = tessera_core::secret::MasterKey::generate_text();
    let env = [
        ("TESSERA_DATABASE_URL", proxied.as_str()),
        ("TESSERA_MASTER_KEY", master.as_str()),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    // Clients first, so the server's first configuration already holds them: a reload noticed
    // after the cache was warmed would empty it, and the JWT client could not be read while cut.
    let (oid, osec) = create_client(dir.path(), &env, "opaque", &["--token-format", "opaque"]);
    let (jid, jsec) = create_client(dir.path(), &env, "jwt", &["--signing-alg", "ES256"]);
    let server = Server::start(dir.path(), &env);
    server.wait_ready().await;
    server.until_status(&oid, &osec, 200).await;
    server.until_status(&jid, &jsec, 200).await;

    proxy.cut();
    let (status, body, took) = token(&server.base, &oid, &osec).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    // The pool gives up after its 3 s acquire timeout; the margin is for a loaded 2-core machine
    // (the client's own timeout is 30 s, and a pool without the timeout waits 30 s).
    assert!(took < Duration::from_secs(10), "failed fast: {took:?}");
    let ready = crate::process::http()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        503,
        "not ready while the database is unreachable"
    );
    // Past the second in which the client's throttle state was last read from the store.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        token(&server.base, &jid, &jsec).await.0,
        200,
        "JWT issuance needs no database"
    );
    let (status, body, _) = token(&server.base, &jid, "wrong-secret").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "a wrong secret that cannot be counted is refused: {body}"
    );

    proxy.restore();
    let start = Instant::now();
    loop {
        let (status, _, _) = token(&server.base, &oid, &osec).await;
        if status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "service did not resume (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.terminate();
    assert!(!log.contains("panicked"), "{log}");
}

// Multi-threaded: the load runs while the test kills and restarts the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_token() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    server.wait_ready().await;
    let (id, secret) = create_client(dir.path(), &[], "opaque", &["--token-format", "opaque"]);
    server.until_status(&id, &secret, 200).await;

    // 16 clients request tokens as fast as they can; every 200 is an acknowledged token.
    let issued = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..16 {
        let (base, id, secret, issued) = (
            server.base.clone(),
            id.clone(),
            secret.clone(),
            issued.clone(),
        );
        load.push(tokio::spawn(async move {
            let http = crate::process::http();
            loop {
                let sent = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(r) = sent else { return };
                if r.status() != 200 {
                    return;
                }
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
                if let Some(t) = body["access_token"].as_str() {
                    issued.lock().expect("lock").push(t.to_owned());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for task in load {
        let _ = task.await;
    }
    let tokens = issued.lock().expect("lock").clone();
    assert!(tokens.len() > 100, "the load ran ({} tokens)", tokens.len());

    let restarted = Server::start(dir.path(), &[]);
    restarted.wait_ready().await;
    let http = crate::process::http();
    for t in &tokens {
        let r = http
            .post(format!("{}/introspect", restarted.base))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .expect("introspect");
        let body: Value = r.json().await.expect("json");
        assert_eq!(
            body["active"], true,
            "a token returned before the kill is lost after restart"
        );
    }
    restarted.terminate();
}

/// SIGTERM while a request is in flight: the node stops accepting, answers that request in full,
/// then exits. The request is slow because the node fetches the client's keys from a `jwks_uri`
/// that takes 1.5 s to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let _serial = crate::process::exclusive().await;
    let key = crate::assertions::key_pair("drain");
    let jwks = serde_json::json!({"keys": [key.jwk]});
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let jwks_uri = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    let asked = Arc::new(tokio::sync::Notify::new());
    let slow = axum::Router::new().route(
        "/jwks",
        axum::routing::get({
            let asked = asked.clone();
            move || {
                let (jwks, asked) = (jwks.clone(), asked.clone());
                async move {
                    asked.notify_one();
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    axum::Json(jwks)
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, slow).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("TESSERA_ISSUER", base.as_str()),
        ("TESSERA_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true"),
    ];
    let id = crate::process::create_keyed_client(dir.path(), &env, &jwks_uri);
    let server = Server::start_on(dir.path(), port, &env);
    server.wait_ready().await;

    let now = crate::support::now();
    let assertion = crate::assertions::sign_with(
        &key,
        &serde_json::json!({"iss": id, "sub": id, "aud": format!("{base}/token"),
            "exp": now + 60, "jti": "drain-1"}),
    );
    let started = Instant::now();
    let in_flight = tokio::spawn({
        let base = base.clone();
        async move {
            crate::process::http()
                .post(format!("{base}/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
        }
    });
    // The node is fetching the client's keys: the request is in flight.
    tokio::time::timeout(Duration::from_secs(10), asked.notified())
        .await
        .expect("the node fetched the key set");
    let log = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    let r = in_flight
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert!(body["access_token"].is_string(), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(log.contains("finishing in-flight requests"), "{log}");
    assert!(
        crate::process::http()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "stopped"
    );
}

/// RFC 6749 §4.1.2 asks a replayed code to revoke its grant, so a code must not be spent by an
/// exchange that then fails: here the database refuses the refresh token's insert (a trigger)
/// and the exchange answers an error. The code is still unspent: the retry once the database
/// takes the insert again gets the tokens, and only a second use is a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_exchange_that_fails_in_its_write_leaves_the_code_unspent() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    cli_env(
        dir.path(),
        &["user", "create", "--username", "alice"],
        &[("TESSERA_NEW_PASSWORD", PASSWORD)],
    );
    let (id, secret) = create_web_client(
        dir.path(),
        &[],
        RP,
        &[
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
        ],
    );
    let server = Server::start(dir.path(), &[]);
    server.wait_ready().await;
    let (verifier, challenge) = pkce();
    let code = crate::cluster::sign_in_for_code(&server.base, &id, "alice", &challenge).await;

    let refusing =
        crate::support::refuse_refresh_tokens(&dir.path().join("tessera-data/tessera.db")).await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", RP),
        ("code_verifier", verifier.as_str()),
    ];
    let exchange = || async {
        let r = crate::process::http()
            .post(format!("{}/token", server.base))
            .basic_auth(&id, Some(&secret))
            .form(&redeem)
            .send()
            .await
            .expect("token request");
        (r.status().as_u16(), r.json::<Value>().await.expect("json"))
    };
    let (status, body) = exchange().await;
    assert!(
        status >= 500,
        "the refused write fails the exchange: {status} {body}"
    );

    crate::support::accept_refresh_tokens(refusing).await;
    let (status, tokens) = exchange().await;
    assert_eq!(status, 200, "the retry redeems the code: {tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let (status, replay) = exchange().await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant")),
        "a second use is a replay: {replay}"
    );
    let log = server.terminate();
    assert!(!log.contains("panicked"), "{log}");
}

//! Running Tessera as operators do, as a real process: connections that send nothing or dribble
//! their headers are closed while others keep being served; `/metrics` on its own address or
//! behind a token; a data directory keeps the issuer it was created for; unrelated `TESSERA_*`
//! variables do not stop a start; the CLI clears optional URIs and refuses private destinations;
//! an HTTP/2 connection's concurrent requests are each answered.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::{cli, cli_env, free_port, http, json, tessera, Server};

/// The bearer token a scraper of `/metrics` is configured with.
const SCRAPER: &str = "scrape-me-please-0123456789";

/// Reads until the server closes the connection; how long that took, or `None` past `limit`.
async fn closed_within(sock: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(start + limit),
            sock.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn idle_and_dribbling_connections_are_closed_and_others_served() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_HTTP__HEADER_READ_TIMEOUT_SECS", "2"),
            ("TESSERA_HTTP__IDLE_TIMEOUT_SECS", "6"),
            ("TESSERA_HTTP__MAX_CONNECTIONS", "16"),
        ],
    );
    server.wait_ready().await;
    let addr = server.base.trim_start_matches("http://").to_owned();

    // Every slot taken by silent connections (two of them start HTTP/2's preface and stop),
    // and one that dribbles a header byte a second.
    let mut silent = Vec::new();
    for i in 0..15 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        if i < 2 {
            s.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
        }
        silent.push(s);
    }
    let mut dribbler = TcpStream::connect(&addr).await.expect("connect");
    let drip = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let start = Instant::now();
        for b in head.iter().chain(std::iter::repeat(&b'a')) {
            if dribbler.write_all(&[*b]).await.is_err() {
                return Some(start.elapsed());
            }
            let mut probe = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(500), dribbler.read(&mut probe)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
                _ => {}
            }
            if start.elapsed() > Duration::from_secs(20) {
                return None;
            }
        }
        None
    });
    // A real request still gets through: it waits for a slot the timeouts free.
    let started = Instant::now();
    let r = http()
        .get(format!("{}/healthz", server.base))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("healthz answers while idle connections are held");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Closed by the header-read timeout (2 s), not only when idle (6 s).
    for sock in &mut silent {
        let took = closed_within(sock, Duration::from_secs(10)).await;
        assert!(took.is_some(), "a silent connection stays open");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "silent connections were held past the header-read timeout: {:?}",
        started.elapsed()
    );
    let dripped = drip.await.expect("drip task");
    assert!(
        dripped.is_some_and(|d| d < Duration::from_secs(8)),
        "a dribbling connection was closed by the header-read timeout: {dripped:?}"
    );
    // A keep-alive connection between requests is closed when idle, too.
    let mut keep = TcpStream::connect(&addr).await.expect("connect");
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut first = [0u8; 256];
    let n = keep.read(&mut first).await.expect("read");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut keep, Duration::from_secs(10))
        .await
        .is_some());
    let log = server.terminate();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn metrics_can_be_served_apart_or_behind_a_token() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = free_port();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{SCRAPER}\n")).expect("write");
    let server = Server::start(
        dir.path(),
        &[
            (
                "TESSERA_METRICS__LISTEN",
                &format!("127.0.0.1:{metrics_port}"),
            ),
            (
                "TESSERA_METRICS__TOKEN_FILE",
                token_file.to_str().expect("path"),
            ),
        ],
    );
    server.wait_ready().await;
    let main = http()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(main.status(), 404, "not on the public listener");
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let apart = http()
        .get(&url)
        .bearer_auth(SCRAPER)
        .send()
        .await
        .expect("metrics");
    assert_eq!(apart.status(), 200);
    assert!(apart.headers().contains_key("x-request-id"), "{apart:?}");
    assert!(apart.text().await.expect("body").contains("tessera_"));
    // The listener apart takes the same front middleware as the public one: two sets of
    // credentials are refused whichever comes first, and the size limits hold.
    let right = format!("Bearer {SCRAPER}");
    for pair in [["Bearer guess", &right], [&right, "Bearer guess"]] {
        let twice = http()
            .get(&url)
            .header("authorization", pair[0])
            .header("authorization", pair[1])
            .send()
            .await
            .expect("metrics");
        assert_eq!(twice.status(), 400, "{pair:?}");
    }
    let huge = http()
        .get(&url)
        .bearer_auth(SCRAPER)
        .header("x-filler", "a".repeat(64 * 1024))
        .send()
        .await
        .expect("metrics");
    assert_eq!(huge.status(), 431);
    // Probes go there too, never queued behind the public listener's connections.
    for probe in ["healthz", "readyz"] {
        let r = http()
            .get(format!("http://127.0.0.1:{metrics_port}/{probe}"))
            .send()
            .await
            .expect("probe");
        assert_eq!(r.status(), 200, "{probe}");
    }
    drop(server);

    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{SCRAPER}\n")).expect("write");
    let server = Server::start(
        dir.path(),
        &[(
            "TESSERA_METRICS__TOKEN_FILE",
            token_file.to_str().expect("path"),
        )],
    );
    server.wait_ready().await;
    let url = format!("{}/metrics", server.base);
    let anonymous = http().get(&url).send().await.expect("metrics");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .expect("header")
        .starts_with("Bearer"));
    let wrong = http()
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .expect("metrics");
    assert_eq!(wrong.status(), 401);
    let ok = http()
        .get(&url)
        .bearer_auth(SCRAPER)
        .send()
        .await
        .expect("metrics");
    assert_eq!(ok.status(), 200);
}

#[test]
fn a_data_directory_keeps_the_issuer_it_was_created_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = [("TESSERA_ISSUER", "https://id.example.com")];
    cli_env(
        dir.path(),
        &["admin", "create", "--username", "root"],
        &[
            ("TESSERA_ISSUER", "https://id.example.com"),
            ("TESSERA_NEW_PASSWORD", "correct horse battery staple"),
        ],
    );
    // The same issuer: fine. Another one (here: none set, the default): refused, saying both.
    cli_env(dir.path(), &["client", "list", "--output", "json"], &first);
    for args in [
        vec!["client", "list"],
        vec!["admin", "create", "--username", "other"],
        vec!["serve"],
    ] {
        let out = tessera()
            .args(&args)
            .current_dir(dir.path())
            .env("TESSERA_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("TESSERA_NEW_PASSWORD", "correct horse battery staple")
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} ran with another issuer");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("https://id.example.com") && err.contains("http://localhost:8080"),
            "{args:?}: {err}"
        );
    }
    // A deliberate change: the stored issuer moves, the admin API and the Portal follow.
    cli_env(
        dir.path(),
        &["issuer", "change", "--from", "https://id.example.com"],
        &[("TESSERA_ISSUER", "https://login.example.com")],
    );
    let apis = json(&cli_env(
        dir.path(),
        &["api", "list", "--output", "json"],
        &[("TESSERA_ISSUER", "https://login.example.com")],
    ));
    let ids: Vec<&str> = apis
        .as_array()
        .expect("apis")
        .iter()
        .filter_map(|a| a["identifier"].as_str())
        .collect();
    assert!(
        ids.contains(&"https://login.example.com/admin/api"),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"https://id.example.com/admin/api"),
        "{ids:?}"
    );
}

#[tokio::test]
async fn unrelated_tessera_variables_do_not_stop_a_start() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The benchmark's own knob and tools' variables are not settings.
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_BIN", "/usr/local/bin/tessera"),
            ("TESSERA_DEPLOY_ENV", "staging"),
            // Two edits from `log`, but short names are judged within one edit only.
            ("TESSERA_TAG", "v1"),
            ("TESSERA_OS", "linux"),
        ],
    );
    server.wait_ready().await;
    drop(server);
    // A misspelt setting still stops it, naming the variable.
    for (name, value) in [
        ("TESSERA_ISUER", "https://id.example.com"),
        ("TESSERA_HTTP__MAX_BODY_BYTE", "1000"),
        ("TESSERA_LIFETIME__ACCESS_TOKEN", "600"),
        ("TESSERA_METRICS_TOKEN", SCRAPER),
    ] {
        let out = tessera()
            .args(["client", "list"])
            .current_dir(dir.path())
            .env(name, value)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{name} was ignored");
        let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        let misspelt = name["TESSERA_".len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .find(|part| err.contains(&format!("`{part}`")));
        assert!(misspelt.is_some(), "{name}: {err}");
    }
}

#[test]
fn the_cli_clears_optional_uris_and_refuses_private_destinations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let created = json(&cli(
        dir.path(),
        &[
            "client",
            "create",
            "--type",
            "web",
            "--name",
            "portal",
            "--redirect-uri",
            "https://rp.example.com/cb",
            "--frontchannel-logout-uri",
            "https://rp.example.com/fc",
            "--backchannel-logout-uri",
            "https://rp.example.com/bc",
            "--output",
            "json",
        ],
    ));
    let id = created["client_id"].as_str().expect("id").to_owned();
    let updated = json(&cli(
        dir.path(),
        &[
            "client",
            "update",
            &id,
            "--frontchannel-logout-uri",
            "",
            "--backchannel-logout-uri",
            "",
            "--output",
            "json",
        ],
    ));
    assert!(updated["frontchannel_logout_uri"].is_null(), "{updated}");
    assert!(updated["backchannel_logout_uri"].is_null(), "{updated}");
    // Back-channel logout is a request Tessera makes: loopback, link-local and private
    // destinations are refused when registered (unless outbound.allow_private_addresses).
    for uri in [
        "http://127.0.0.1:9/logout",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:169.254.169.254]/x",
        "https://10.1.2.3/logout",
    ] {
        let out = tessera()
            .args(["client", "update", &id, "--backchannel-logout-uri", uri])
            .current_dir(dir.path())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{uri} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("backchannel_logout_uri"), "{uri}: {err}");
    }
    cli_env(
        dir.path(),
        &[
            "client",
            "update",
            &id,
            "--backchannel-logout-uri",
            "http://127.0.0.1:9/logout",
        ],
        &[("TESSERA_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true")],
    );
}

/// A URL's `user:password@` never reaches the log: a key set that cannot be fetched is logged
/// with its credentials redacted.
#[tokio::test]
async fn credentials_in_urls_never_reach_the_log() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let env = [
        ("TESSERA_ISSUER", issuer.as_str()),
        ("TESSERA_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true"),
    ];
    let dead = free_port();
    let id = crate::process::create_keyed_client(
        dir.path(),
        &env,
        &format!("http://keys:hunter2secret@127.0.0.1:{dead}/jwks"),
    );
    let server = Server::start_on(dir.path(), port, &env);
    server.wait_ready().await;
    let k = crate::assertions::key_pair("k1");
    let now = crate::support::now();
    let assertion = crate::assertions::sign_with(
        &k,
        &serde_json::json!({"iss": id, "sub": id, "aud": format!("{issuer}/token"),
            "exp": now + 60, "iat": now, "jti": "redaction-1"}),
    );
    let r = http()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 401);
    let body = r.text().await.expect("body");
    assert!(!body.contains("hunter2secret"), "{body}");
    let log = server.terminate();
    assert!(log.contains("key set could not be fetched"), "{log}");
    assert!(!log.contains("hunter2secret"), "{log}");
    assert!(log.contains("***@127.0.0.1"), "{log}");
}

/// `tessera admin create` never promotes an account someone made earlier under that name (in
/// any case) unless told to, and a promoted account is signed out everywhere.
#[test]
fn admin_create_promotes_an_existing_user_only_when_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = [("TESSERA_NEW_PASSWORD", "correct horse battery staple")];
    cli_env(dir.path(), &["user", "create", "--username", "erin"], &pw);
    let out = tessera()
        .args(["admin", "create", "--username", "Erin"])
        .current_dir(dir.path())
        .envs(pw)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("--existing"),
        "{err}"
    );
    let made = json(&cli_env(
        dir.path(),
        &[
            "admin",
            "create",
            "--username",
            "Erin",
            "--existing",
            "--output",
            "json",
        ],
        &pw,
    ));
    assert_eq!(made["username"], "erin");
    let out = tessera()
        .args(["admin", "create", "--username", "nobody", "--existing"])
        .current_dir(dir.path())
        .envs(pw)
        .output()
        .expect("run");
    assert!(!out.status.success());
}

/// HTTP/2 with prior knowledge: one connection's concurrent streams (run apart from the
/// connection's own thread) are each answered in full, with the document HTTP/1 answers, and
/// its header sections have HTTP/1's limit.
#[tokio::test]
async fn an_http2_connection_s_concurrent_requests_are_each_answered() {
    use http_body_util::BodyExt;
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    server.wait_ready().await;
    let discovery = format!("{}/.well-known/openid-configuration", server.base);
    let res = http().get(&discovery).send().await.expect("HTTP/1");
    assert_eq!(res.status(), 200);
    let expected: serde_json::Value = res.json().await.expect("JSON");
    let addr = server.base.trim_start_matches("http://").to_owned();
    let sender = crate::process::http2(TcpStream::connect(&addr).await.expect("connect")).await;
    let streams = (0..40).map(|_| {
        let mut sender = sender.clone();
        let req = http::Request::get(&discovery)
            .body(crate::process::Empty::new())
            .unwrap();
        async move {
            let res = sender.send_request(req).await.expect("response");
            let status = res.status();
            let body = res.into_body().collect().await.expect("body").to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).ok(),
            )
        }
    });
    for (status, doc) in futures_util::future::join_all(streams).await {
        assert_eq!(status, 200);
        assert_eq!(doc.as_ref(), Some(&expected));
    }
    // The header section's limit is `http.max_header_bytes` (32 KiB here) as on HTTP/1, judged
    // by the front middleware (its 431 carries a request id), not HTTP/2's own default of 16 KiB.
    for (filler, status) in [(24 * 1024, 200), (40 * 1024, 431)] {
        let req = http::Request::get(&discovery)
            .header("x-filler", "a".repeat(filler))
            .body(crate::process::Empty::new())
            .unwrap();
        let res = sender.clone().send_request(req).await.expect("response");
        assert_eq!(res.status(), status, "{filler} bytes");
        assert!(res.headers().contains_key("x-request-id"), "{res:?}");
    }
    // `:authority` counts with the path against `http.max_uri_bytes`, as an absolute target does.
    let far = format!("http://{}.example/jwks", "a".repeat(17 * 1024));
    let req = http::Request::get(far)
        .body(crate::process::Empty::new())
        .unwrap();
    let res = sender.clone().send_request(req).await.expect("response");
    assert_eq!(res.status(), 414);
    assert!(res.headers().contains_key("x-request-id"), "{res:?}");
}

/// An HTTP/2 connection that sends its preface and settings and then nothing is closed soon
/// after its header-read timeout, not after the drain timeout: with no request in flight there
/// is nothing to drain, and a peer that never acknowledges the GOAWAY's PING held its slot for
/// the whole request timeout.
#[tokio::test]
async fn a_silent_http2_connection_is_closed_without_the_drain_timeout() {
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_HTTP__HEADER_READ_TIMEOUT_SECS", "2"),
            ("TESSERA_HTTP__REQUEST_TIMEOUT_SECS", "30"),
        ],
    );
    server.wait_ready().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut sock = TcpStream::connect(&addr).await.expect("connect");
    // The preface, an empty SETTINGS frame, and an acknowledgement of the server's.
    sock.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    sock.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    sock.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0])
        .await
        .expect("ack");
    let closed = closed_within(&mut sock, Duration::from_secs(20)).await;
    let closed = closed.expect("the connection is still open after 20 s");
    assert!(
        closed >= Duration::from_millis(1500) && closed <= Duration::from_secs(6),
        "closed after {closed:?}"
    );
}

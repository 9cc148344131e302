//! Operations endpoints: `/metrics` in the Prometheus format; request ids on every answer.

use http::StatusCode;

use crate::support::Harness;

#[tokio::test]
async fn metrics_count_requests_tokens_store_and_caches() {
    let h = Harness::new().await;
    let c = h
        .client(
            tessera_core::model::Alg::ES256,
            tessera_core::model::TokenFormat::Opaque,
        )
        .await;
    let t = h.access_token(&c).await;
    h.introspect(&c, &t).await;
    h.introspect(&c, &t).await;
    let r = h
        .post(
            "/token",
            Some(&crate::support::basic(&c.id, "wrong")),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A method made up by the caller is counted as `other`: it cannot add series.
    let made_up = http::Request::builder()
        .method(http::Method::from_bytes(b"BREW").unwrap())
        .uri("/token")
        .body(axum::body::Body::empty())
        .unwrap();
    h.send(made_up).await;

    let res = h.get_text("/metrics").await;
    assert_eq!(res.0, StatusCode::OK);
    let text = res.1;
    for needle in [
        "tessera_http_requests_total{endpoint=\"/token\",method=\"POST\",status=\"200\"}",
        "tessera_http_requests_total{endpoint=\"/token\",method=\"POST\",status=\"401\"}",
        "tessera_http_request_duration_seconds_bucket{endpoint=\"/introspect\"",
        "tessera_tokens_issued_total{grant_type=\"client_credentials\"}",
        "tessera_oauth_errors_total{error=\"invalid_client\"}",
        "tessera_store_operation_duration_seconds_bucket{op=\"insert_artifact\"",
        "tessera_cache_hits_total{cache=\"token\"}",
        "tessera_cache_misses_total{cache=\"client\"}",
        "tessera_http_requests_total{endpoint=\"/token\",method=\"other\",status=\"405\"}",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    assert!(
        !text.contains("BREW"),
        "a made-up method became a label:\n{text}"
    );
}

/// Every answer names its request: the caller's `x-request-id` when it sent one, else a new one
/// per request; an answer the router refused (404, 405) too.
#[tokio::test]
async fn every_answer_carries_its_request_id() {
    let h = Harness::new().await;
    let mut seen = std::collections::HashSet::new();
    for path in [
        "/healthz",
        "/.well-known/openid-configuration",
        "/no/such/path",
    ] {
        let r = h.get(path).await;
        let id = r.header("x-request-id").to_owned();
        assert_eq!(id.len(), 16, "{path}: {id:?}");
        assert!(seen.insert(id), "{path}: an id given twice");
    }
    let r = h
        .post("/token", None, "grant_type=client_credentials")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("x-request-id").len(), 16);

    let mine = http::Request::builder()
        .uri("/healthz")
        .header("x-request-id", "trace-me-42")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(h.send(mine).await.header("x-request-id"), "trace-me-42");
}

/// A request whose body never comes is answered 408 at the deadline, with its id, and counted
/// like any other answer.
#[tokio::test]
async fn a_stalled_request_is_a_408_with_its_id_and_counted() {
    let mut h = Harness::new().await;
    let limits = tessera_server::Limits {
        request_timeout: std::time::Duration::from_millis(300),
        ..tessera_server::Limits::default()
    };
    h.router = tessera_server::app(tessera_server::AppState::new(h.provider.clone()), limits);
    let never = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let stalled = http::Request::builder()
        .method("POST")
        .uri("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from_stream(never))
        .unwrap();
    let r = h.send(stalled).await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(r.header("x-request-id").len(), 16);
    assert!(r.bytes.is_empty());
    let (_, text) = h.get_text("/metrics").await;
    let needle = "tessera_http_requests_total{endpoint=\"/token\",method=\"POST\",status=\"408\"}";
    assert!(
        text.contains(needle),
        "{needle} missing from /metrics:\n{text}"
    );
}

/// The purge job of two nodes on one store: one holds the lease and deletes every expired token in
/// batches; live tokens stay; stopped, it gives the lease back.
#[tokio::test]
async fn one_node_purges_expired_artifacts_in_batches() {
    let h = Harness::new().await;
    let c = h
        .client(
            tessera_core::model::Alg::ES256,
            tessera_core::model::TokenFormat::Opaque,
        )
        .await;
    for _ in 0..2_100 {
        h.access_token(&c).await;
    }
    h.clock.advance(901);
    let live = h.access_token(&c).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let nodes = [
        tokio::spawn(tessera_server::jobs::purge(
            h.provider.clone(),
            "node-a".into(),
            stopped.clone(),
        )),
        tokio::spawn(tessera_server::jobs::purge(
            h.provider.clone(),
            "node-b".into(),
            stopped,
        )),
    ];
    let purged = || async {
        let (_, text) = h.get_text("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix("tessera_purged_artifacts_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while purged().await < 2_100.0 {
        assert!(std::time::Instant::now() < deadline, "purge did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let now = h.provider.now();
    assert!(
        !h.provider
            .store
            .try_lease("purge", "node-c", now, 120)
            .await
            .expect("lease"),
        "a node holds the purge lease"
    );
    let _ = stop.send(true);
    for n in nodes {
        n.await.expect("job");
    }
    assert!(
        h.provider
            .store
            .try_lease("purge", "node-c", now, 120)
            .await
            .expect("lease"),
        "a stopped node gives the purge lease back: another takes it at once"
    );
    assert_eq!(h.introspect(&c, &live).await["active"], true);
    assert_eq!(h.drain_artifacts().await, 1, "only the live token is left");
}

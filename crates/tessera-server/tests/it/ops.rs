//! Operations endpoints: `/metrics` in the Prometheus format.

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
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
}

//! OpenTelemetry: `tessera serve` with `otel.endpoint` exports its traces over OTLP/HTTP
//! (protobuf) to a real receiver here, which decodes them: a span per request that continues the
//! caller's W3C `traceparent`, with the store operations and signatures under it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::process::{create_client, free_port, http, Server};

/// What the receiver was sent: spans, and the `traceparent` of each key set fetched.
type Received = (Arc<Mutex<Vec<Span>>>, Arc<Mutex<Vec<String>>>);

/// A collector, which also serves an empty key set at `/jwks` (an application's `jwks_uri`).
async fn receiver() -> (String, Received) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let fetched: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = spans.clone();
    let seen = fetched.clone();
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move |headers: http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let (parent, state) = (header("traceparent"), header("tracestate"));
                    seen.lock().expect("lock").push(format!("{parent}|{state}"));
                    axum::Json(serde_json::json!({"keys": []}))
                }
            }),
        )
        .route(
            "/v1/traces",
            post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let mut kept = kept.lock().expect("lock");
                    for r in req.resource_spans {
                        for s in r.scope_spans {
                            kept.extend(s.spans);
                        }
                    }
                    ""
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), (spans, fetched))
}

/// Whether `s` descends from one of `requests` within `spans`.
fn under_a_request_or_below(spans: &[Span], s: &Span, requests: &[&Span]) -> bool {
    let mut at = s;
    for _ in 0..16 {
        if requests.iter().any(|r| r.span_id == at.parent_span_id) {
            return true;
        }
        match spans.iter().find(|p| p.span_id == at.parent_span_id) {
            Some(p) => at = p,
            None => return false,
        }
    }
    false
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_continue_the_callers_trace_with_store_and_signing_spans() {
    let _serial = crate::process::exclusive().await;
    let (collector, (spans, fetched)) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, secret) = create_client(dir.path(), &[], "traced", &["--token-format", "opaque"]);
    let (jwt_id, jwt_secret) = create_client(dir.path(), &[], "signed", &[]);
    let env = [
        ("TESSERA_OTEL__ENDPOINT", collector.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("TESSERA_OUTBOUND__ALLOW_PRIVATE_ADDRESSES", "true"),
    ];
    let keyed = crate::process::create_keyed_client(dir.path(), &env, &format!("{collector}/jwks"));
    let server = Server::start_on(dir.path(), free_port(), &env);
    server.wait_ready().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let token = |id: &str, secret: &str| {
        http()
            .post(format!("{}/token", server.base))
            .basic_auth(id, Some(secret))
            .header("traceparent", format!("00-{trace_id}-{parent}-01"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token(&id, &secret).await.expect("token").status(), 200);
    assert_eq!(
        token(&jwt_id, &jwt_secret).await.expect("token").status(),
        200
    );
    // A client assertion makes Tessera fetch the application's key set: the outbound call
    // carries the trace on (the assertion then fails, as its key is not there).
    let b64 = |v: serde_json::Value| tessera_core::secret::b64url(v.to_string().as_bytes());
    let assertion = format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
        b64(
            serde_json::json!({"iss": keyed, "sub": keyed, "aud": format!("{}/token", server.base),
            "exp": crate::support::now() + 60, "jti": "j1"})
        )
    );
    let refused = http()
        .post(format!("{}/token", server.base))
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .header("tracestate", "caller=its-own-header")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", keyed.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(refused.status(), 401);
    let sent = fetched.lock().expect("lock").clone();
    assert!(
        sent.iter()
            .any(|t| t.starts_with(&format!("00-{trace_id}-")) && !t.contains(parent)),
        "the key set fetch continues the trace under a span of its own: {sent:?}"
    );
    assert!(
        sent.iter().all(|t| t.ends_with('|')),
        "a caller's tracestate never rides on Tessera's calls: {sent:?}"
    );
    // A path no route matches does not name a span.
    let stray = http()
        .get(format!("{}/no/such/path/{}", server.base, "x".repeat(40)))
        .send()
        .await
        .expect("stray");
    assert_eq!(stray.status(), 404);
    // Without a traceparent: a trace of its own.
    let own = http()
        .get(format!("{}/.well-known/openid-configuration", server.base))
        .send()
        .await
        .expect("discovery");
    assert_eq!(own.status(), 200);

    let mut traced = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        traced = spans
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        let names: Vec<&str> = traced.iter().map(|s| s.name.as_str()).collect();
        if names.iter().filter(|n| **n == "POST /token").count() == 3
            && names.contains(&"sign")
            && names.iter().any(|n| n.starts_with("store "))
        {
            break;
        }
    }
    let names: Vec<&str> = traced.iter().map(|s| s.name.as_str()).collect();
    let requests: Vec<&Span> = traced.iter().filter(|s| s.name == "POST /token").collect();
    assert_eq!(requests.len(), 3, "{names:?}");
    let outbound = traced
        .iter()
        .find(|s| s.name.starts_with("outbound 127.0.0.1"))
        .unwrap_or_else(|| panic!("an outbound span: {names:?}"));
    assert!(under_a_request_or_below(&traced, outbound, &requests));
    for r in &requests {
        assert_eq!(
            hex(&r.parent_span_id),
            parent,
            "the caller's span is the parent"
        );
    }
    let under_a_request = |s: &Span| requests.iter().any(|r| r.span_id == s.parent_span_id);
    let sign = traced
        .iter()
        .find(|s| s.name == "sign")
        .expect("a sign span");
    assert!(
        traced.iter().any(|s| s.span_id == sign.parent_span_id),
        "{names:?}"
    );
    let store = traced
        .iter()
        .find(|s| s.name.starts_with("store ") && under_a_request(s))
        .unwrap_or_else(|| panic!("a store span under a request: {names:?}"));
    assert!(store.end_time_unix_nano >= store.start_time_unix_nano);
    let mut all = Vec::new();
    for _ in 0..50 {
        all = spans.lock().expect("lock").clone();
        let has = |name: &str| all.iter().any(|s| s.name.starts_with(name));
        if has("GET (unmatched)") && has("GET /.well-known/openid-configuration") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let discovery = all
        .iter()
        .find(|s| s.name.starts_with("GET /.well-known/openid-configuration"))
        .expect("the discovery request's span");
    assert!(discovery.parent_span_id.is_empty(), "a root span");
    assert_ne!(hex(&discovery.trace_id), trace_id);
    let all_names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert!(all_names.contains(&"GET (unmatched)"), "{all_names:?}");
    assert!(!all_names.iter().any(|n| n.contains("no/such/path")));
    assert!(
        !all_names.contains(&"store config_version"),
        "the configuration sync's polls are not traced"
    );
    drop(server);
}

//! Bad input at the token endpoint: RFC 6749 §5.2-shaped JSON errors, never a panic.

use axum::body::Body;
use http::{Request, StatusCode};
use proptest::prelude::*;
use tessera_core::model::{Alg, GrantType, TokenFormat};

use crate::support::{basic, Harness};

#[tokio::test]
async fn client_authentication_failures_are_401_with_a_challenge() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let long_id = basic(&"x".repeat(300), &c.secret);
    for auth in [
        Some(basic(&c.id, "wrong")),
        Some(basic("unknown", &c.secret)),
        Some("Basic %%%".to_owned()),
        Some("Basic".to_owned()),
        Some(long_id),
        None,
    ] {
        let r = h
            .post("/token", auth.as_deref(), "grant_type=client_credentials")
            .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::UNAUTHORIZED, "invalid_client"),
            "{auth:?}"
        );
        assert_eq!(
            r.header("www-authenticate"),
            "Basic realm=\"http://localhost:8080\""
        );
        assert_eq!(r.header("cache-control"), "no-store");
        assert!(r.json["error_description"].is_string());
    }
    // Nothing about the request is judged before the client is authenticated.
    let r = h
        .post(
            "/token",
            Some(&basic(&c.id, "wrong")),
            "grant_type=password&scope=nope",
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    // Unknown client and wrong secret look the same.
    let a = h
        .post(
            "/token",
            Some(&basic(&c.id, "wrong")),
            "grant_type=client_credentials",
        )
        .await;
    let b = h
        .post(
            "/token",
            Some(&basic("unknown", "wrong")),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(a.json, b.json);
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let cases = [
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            "invalid_request",
            "grant_type",
        ),
        ("scope=read:things", "invalid_request", "grant_type"),
        (
            "grant_type=client_credentials&scope=a&scope=b",
            "invalid_request",
            "scope",
        ),
        (
            "grant_type=urn:example:unknown",
            "unsupported_grant_type",
            "urn:example:unknown",
        ),
        ("grant_type=password", "invalid_request", "username"),
    ];
    for (body, code, mentions) in cases {
        let r = h.post("/token", Some(&c.basic()), body).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
        assert!(
            r.json["error_description"]
                .as_str()
                .is_some_and(|d| d.contains(mentions)),
            "{body}: {}",
            r.json
        );
    }
    let both = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        c.id, c.secret
    );
    let r = h.post("/token", Some(&c.basic()), &both).await;
    assert_eq!(r.error(), "invalid_request", "two authentication methods");
}

#[tokio::test]
async fn wrong_content_type_and_oversized_bodies() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let req = Request::post("/token")
        .header("content-type", "application/json")
        .header("authorization", c.basic())
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .expect("request");
    let r = h.send(req).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = h
        .send(
            Request::post("/token")
                .body(Body::from("grant_type=client_credentials"))
                .expect("request"),
        )
        .await;
    assert_eq!(r.error(), "invalid_request", "no content type");

    let big = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(70 * 1024)
    );
    let r = h.post("/token", Some(&c.basic()), &big).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request")
    );
    let many: String = (0..100).map(|i| format!("p{i}=1&")).collect();
    assert_eq!(
        h.post("/token", Some(&c.basic()), &many).await.error(),
        "invalid_request"
    );
}

#[tokio::test]
async fn oversized_request_targets_and_header_sections() {
    let h = Harness::new().await;
    let long = format!("/authorize?client_id=x&state={}", "s".repeat(17 * 1024));
    let r = h.get(&long).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::URI_TOO_LONG, "invalid_request")
    );
    let mut req = Request::get("/jwks");
    for i in 0..5 {
        req = req.header(format!("x-pad-{i}"), "p".repeat(8 * 1024));
    }
    let r = h.send(req.body(Body::empty()).expect("request")).await;
    assert_eq!(
        (r.status, r.error()),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid_request"
        )
    );
    let mut req = Request::get("/jwks");
    for i in 0..3 {
        req = req.header(format!("x-pad-{i}"), "p".repeat(8 * 1024));
    }
    let r = h.send(req.body(Body::empty()).expect("request")).await;
    assert_eq!(r.status, StatusCode::OK, "24 KiB of headers pass");
    // The limit counts what the client sent (name, ": ", value, CRLF), not the request id the
    // server adds: exactly the limit passes, one byte more does not.
    let limit = tessera_server::Limits::default().max_header_bytes;
    let field = "x-pad".len() + 4;
    for (pad, status) in [
        (limit - field, StatusCode::OK),
        (
            limit - field + 1,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ),
    ] {
        let req = Request::get("/jwks").header("x-pad", "p".repeat(pad));
        let r = h.send(req.body(Body::empty()).expect("request")).await;
        assert_eq!(r.status, status, "{pad}");
    }
    // The authority of a target in absolute form (HTTP/2's :authority) is part of the target.
    let far = format!("http://{}.example/jwks", "a".repeat(17 * 1024));
    let r = h
        .send(Request::get(far).body(Body::empty()).expect("request"))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::URI_TOO_LONG, "invalid_request")
    );
}

/// RFC 9110 §11.6.2: `Authorization` carries one set of credentials. A request with two is
/// refused before any handler reads either (a proxy in front may have judged the other one),
/// whichever comes first, at the token endpoint, a protected resource and the admin API.
#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let token = h.access_token(&c).await;
    let client = basic(&c.id, &c.secret);
    let bearer = format!("Bearer {token}");
    let cases = [
        ("/token", [client.as_str(), "Basic eDp5"]),
        ("/token", ["Basic eDp5", client.as_str()]),
        ("/token", [client.as_str(), client.as_str()]),
        ("/introspect", [client.as_str(), "Basic eDp5"]),
        ("/userinfo", [bearer.as_str(), "Bearer other"]),
        ("/admin/api/v1/clients", [bearer.as_str(), "Bearer other"]),
    ];
    for (path, [first, second]) in cases {
        let body = match path {
            "/token" => "grant_type=client_credentials".to_owned(),
            "/introspect" => format!("token={token}"),
            _ => String::new(),
        };
        let req = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", first)
            .header("authorization", second);
        let r = h.send(req.body(Body::from(body)).expect("request")).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path} {first} {second}"
        );
        assert!(r.json["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("Authorization")));
    }
    // One header is still fine.
    let r = h
        .post("/token", Some(&client), "grant_type=client_credentials")
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// RFC 6749 §2.3.1: a client's secret cannot be guessed at full speed. After 20 failures in the
/// window even the right secret waits (429 with Retry-After); other clients are not affected.
#[tokio::test]
async fn repeated_client_authentication_failures_are_throttled_per_client() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let other = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let cc = "grant_type=client_credentials";
    for _ in 0..20 {
        let r = h.post("/token", Some(&basic(&c.id, "guess")), cc).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    h.clock.advance(100);
    for auth in [basic(&c.id, "guess"), c.basic()] {
        let r = h.post("/token", Some(&auth), cc).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::TOO_MANY_REQUESTS, "invalid_client")
        );
        assert_eq!(r.header("retry-after"), "800", "the window's rest");
        assert_eq!(r.header("cache-control"), "no-store");
    }
    let r = h.post("/introspect", Some(&c.basic()), "token=abc").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "every endpoint");
    assert_eq!(
        h.post("/token", Some(&other.basic()), cc).await.status,
        StatusCode::OK
    );
    h.clock.advance(800);
    assert_eq!(
        h.post("/token", Some(&c.basic()), cc).await.status,
        StatusCode::OK,
        "the window is over"
    );
}

/// Wrong guesses sent all at once: each failure is counted atomically, so however many pass the
/// throttle check together, at most the limit are answered "wrong" and the rest are told to wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_never_overshoot_the_client_limit() {
    let h = std::sync::Arc::new(Harness::new().await);
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let auth = basic(&c.id, "guess");
    let answers = all_at_once(&h, 60, &auth, "grant_type=client_credentials").await;
    let wrong = answers
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let wait = told_to_wait(&answers);
    assert_eq!(
        wrong + wait,
        60,
        "every answer is 401 or 429 with Retry-After"
    );
    assert!(wrong <= 20, "{wrong} guesses were judged, the limit is 20");
}

/// Wrong passwords for one account sent all at once: the counters are read once a check has a
/// place among those under way (twice as many as cores) and the place is kept until its failure
/// is counted, so at most the limit plus those places are judged; everyone later is told to wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_password_guesses_stop_near_the_account_limit() {
    let h = std::sync::Arc::new(Harness::new().await);
    h.user("alice").await;
    let app = h
        .web_app(|s| {
            s.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::Password]);
        })
        .await;
    let body = "grant_type=password&username=alice&password=wrong+guess&scope=openid";
    let places = 2 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let guesses = 20 + 4 * places;
    let answers = all_at_once(&h, guesses, &app.basic(), body).await;
    let judged = answers
        .iter()
        .filter(|r| r.status == StatusCode::BAD_REQUEST && r.error() == "invalid_grant")
        .count();
    let wait = told_to_wait(&answers);
    assert_eq!(
        judged + wait,
        guesses,
        "every answer is invalid_grant or 429"
    );
    assert!(
        judged <= 5 + places,
        "{judged} guesses were judged; the limit is 5 and {places} checks may run at once"
    );
}

/// `n` token requests with the same credentials and body, all sent at once.
async fn all_at_once(
    h: &std::sync::Arc<Harness>,
    n: usize,
    auth: &str,
    body: &'static str,
) -> Vec<crate::support::Reply> {
    let sent: Vec<_> = (0..n)
        .map(|_| {
            let (h, auth) = (h.clone(), auth.to_owned());
            tokio::spawn(async move { h.post("/token", Some(&auth), body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for s in sent {
        answers.push(s.await.expect("request"));
    }
    answers
}

/// How many answers are 429 with `Retry-After`.
fn told_to_wait(answers: &[crate::support::Reply]) -> usize {
    answers
        .iter()
        .filter(|r| {
            r.status == StatusCode::TOO_MANY_REQUESTS && !r.header("retry-after").is_empty()
        })
        .count()
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let h = Harness::new().await;
    assert_eq!(h.get("/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.get("/token").await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(h.get("/readyz").await.status, StatusCode::OK);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Arbitrary bodies and Authorization headers at every form endpoint: always a JSON answer.
    #[test]
    fn no_input_makes_the_server_fail(body in proptest::collection::vec(any::<u8>(), 0..512), auth in "[ -~]{0,80}", path in prop::sample::select(vec!["/token", "/introspect", "/revoke"])) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let h = Harness::new().await;
            let req = Request::post(path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", auth.as_str())
                .body(Body::from(body))
                .expect("request");
            let r = h.send(req).await;
            prop_assert!(r.status.is_client_error(), "{} {}", r.status, r.json);
            prop_assert!(r.json["error"].is_string());
            Ok(())
        })?;
    }
}

//! What every routed request goes through first: its request id, its span and log line, a
//! deadline, and a guard that turns a handler's panic into a 500 answer. One function instead
//! of a layer each: every layer is a service and a future more, boxed and moved, per request.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, StatusCode};
use tracing::Instrument;

use crate::ops;

/// The header that names a request: the caller's when it sent a [`plain`] one, else one made
/// here; echoed on the answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller's request id kept (a UUID is 36, a W3C trace id 32).
const MAX_CALLERS_ID: usize = 128;

/// Whether a caller's request id is kept as it is: 1 to [`MAX_CALLERS_ID`] characters of
/// letters, digits and `-._~:/+=@`. Anything else (hundreds of kilobytes, spaces, `key=value`
/// pairs with quotes, bytes outside ASCII) would be copied into every log line of the request
/// and echoed: the request gets an id of its own instead.
fn plain(id: &HeaderValue) -> bool {
    let b = id.as_bytes();
    (1..=MAX_CALLERS_ID).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~:/+=@".contains(c))
}

/// `run(req)`, within `timeout` (else 408 with an empty body), a panic answered as a 500
/// (`ops::panic_response`), in the request's span, logged when answered, and with the
/// request's id on the answer.
pub async fn guarded<F, Fut>(mut req: Request, timeout: Duration, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let id = match req.headers().get(&REQUEST_ID) {
        Some(id) if plain(id) && req.headers().get_all(&REQUEST_ID).iter().count() == 1 => {
            id.clone()
        }
        _ => {
            let id = new_request_id();
            req.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let span = ops::span(&req, &id);
    let start = Instant::now();
    let mut res = async {
        tracing::debug!("started processing request");
        match tokio::time::timeout(timeout, AssertUnwindSafe(run(req)).catch_unwind()).await {
            Ok(Ok(res)) => res,
            Ok(Err(panic)) => ops::panic_response(panic),
            Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| ops::on_response(&res, start.elapsed(), &span));
    res.headers_mut().entry(REQUEST_ID).or_insert(id);
    res
}

thread_local! {
    static REQUEST_IDS: std::cell::Cell<(u64, u32)> =
        std::cell::Cell::new((u64::from_ne_bytes(tessera_core::secret::random_bytes::<8>()), 0));
}

/// A request id: unique, not secret (it names a request in the logs and is echoed to its
/// caller), so not drawn from the cryptographic generator for every request: each thread draws
/// a random 8-byte prefix once and counts after it.
fn new_request_id() -> HeaderValue {
    let (prefix, n) = REQUEST_IDS.with(|c| {
        let (prefix, n) = c.get();
        c.set((prefix, n.wrapping_add(1)));
        (prefix, n)
    });
    let mut raw = [0u8; 12];
    raw[..8].copy_from_slice(&prefix.to_ne_bytes());
    raw[8..].copy_from_slice(&n.to_be_bytes());
    // URL-safe base64 is visible ASCII: always a valid header value.
    HeaderValue::from_str(&tessera_core::secret::b64url(&raw))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(id: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/token");
        if let Some(id) = id {
            b = b.header("x-request-id", id);
        }
        b.body(Body::empty()).unwrap()
    }

    async fn body(res: Response) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_request_gets_an_id_and_keeps_the_callers() {
        let seen = |req: Request| async move {
            let id = req.headers()[REQUEST_ID].to_str().unwrap().to_owned();
            (StatusCode::OK, id).into_response()
        };
        let res = guarded(request(None), Duration::from_secs(5), seen).await;
        let made = res.headers()[REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(made.len(), 16, "{made}");
        assert_eq!(
            body(res).await,
            made,
            "the handler saw the id the answer carries"
        );
        let next = guarded(request(None), Duration::from_secs(5), seen).await;
        assert_ne!(next.headers()[REQUEST_ID], made.as_str(), "ids are unique");

        let uuid = "3f2b8c1e-5a7d-4e9f-b0c2-1d4e6f8a9b0c";
        let res = guarded(request(Some(uuid)), Duration::from_secs(5), seen).await;
        assert_eq!(res.headers()[REQUEST_ID], uuid);
        assert_eq!(body(res).await, uuid);
    }

    /// A caller's id that is long, has spaces or quotes, bytes outside ASCII, or comes twice is
    /// replaced, on the request (its logs) and the answer.
    #[tokio::test]
    async fn a_callers_id_that_is_not_plain_is_replaced() {
        let seen = |req: Request| async move {
            let ids: Vec<_> = req.headers().get_all(REQUEST_ID).iter().cloned().collect();
            assert_eq!(ids.len(), 1, "{ids:?}");
            (StatusCode::OK, ids[0].to_str().unwrap().to_owned()).into_response()
        };
        let long = "Z".repeat(MAX_CALLERS_ID + 1);
        let bad: [&[u8]; 5] = [
            long.as_bytes(),
            b"",
            b"a b status=999",
            b"x\",\"level\":\"ERROR",
            b"caf\xe9",
        ];
        for value in bad {
            let mut req = request(None);
            let value = HeaderValue::from_bytes(value).unwrap();
            req.headers_mut().insert(REQUEST_ID, value.clone());
            let res = guarded(req, Duration::from_secs(5), seen).await;
            let id = res.headers()[REQUEST_ID].clone();
            assert_ne!(id, value);
            assert_eq!(id.len(), 16);
            assert_eq!(body(res).await.as_bytes(), id.as_bytes());
        }
        let mut twice = request(Some("first"));
        twice
            .headers_mut()
            .append(REQUEST_ID, HeaderValue::from_static("second"));
        let res = guarded(twice, Duration::from_secs(5), seen).await;
        assert_eq!(res.headers()[REQUEST_ID].len(), 16);
        let at_limit = "a".repeat(MAX_CALLERS_ID);
        let res = guarded(request(Some(&at_limit)), Duration::from_secs(5), seen).await;
        assert_eq!(res.headers()[REQUEST_ID], at_limit.as_str());
    }

    #[tokio::test]
    async fn a_panic_is_a_500_with_the_request_id() {
        let res = guarded(request(Some("p-1")), Duration::from_secs(5), |_| async {
            panic!("a handler's bug")
        })
        .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[REQUEST_ID], "p-1");
        let text = body(res).await;
        assert!(text.contains("\"error\":\"server_error\""), "{text}");
        assert!(
            !text.contains("a handler's bug"),
            "the panic's text stays inside"
        );
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_a_408() {
        let res = guarded(request(None), Duration::from_millis(50), |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        })
        .await;
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(res.headers().contains_key(REQUEST_ID));
        assert_eq!(body(res).await, "");

        let res = guarded(request(None), Duration::from_secs(30), |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            StatusCode::OK.into_response()
        })
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}

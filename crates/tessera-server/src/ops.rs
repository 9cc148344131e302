//! Operations endpoints (`/healthz`, `/readyz`), request logging, and the responses for what no
//! handler answers (unknown paths, panics).

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{Request, StatusCode};
use serde_json::json;
use tracing::Span;

use crate::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers.
pub async fn readyz(State(s): State<AppState>) -> Response {
    match s.provider.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found", "error_description": "no such endpoint"})),
    )
        .into_response()
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<axum::body::Body> {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": "server_error", "error_description": "the authorization server encountered an unexpected condition"})),
    )
        .into_response()
}

/// One span per request: method, path (never the query, which may carry secrets), request id
/// (`guard.rs` chose it: visible ASCII).
pub fn span<B>(req: &Request<B>, id: &http::HeaderValue) -> Span {
    let id = id.to_str().unwrap_or("-");
    let method = logged_method(req.method());
    if !crate::otel::enabled() {
        return tracing::info_span!("request", method = %method, path = %req.uri().path(), request_id = %id);
    }
    // A path no route matches is not a span name: it is the caller's to make up.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unmatched)", |p| p.as_str());
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %req.uri().path(),
        request_id = %id,
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    crate::otel::continue_remote_trace(&span, req.headers());
    span
}

/// The longest method logged: no limit bounds the request line's method but hyper's buffer
/// (about 400 KB), and every method this server answers is at most 7 bytes.
const LOGGED_METHOD: usize = 32;

/// A method as logged: its first [`LOGGED_METHOD`] bytes (a method is a token, ASCII).
fn logged_method(method: &http::Method) -> &str {
    let m = method.as_str();
    m.get(..LOGGED_METHOD).unwrap_or(m)
}

/// Logs a request's answer in its span; a server error also as an error.
pub fn on_response<B>(res: &Response<B>, latency: Duration, span: &Span) {
    let status = res.status().as_u16();
    let latency_us = latency.as_micros() as u64;
    span.record("http.response.status_code", status);
    if res.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
        tracing::error!(status, latency_us, "response failed");
    }
    tracing::info!(status, latency_us, "request");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_method_is_logged_cut_short() {
        assert_eq!(logged_method(&http::Method::POST), "POST");
        let long = http::Method::from_bytes("M".repeat(200_000).as_bytes()).expect("a token");
        assert_eq!(logged_method(&long), "M".repeat(LOGGED_METHOD));
    }
}

//! Protocol responses: JSON bodies, `Cache-Control: no-store` on token/introspect/revoke, and
//! RFC 6749 §5.2 errors (`invalid_client` is 401 with `WWW-Authenticate`).

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use tessera_core::{Error, ErrorCode};

use crate::AppState;

fn build(status: StatusCode, body: Vec<u8>, cache: &'static str) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if cache == "no-store" {
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    }
    res
}

pub fn json<T: Serialize>(body: &T, cache: &'static str) -> Response {
    match serde_json::to_vec(body) {
        Ok(b) => build(StatusCode::OK, b, cache),
        Err(e) => error_body(StatusCode::INTERNAL_SERVER_ERROR, &Error::server(e)),
    }
}

pub fn no_store_json<T: Serialize>(body: &T) -> Response {
    json(body, "no-store")
}

/// A `200` of another media type than JSON, never stored.
pub fn no_store_as(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut res = build(StatusCode::OK, body, "no-store");
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The JSON error body with the given status.
pub fn error_body(status: StatusCode, e: &Error) -> Response {
    let body = json!({"error": e.code.as_str(), "error_description": e.description});
    build(status, body.to_string().into_bytes(), "no-store")
}

/// Logs the error (its private source included) and answers it.
pub fn error(s: &AppState, e: Error) -> Response {
    match e.code {
        ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => {
            tracing::error!(error = %e, "request failed")
        }
        _ => tracing::debug!(error = %e, "request refused"),
    }
    metrics::counter!("tessera_oauth_errors_total", "error" => e.code.as_str()).increment(1);
    if let Some(secs) = e.retry_after {
        metrics::counter!("tessera_throttled_requests_total", "error" => e.code.as_str())
            .increment(1);
        let mut res = error_body(StatusCode::TOO_MANY_REQUESTS, &e);
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return res;
    }
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = error_body(status, &e);
    if e.code == ErrorCode::InvalidClient {
        // RFC 6749 §5.2: 401 with a challenge for the Basic scheme clients authenticate with.
        let value = format!("Basic realm=\"{}\"", s.provider.settings.issuer);
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
    }
    if e.code == ErrorCode::TemporarilyUnavailable {
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// RFC 9449 §7.1: the `DPoP` challenge with an error, naming the algorithms proofs may use.
pub fn dpop_challenge(realm: &str, code: &str, description: &str) -> String {
    let desc = description.replace(['"', '\\'], "'");
    format!(
        "DPoP realm=\"{realm}\", error=\"{code}\", error_description=\"{desc}\", algs=\"{}\"",
        tessera_core::dpop::DPOP_ALGS.join(" ")
    )
}

/// RFC 6750 §3, RFC 9449 §7.1: a request without a token gets the bare challenges of both
/// schemes.
pub fn bearer_challenge(s: &AppState) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let realm = &s.provider.settings.issuer;
    let algs = tessera_core::dpop::DPOP_ALGS.join(" ");
    for value in [
        format!("Bearer realm=\"{realm}\""),
        format!("DPoP realm=\"{realm}\", algs=\"{algs}\""),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(WWW_AUTHENTICATE, v);
        }
    }
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// RFC 6750 §3.1: the error in `WWW-Authenticate` and in the body; RFC 9449 §7.1: with the
/// `DPoP` challenge when the token came with that scheme or the proof is at fault.
pub fn bearer_error(s: &AppState, e: Error, dpop: bool) -> Response {
    if matches!(
        e.code,
        ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
    ) {
        return error(s, e);
    }
    let status = match e.code {
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let proof_error = matches!(
        e.code,
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
    );
    let code = if status == StatusCode::UNAUTHORIZED && !proof_error {
        "invalid_token"
    } else {
        e.code.as_str()
    };
    let mut res = error_body(status, &Error::new(e.code, e.description.clone()));
    let realm = &s.provider.settings.issuer;
    let value = if dpop || proof_error {
        dpop_challenge(realm, code, &e.description)
    } else {
        let desc = e.description.replace(['"', '\\'], "'");
        format!("Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{desc}\"")
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

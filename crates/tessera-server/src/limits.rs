//! Limits every request must respect before any handler sees it: the request target (414,
//! RFC 9110 §15.5.15), the header section (431, RFC 6585 §5), and one `Authorization` header at
//! most (400). The body limit is axum's `DefaultBodyLimit`; parameter count and length are
//! `tessera_core::params`'.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use http::StatusCode;
use serde_json::json;

use crate::Limits;

fn refuse(status: StatusCode, what: &str, limit: usize) -> Response {
    invalid_request(status, &format!("the {what} is larger than {limit} bytes"))
}

fn invalid_request(status: StatusCode, why: &str) -> Response {
    let body = json!({
        "error": "invalid_request",
        "error_description": why,
    });
    (status, axum::Json(body)).into_response()
}

/// The refusal of a request whose target or header section is larger than its limit, or that
/// has more than one `Authorization` header.
pub fn refusal(limits: &Limits, req: &Request) -> Option<Response> {
    // The authority too when the target has one: absolute form, and HTTP/2's `:authority`.
    let uri = req.uri();
    let target = uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Some(refuse(
            StatusCode::URI_TOO_LONG,
            "request target",
            limits.max_uri_bytes,
        ));
    }
    // Each field as on the wire: name, ": ", value, CRLF.
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if headers > limits.max_header_bytes {
        return Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header section",
            limits.max_header_bytes,
        ));
    }
    // RFC 9110 §11.6.2: the field holds one set of credentials, and each reader of the request
    // takes the first; a proxy in front may have judged another (RFC 6749 §2.3: one method of
    // client authentication per request).
    if req.headers().get_all(AUTHORIZATION).iter().nth(1).is_some() {
        return Some(invalid_request(
            StatusCode::BAD_REQUEST,
            "the request has more than one Authorization header",
        ));
    }
    None
}

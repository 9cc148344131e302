//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device, and the `/device` page where the user enters the code and then signs in as at
//! `/authorize`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use tessera_core::device::DeviceEntry;

use crate::cors::AnswerFor;
use crate::interaction::ClientAddr;
use crate::oauth::respond::{error, no_store_json};
use crate::oauth::FormRequest;
use crate::{cookies, pages, AppState};

/// RFC 8628 §3.1-3.2.
pub async fn authorization(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    let answer = s.provider.device_authorization(&req).await;
    let res = match answer.result {
        Ok(body) => no_store_json(&body),
        Err(e) => error(&s, e),
    };
    AnswerFor::mark(res, answer.client_id)
}

/// The first value of `name` in a query or form (whatever else it holds: the page is shown).
fn first(raw: &[u8], name: &str) -> String {
    form_urlencoded::parse(raw)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.chars().take(32).collect())
        .unwrap_or_default()
}

/// `GET /device`: the form, prefilled from `verification_uri_complete` (the user still confirms
/// by submitting it), or the result after the user decided.
pub async fn page(RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let code: String = first(query.as_bytes(), "user_code")
        .chars()
        .take(16)
        .collect();
    let result = match first(query.as_bytes(), "result").as_str() {
        "approved" => "approved",
        "denied" => "denied",
        _ => "",
    };
    pages::device(StatusCode::OK, &code, None, result)
}

/// `POST /device`: the code entered, then the application's sign-in and consent page.
pub async fn submit(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return pages::device(
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
            Some("That was not a code. Enter the code your device shows."),
            "",
        );
    };
    let code = first(&body, "user_code");
    let cookie = cookies::get(&headers, cookies::SESSION);
    match s.provider.device_entry(&code, &addr, cookie).await {
        Ok(DeviceEntry::Outcome(o)) => crate::interaction::render(&s, *o),
        Ok(DeviceEntry::Retry { message, throttled }) => {
            let status = if throttled.is_some() {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            };
            let mut res = pages::device(status, &code, Some(message), "");
            if let Some(secs) = throttled {
                res.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
            res
        }
        Err(e) => pages::error(&e),
    }
}

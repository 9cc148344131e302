//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device, and the `/device` page where the user enters the code and then signs in as at
//! `/authorize`.

use axum::body::Bytes;
use axum::extract::{Query, State};
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

#[derive(serde::Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    result: String,
}

/// `GET /device`: the form, prefilled from `verification_uri_complete` (the user still confirms
/// by submitting it), or the result after the user decided.
pub async fn page(Query(q): Query<DeviceQuery>) -> Response {
    let code: String = q.user_code.chars().take(16).collect();
    let result = match q.result.as_str() {
        r @ ("approved" | "denied") => r,
        _ => "",
    };
    pages::device(StatusCode::OK, &code, None, result)
}

/// `POST /device`: the code entered, then the application's sign-in and consent page.
pub async fn submit(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let code: String = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.chars().take(32).collect())
        .unwrap_or_default();
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

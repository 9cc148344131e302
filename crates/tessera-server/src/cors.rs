//! CORS for the endpoints browser applications call themselves (`/token`, `/revoke`, `/userinfo`;
//! seed 002 "Allowed Origins"). A preflight cannot know which application will authenticate, so
//! it is answered for any origin some application allows; an actual response names the origin
//! only when the application it answers (the one that authenticated in that request, or at
//! userinfo the token's) allows it. Errors a browser application must be able to read, the 401
//! challenge of userinfo, expose `WWW-Authenticate` (and `Retry-After` for 429).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderValue, Method, StatusCode};

use crate::AppState;

/// Whom a response answers, as a handler tells this layer (a response extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerFor {
    /// The application that authenticated, or whose token was presented.
    Client(String),
    /// No application is known (a missing or invalid token at userinfo): the origins of every
    /// application may read the error, which says nothing about anyone.
    AnyApplication,
}

impl AnswerFor {
    /// Marks `res` as answering `client` (none: nobody's origin may read it).
    pub fn mark(mut res: Response, client: Option<String>) -> Response {
        if let Some(c) = client {
            res.extensions_mut().insert(AnswerFor::Client(c));
        }
        res
    }
}

const MAX_AGE: Duration = Duration::from_secs(600);

/// The layer: preflights answered here, actual responses given the headers they may carry.
pub async fn browser_endpoints(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(VARY, HeaderValue::from_static("origin"));
        if let Some(o) = origin.filter(|o| s.provider.origin_allowed(o)) {
            if let Ok(v) = HeaderValue::from_str(&o) {
                h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
                h.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                );
                h.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("authorization, content-type, dpop"),
                );
                h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE.as_secs()));
            }
        }
        return res;
    }
    let mut res = next.run(req).await;
    let answer = res.extensions_mut().remove::<AnswerFor>();
    res.headers_mut()
        .append(VARY, HeaderValue::from_static("origin"));
    let Some(origin) = origin else {
        return res;
    };
    let allowed = match answer {
        Some(AnswerFor::Client(id)) => s.provider.origin_allowed_for(&id, &origin).await,
        Some(AnswerFor::AnyApplication) => s.provider.origin_allowed(&origin),
        None => false,
    };
    if let (true, Ok(v)) = (allowed, HeaderValue::from_str(&origin)) {
        let h = res.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("www-authenticate, retry-after, dpop-nonce"),
        );
    }
    res
}

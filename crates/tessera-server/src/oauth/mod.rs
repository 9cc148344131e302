//! Thin handlers for the protocol endpoints: extract, call the provider, respond.

mod extract;
mod respond;

use axum::extract::State;
use axum::response::Response;

pub use extract::FormRequest;
use respond::{error, json, no_store_json};

use crate::AppState;

/// RFC 8414 §3 / OIDC Discovery §4.
pub async fn discovery(State(s): State<AppState>) -> Response {
    json(&s.provider.discovery(), "public, max-age=300")
}

/// RFC 7517 §5.
pub async fn jwks(State(s): State<AppState>) -> Response {
    json(
        &s.provider.keys().jwks(s.provider.now()),
        "public, max-age=300",
    )
}

/// RFC 6749 §3.2.
pub async fn token(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    match s.provider.token(&req).await {
        Ok(body) => {
            let grant = req
                .params
                .get("grant_type")
                .ok()
                .flatten()
                .unwrap_or("")
                .to_owned();
            metrics::counter!("tessera_tokens_issued_total", "grant_type" => grant).increment(1);
            no_store_json(&body)
        }
        Err(e) => error(&s, e),
    }
}

/// RFC 7662 §2.
pub async fn introspect(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    match s.provider.introspect(&req).await {
        Ok(body) => no_store_json(&body),
        Err(e) => error(&s, e),
    }
}

/// RFC 7009 §2.
pub async fn revoke(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    match s.provider.revoke(&req).await {
        Ok(()) => no_store_json(&serde_json::json!({})),
        Err(e) => error(&s, e),
    }
}

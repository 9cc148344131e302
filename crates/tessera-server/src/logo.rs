//! `GET /logo/{client_id}`: an application's logo for the sign-in and consent pages and the
//! Admin Portal. Public like the pages that show it; only checked image types are ever stored,
//! and they are served so that no browser treats them as anything else.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use tessera_core::admin::AdminError;
use tessera_core::store::StoreError;

use crate::AppState;

pub async fn logo(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Response {
    let found = match s.provider.logo(&id).await {
        Ok(found) => found,
        Err(AdminError::Store(StoreError::Unavailable(_))) => {
            return StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, client_id = %id, "logo could not be read");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let Some((content_type, bytes)) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let tag = format!(
        "\"{}\"",
        tessera_core::secret::b64url(&tessera_core::secret::sha256(&bytes)[..9])
    );
    // RFC 9110 §13.1.2: `*`, or any listed tag matching weakly.
    let fresh = h
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim())
                .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
        });
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let headers = res.headers_mut();
    for (name, value) in [
        (CONTENT_TYPE, content_type.as_str()),
        (CACHE_CONTROL, "public, max-age=3600"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox"),
        (ETAG, tag.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    res
}

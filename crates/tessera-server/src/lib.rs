//! The `tessera` binary as a library: the HTTP server as a value ([`app`]), its configuration, the
//! CLI, and background jobs.
//!
//! - [`config`]: TOML + `TESSERA_*` environment -> core settings
//! - [`oauth`]: thin handlers for the protocol endpoints
//! - [`ops`]: health, readiness
//! - [`metrics`]: Prometheus metrics and the metered store
//! - [`jobs`]: configuration sync, purge of expired artifacts
//! - [`cli`]: the commands (`serve`, `client`, `api`, `scope`, `key`, `apply`, `migrate`)

pub mod cli;
pub mod config;
pub mod jobs;
pub mod metrics;
pub mod oauth;
pub mod ops;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use http::{HeaderName, Request};
use tessera_core::Provider;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub provider: Arc<Provider>,
}

/// Limits applied to every request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = tessera_core::secret::b64url(&tessera_core::secret::random_bytes::<12>());
        http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The whole server as a value: testable without a socket.
pub fn app(state: AppState, limits: Limits) -> Router {
    metrics::install();
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/.well-known/openid-configuration", get(oauth::discovery))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::discovery),
        )
        .route("/jwks", get(oauth::jwks))
        .route("/token", post(oauth::token))
        .route("/introspect", post(oauth::introspect))
        .route("/revoke", post(oauth::revoke))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(metrics::render))
        .fallback(ops::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(ops::span)
                .on_response(ops::on_response),
        )
        .layer(SetRequestIdLayer::new(request_id, RandomRequestId))
}

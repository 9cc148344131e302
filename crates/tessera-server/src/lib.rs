//! The `tessera` binary as a library: the HTTP server as a value ([`app`]), its configuration, the
//! CLI, and background jobs.
//!
//! - [`config`]: TOML + `TESSERA_*` environment -> core settings
//! - [`oauth`]: thin handlers for the protocol endpoints
//! - [`interaction`], [`pages`], [`cookies`]: the browser endpoints (authorize, login, consent,
//!   logout, check_session) and their server-rendered pages; [`logo`]: applications' logos
//! - [`outbound`]: HTTP requests to other servers (key sets, policy webhooks), SSRF-guarded
//! - [`admin`]: the admin REST API and its OpenAPI document
//! - [`portal`]: the Admin Portal, server-rendered pages over the same use-cases
//! - [`ops`]: health, readiness
//! - [`metrics`]: Prometheus metrics and the metered store
//! - [`jobs`]: configuration sync, purge of expired artifacts
//! - [`cli`]: the commands (`serve`, `client`, `api`, `scope`, `key`, `apply`, `migrate`)

pub mod account;
pub mod admin;
pub mod bearer;
pub mod cli;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod device;
pub mod dpop_nonce;
pub mod front;
pub mod guard;
pub mod interaction;
pub mod jobs;
pub mod lanes;
pub mod limits;
pub mod listener;
pub mod logo;
pub mod metrics;
pub mod mtls;
pub mod oauth;
pub mod ops;
pub mod otel;
pub mod outbound;
pub mod pages;
pub mod portal;
pub mod registration;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use http::{HeaderName, Method};
use tessera_core::Provider;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// What every handler shares, behind one pointer: it is cloned several times a request, so a
/// clone is one count on a line of its own, not on the provider's.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(s: Shared) -> AppState {
        AppState(Arc::new(s))
    }
}

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub provider: Arc<Provider>,
    /// The header a trusted reverse proxy puts the client's address in (`http.client_ip_header`);
    /// `None`: the socket's peer address.
    pub client_ip_header: Option<HeaderName>,
    /// Where `/metrics` is served and who may read it.
    pub metrics: metrics::MetricsAccess,
    /// A TLS-terminating proxy that passes client certificates on (`mtls.proxy_header`).
    pub certificate_proxy: Option<mtls::CertificateProxy>,
}

impl Shared {
    /// The state of a server of `provider` with every other setting at its default.
    pub fn new(provider: Arc<Provider>) -> Shared {
        Shared {
            provider,
            client_ip_header: None,
            metrics: metrics::MetricsAccess::default(),
            certificate_proxy: None,
        }
    }
}

impl AppState {
    /// The state of a server of `provider` with every other setting at its default.
    pub fn new(provider: Arc<Provider>) -> AppState {
        AppState::from(Shared::new(provider))
    }
}

/// Limits applied to every request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// The request target (path and query); an authorization request travels in it.
    pub max_uri_bytes: usize,
    /// The header section, every field counted.
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 16 * 1024,
            max_header_bytes: 32 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The whole server as a value: testable without a socket.
pub fn app(state: AppState, limits: Limits) -> Router {
    metrics::install();
    let public_cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET]);
    let browser_apis = Router::new()
        .route("/token", post(oauth::token))
        .route("/userinfo", get(oauth::userinfo).post(oauth::userinfo))
        .route("/revoke", post(oauth::revoke))
        .route("/par", post(oauth::par))
        .route("/device_authorization", post(device::authorization))
        .route("/bc-authorize", post(oauth::backchannel))
        .route("/register", post(registration::register))
        .route(
            "/register/{client_id}",
            get(registration::read)
                .put(registration::update)
                .delete(registration::delete),
        )
        // CORS for the endpoints a browser application calls itself, per application.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::browser_endpoints,
        ));
    let public = Router::new()
        .route("/.well-known/openid-configuration", get(oauth::discovery))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::discovery),
        )
        .route("/jwks", get(oauth::jwks))
        .layer(public_cors);
    let metrics_here = state.metrics.on_main;
    let mut router = Router::new()
        .merge(browser_apis)
        .merge(public)
        .route(
            "/authorize",
            get(interaction::authorize).post(interaction::authorize),
        )
        .route("/account", get(account::show))
        .route("/account/login", get(account::login))
        .route("/account/callback", get(account::callback))
        .route("/account/password", post(account::password))
        .route("/account/factors/remove", post(account::remove_factor))
        .route("/account/factors/new", post(account::new_factor))
        .route("/account/factors/confirm", post(account::confirm_factor))
        .route("/account/codes", post(account::new_codes))
        .route("/account/consents/revoke", post(account::revoke_consent))
        .route("/account/backchannel", post(account::backchannel))
        .route("/account/identities/link", post(account::link_identity))
        .route("/account/identities/unlink", post(account::unlink_identity))
        .route("/login/upstream", post(interaction::login_upstream))
        .route(
            "/federation/{idp}/callback",
            get(interaction::upstream_callback),
        )
        .route(
            "/federation/{idp}/acs",
            get(interaction::saml_acs)
                .post(interaction::saml_acs_post)
                .layer(DefaultBodyLimit::max(
                    tessera_core::federation::saml::MAX_XML * 4 / 3 + 8192,
                )),
        )
        .route("/saml/metadata/{idp}", get(interaction::saml_metadata))
        .route("/federation/{idp}/slo", get(interaction::saml_slo))
        .route(
            "/federation/{idp}/logged-out",
            get(interaction::upstream_logged_out),
        )
        .route(
            "/federation/{idp}/backchannel-logout",
            post(interaction::upstream_backchannel_logout),
        )
        .route("/login", post(interaction::login))
        .route("/login/code", post(interaction::login_code))
        .route("/login/passkey", post(interaction::login_passkey))
        .route("/login/enrol", post(interaction::login_enrol))
        .route("/login/continue", post(interaction::login_continue))
        .route("/consent", post(interaction::consent))
        .route("/device", get(device::page).post(device::submit))
        .route(
            "/logout",
            get(interaction::logout).post(interaction::logout),
        )
        .route("/check_session", get(interaction::check_session))
        .route("/static/tessera.css", get(pages::stylesheet))
        .route("/static/admin.js", get(pages::portal_script))
        .route("/static/webauthn.js", get(pages::webauthn_script))
        .route("/logo/{client_id}", get(logo::logo))
        .route("/introspect", post(oauth::introspect))
        .nest("/admin/api", admin::router())
        .nest("/admin", portal::router())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if metrics_here {
        router = router.route("/metrics", get(metrics::render));
    }
    front::fronted(router, state, limits)
}

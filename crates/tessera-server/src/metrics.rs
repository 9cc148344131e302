//! Prometheus metrics at `/metrics`: requests by endpoint and status with latency histograms,
//! tokens issued by grant, protocol errors, throttled requests, sign-ins by outcome, purged
//! artifacts, store operation latency, cache hits and misses. Served on the public listener or
//! an address of its own (`metrics.listen`), optionally only to scrapers sending a bearer token
//! (`metrics.token_file`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::StatusCode;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tessera_core::audit::{AuditEvent, AuditQuery};
use tessera_core::federation::{IdentityProvider, LinkedIdentity};
use tessera_core::model::{
    Api, Artifact, ArtifactKey, Client, Consent, Installation, KeyRecord, Logo, Scope,
    StoredSettings, User,
};
use tessera_core::store::{Change, Consume, Consumed, Failures, Store, StoreResult, WithGrant};
use tessera_core::usage::UsageCount;
use tessera_core::Timestamp;

use crate::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process-wide recorder, installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Installs the recorder (idempotent); call before the first request is counted.
pub fn install() {
    let _ = handle();
}

/// Folds recorded histogram samples into their buckets every few seconds, so memory stays flat
/// between scrapes. Runs until `stop` changes.
pub async fn upkeep(mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
        if let Some(h) = handle() {
            h.run_upkeep();
        }
    }
}

/// One count and one latency sample per request, labelled by route (never the raw path, which is
/// unbounded), method (the standard ones; any other is `other`) and status; a throttled answer
/// (429) is counted for the dashboard.
pub struct Tracked {
    endpoint: Option<MatchedPath>,
    method: &'static str,
    start: Instant,
}

/// The request metrics' handles of one route, per method and status.
type RouteHandles = HashMap<(&'static str, u16), (Counter, Histogram)>;

thread_local! {
    /// Handles looked up once per worker thread and label set: the recorder's own lookup builds
    /// and hashes the labels each time. Bounded: routes x standard methods x statuses.
    static REQUEST_HANDLES: RefCell<HashMap<Arc<str>, RouteHandles>> = RefCell::new(HashMap::new());
    static ISSUED_HANDLES: RefCell<HashMap<&'static str, Counter>> = RefCell::new(HashMap::new());
    /// Bounded: the store's operations.
    static STORE_HANDLES: RefCell<HashMap<&'static str, Histogram>> = RefCell::new(HashMap::new());
}

/// A method's label: the RFC 9110 §9 methods by name, any other as `other`, so that a caller
/// cannot make new series up.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "other",
    }
}

impl Tracked {
    /// Starts the clock on a routed request.
    pub fn start(req: &Request) -> Tracked {
        Tracked {
            endpoint: req.extensions().get::<MatchedPath>().cloned(),
            method: method_label(req.method()),
            start: Instant::now(),
        }
    }

    /// Counts the request with its answer.
    pub fn finish(self, s: &AppState, res: &Response) {
        let status = res.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let now = s.provider.now();
            s.provider
                .usage
                .count(tessera_core::usage::THROTTLED, None, now);
        }
        let endpoint = self.endpoint.as_ref().map_or("unmatched", |p| p.as_str());
        let seconds = self.start.elapsed().as_secs_f64();
        REQUEST_HANDLES.with_borrow_mut(|routes| {
            let route = match routes.get_mut(endpoint) {
                Some(r) => r,
                None => routes.entry(endpoint.into()).or_default(),
            };
            let (count, latency) = route
                .entry((self.method, status.as_u16()))
                .or_insert_with(|| {
                    let e = metrics::SharedString::from(endpoint.to_owned());
                    let code = status.as_u16().to_string();
                    (
                        metrics::counter!("tessera_http_requests_total", "endpoint" => e.clone(), "method" => self.method, "status" => code),
                        metrics::histogram!("tessera_http_request_duration_seconds", "endpoint" => e),
                    )
                });
            count.increment(1);
            latency.record(seconds);
        });
    }
}

/// Counts a token issued by a grant (`tessera_tokens_issued_total`).
pub fn token_issued(grant_type: &'static str) {
    ISSUED_HANDLES.with_borrow_mut(|issued| {
        issued
            .entry(grant_type)
            .or_insert_with(
                || metrics::counter!("tessera_tokens_issued_total", "grant_type" => grant_type),
            )
            .increment(1);
    });
}

/// Where `/metrics` is served and who may read it.
#[derive(Debug, Clone)]
pub struct MetricsAccess {
    /// Served on the public listener (otherwise only on `metrics.listen`).
    pub on_main: bool,
    /// The bearer token a scraper must send, when one is configured.
    pub token: Option<Arc<str>>,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        MetricsAccess {
            on_main: true,
            token: None,
        }
    }
}

/// The router of the operations listener (`metrics.listen`): `/metrics`, and `/healthz` and
/// `/readyz` for probes, which there never queue behind the public listener's connections;
/// behind the same front middleware as the public listener (request ids, limits, deadline).
pub fn router(state: AppState, limits: crate::Limits) -> axum::Router {
    let routes = axum::Router::new()
        .route("/metrics", axum::routing::get(render))
        .route("/healthz", axum::routing::get(crate::ops::healthz))
        .route("/readyz", axum::routing::get(crate::ops::readyz));
    crate::front::fronted(routes, state, limits)
}

/// RFC 6750 §3.1: 401 with a challenge unless the request carries the configured token.
fn unauthorized(headers: &http::HeaderMap, token: &str) -> Option<Response> {
    let sent = crate::bearer::bearer_token(headers);
    if sent.is_some_and(|t| tessera_core::secret::constant_time_eq(t.as_bytes(), token.as_bytes()))
    {
        return None;
    }
    let mut res = (StatusCode::UNAUTHORIZED, "a bearer token is required").into_response();
    res.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"tessera-metrics\""),
    );
    Some(res)
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(State(s): State<AppState>, headers: http::HeaderMap) -> Response {
    if let Some(token) = &s.metrics.token {
        if let Some(refused) = unauthorized(&headers, token) {
            return refused;
        }
    }
    let stats = s.provider.cache_stats();
    metrics::counter!("tessera_cache_hits_total", "cache" => "client").absolute(stats.client_hits);
    metrics::counter!("tessera_cache_misses_total", "cache" => "client")
        .absolute(stats.client_misses);
    metrics::counter!("tessera_cache_hits_total", "cache" => "token").absolute(stats.token_hits);
    metrics::counter!("tessera_cache_misses_total", "cache" => "token")
        .absolute(stats.token_misses);
    match handle() {
        Some(h) => ([(CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

/// A store that times every operation (`tessera_store_operation_duration_seconds{op}`) and counts
/// failures (`tessera_store_errors_total{op}`).
pub struct MeteredStore(Arc<dyn Store>);

impl MeteredStore {
    /// `store`, timed. The recorder is installed first: a node's jobs use the store before its
    /// first request, and each thread keeps the handle of each operation it first gets, which
    /// would record nothing for the life of the process if taken before the recorder existed.
    pub fn new(store: Arc<dyn Store>) -> MeteredStore {
        install();
        MeteredStore(store)
    }
}

async fn timed<T>(
    op: &'static str,
    f: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let start = Instant::now();
    // Within a request only: the background jobs' polls (every 250 ms) would be traces of their own.
    let span = if tracing::Span::current().is_none() {
        tracing::Span::none()
    } else {
        tracing::trace_span!(target: crate::otel::TARGET, "store", otel.name = %format_args!("store {op}"), otel.kind = "client", db.operation.name = op)
    };
    let r = tracing::Instrument::instrument(f, span).await;
    let seconds = start.elapsed().as_secs_f64();
    STORE_HANDLES.with_borrow_mut(|ops| {
        ops.entry(op)
            .or_insert_with(
                || metrics::histogram!("tessera_store_operation_duration_seconds", "op" => op),
            )
            .record(seconds);
    });
    if r.is_err() {
        metrics::counter!("tessera_store_errors_total", "op" => op).increment(1);
    }
    r
}

#[async_trait]
impl Store for MeteredStore {
    async fn ping(&self) -> StoreResult<()> {
        timed("ping", self.0.ping()).await
    }
    async fn config_version(&self) -> StoreResult<i64> {
        timed("config_version", self.0.config_version()).await
    }
    async fn apply(&self, changes: &[Change]) -> StoreResult<()> {
        timed("apply", self.0.apply(changes)).await
    }
    async fn apply_at(&self, version: i64, changes: &[Change]) -> StoreResult<()> {
        timed("apply", self.0.apply_at(version, changes)).await
    }
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        timed("get_client", self.0.get_client(client_id)).await
    }
    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        timed("list", self.0.list_clients()).await
    }
    async fn get_api(&self, identifier: &str) -> StoreResult<Option<Api>> {
        timed("get_api", self.0.get_api(identifier)).await
    }
    async fn list_apis(&self) -> StoreResult<Vec<Api>> {
        timed("list", self.0.list_apis()).await
    }
    async fn get_scope(&self, name: &str) -> StoreResult<Option<Scope>> {
        timed("get_scope", self.0.get_scope(name)).await
    }
    async fn list_scopes(&self) -> StoreResult<Vec<Scope>> {
        timed("list", self.0.list_scopes()).await
    }
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        timed("list", self.0.list_keys()).await
    }
    async fn get_settings(&self) -> StoreResult<Option<StoredSettings>> {
        timed("get_settings", self.0.get_settings()).await
    }
    async fn installation(&self) -> StoreResult<Option<Installation>> {
        timed("installation", self.0.installation()).await
    }
    async fn get_logo(&self, client_id: &str) -> StoreResult<Option<Logo>> {
        timed("get_logo", self.0.get_logo(client_id)).await
    }
    async fn list_schemes(&self) -> StoreResult<Vec<tessera_core::scheme::AuthScheme>> {
        timed("list_schemes", self.0.list_schemes()).await
    }
    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        timed("list_idps", self.0.list_idps()).await
    }
    async fn link_identity(&self, i: &LinkedIdentity) -> StoreResult<()> {
        timed("link_identity", self.0.link_identity(i)).await
    }
    async fn update_identity(&self, i: &LinkedIdentity) -> StoreResult<()> {
        timed("update_identity", self.0.update_identity(i)).await
    }
    async fn unlink_identity(&self, idp: &str, subject: &str) -> StoreResult<bool> {
        timed("unlink_identity", self.0.unlink_identity(idp, subject)).await
    }
    async fn find_identity(&self, idp: &str, subject: &str) -> StoreResult<Option<LinkedIdentity>> {
        timed("find_identity", self.0.find_identity(idp, subject)).await
    }
    async fn user_identities(&self, user_id: &str) -> StoreResult<Vec<LinkedIdentity>> {
        timed("user_identities", self.0.user_identities(user_id)).await
    }
    async fn find_users_by_email(&self, email: &str, limit: i64) -> StoreResult<Vec<User>> {
        timed(
            "find_users_by_email",
            self.0.find_users_by_email(email, limit),
        )
        .await
    }
    async fn insert_artifact(&self, artifact: &Artifact) -> StoreResult<()> {
        timed("insert_artifact", self.0.insert_artifact(artifact)).await
    }
    async fn insert_artifacts(&self, artifacts: &[Artifact]) -> StoreResult<()> {
        timed("insert_artifacts", self.0.insert_artifacts(artifacts)).await
    }
    async fn get_artifact(&self, key: &ArtifactKey) -> StoreResult<Option<Artifact>> {
        timed("get_artifact", self.0.get_artifact(key)).await
    }
    async fn get_artifact_with_grant(&self, key: &ArtifactKey) -> StoreResult<Option<WithGrant>> {
        timed(
            "get_artifact_with_grant",
            self.0.get_artifact_with_grant(key),
        )
        .await
    }
    async fn revoke_artifact(&self, key: &ArtifactKey, at: Timestamp) -> StoreResult<bool> {
        timed("revoke_artifact", self.0.revoke_artifact(key, at)).await
    }
    async fn consume_artifact(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
    ) -> StoreResult<Consumed> {
        timed(
            "consume_artifact",
            self.0.consume_artifact(which, at, payload),
        )
        .await
    }
    async fn rotate_artifact(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
        successor: &Artifact,
    ) -> StoreResult<Consumed> {
        timed(
            "rotate_artifact",
            self.0.rotate_artifact(which, at, payload, successor),
        )
        .await
    }
    async fn revoke_grant(&self, grant_id: &str, at: Timestamp) -> StoreResult<u64> {
        timed("revoke_grant", self.0.revoke_grant(grant_id, at)).await
    }
    async fn artifacts_of(&self, grant_id: &str) -> StoreResult<Vec<Artifact>> {
        timed("artifacts_of", self.0.artifacts_of(grant_id)).await
    }
    async fn user_artifacts(&self, user_id: &str) -> StoreResult<Vec<Artifact>> {
        timed("user_artifacts", self.0.user_artifacts(user_id)).await
    }
    async fn purge_expired(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        timed("purge_expired", self.0.purge_expired(now, limit)).await
    }
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        timed("insert_user", self.0.insert_user(user)).await
    }
    async fn update_user(&self, user: &User) -> StoreResult<()> {
        timed("update_user", self.0.update_user(user)).await
    }
    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        timed("delete_user", self.0.delete_user(id)).await
    }
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        timed("get_user", self.0.get_user(id)).await
    }
    async fn find_user(&self, username: &str) -> StoreResult<Option<User>> {
        timed("find_user", self.0.find_user(username)).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        timed("list", self.0.list_users()).await
    }
    async fn get_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        timed("get_consent", self.0.get_consent(user_id, client_id)).await
    }
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()> {
        timed("put_consent", self.0.put_consent(consent)).await
    }
    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>> {
        timed("list", self.0.list_consents(user_id)).await
    }
    async fn client_consents(&self, client_id: &str) -> StoreResult<Vec<Consent>> {
        timed("list", self.0.client_consents(client_id)).await
    }
    async fn record_event(&self, event: &AuditEvent, expires_at: Timestamp) -> StoreResult<()> {
        timed("record_event", self.0.record_event(event, expires_at)).await
    }
    async fn purge_events(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        timed("purge_events", self.0.purge_events(now, limit)).await
    }
    async fn list_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        timed("list", self.0.list_events(query)).await
    }
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool> {
        timed("delete_consent", self.0.delete_consent(user_id, client_id)).await
    }
    async fn count_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<i64> {
        timed("count_failure", self.0.count_failure(key, now, window)).await
    }
    async fn failures(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<Failures> {
        timed("failures", self.0.failures(key, now, window)).await
    }
    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        timed("clear_failures", self.0.clear_failures(key)).await
    }
    async fn add_usage(&self, counts: &[UsageCount], before: i64) -> StoreResult<()> {
        timed("add_usage", self.0.add_usage(counts, before)).await
    }
    async fn usage_since(
        &self,
        since: i64,
        client_id: Option<&str>,
    ) -> StoreResult<Vec<UsageCount>> {
        timed("usage_since", self.0.usage_since(since, client_id)).await
    }
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: i64,
    ) -> StoreResult<bool> {
        timed("try_lease", self.0.try_lease(name, holder, now, ttl)).await
    }
}

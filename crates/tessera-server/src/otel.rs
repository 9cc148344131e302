//! OpenTelemetry traces over OTLP/HTTP (protobuf), off unless `otel.endpoint` is set: a span for
//! every request (continuing the caller's W3C `traceparent`), for each store operation, outbound
//! call and signature, exported in batches from a thread of their own. Off, no layer is installed,
//! the propagator is the no-op one, and the trace spans' call sites stay disabled.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{global, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use serde::{Deserialize, Serialize};

/// The target of the spans only traces want (store operations, outbound calls, signatures): at
/// `trace` level, so without an exporter nothing enables them and they cost nothing.
pub const TARGET: &str = tessera_core::TRACE_TARGET;

/// OpenTelemetry traces (OTLP over HTTP, protobuf); off while `endpoint` is empty.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtelConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318` (traces go to
    /// `/v1/traces` under it); empty: no traces.
    pub endpoint: String,
    /// `service.name` of the traces.
    pub service_name: String,
    /// A tracing filter for what becomes spans and span events (default `info` and the store,
    /// outbound and signing spans).
    pub filter: String,
    /// A caller's W3C `traceparent` parents its request's span (and decides its sampling);
    /// false: every request starts a trace of its own.
    pub trust_traceparent: bool,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            endpoint: String::new(),
            service_name: "tessera".into(),
            filter: format!("info,{TARGET}=trace"),
            trust_traceparent: true,
        }
    }
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
/// Whether a caller's `traceparent` may parent its request's span (`otel.trust_traceparent`).
static TRUST_INCOMING: OnceLock<bool> = OnceLock::new();

/// W3C Trace Context §3.3.1: at most 32 list members, and at least 512 characters kept; a longer
/// `tracestate` is not taken (a caller's huge one would be copied into every span).
const TRACESTATE_MAX: usize = 512;

/// Whether traces are exported (the request span then carries the OpenTelemetry fields).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The tracer of the configured exporter, or `None` when export is off.
pub fn init(config: &OtelConfig) -> anyhow::Result<Option<SdkTracer>> {
    let endpoint = config.endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    // The exporter logs its URL when an export fails: a password there would be in the logs.
    let parsed = url::Url::parse(endpoint)
        .map_err(|e| anyhow::anyhow!("otel.endpoint {endpoint:?} is not a URL: {e}"))?;
    anyhow::ensure!(
        parsed.username().is_empty() && parsed.password().is_none(),
        "otel.endpoint must not carry credentials: give the collector's token in OTEL_EXPORTER_OTLP_HEADERS"
    );
    let _ = TRUST_INCOMING.set(config.trust_traceparent);
    // reqwest is built without a crypto provider of its own: install aws-lc-rs first.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        // Used as given: the collector's traces URL.
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(10))
        .build()?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("tessera");
    global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = PROVIDER.set(provider);
    Ok(Some(tracer))
}

/// W3C Trace Context: the request span continues the caller's trace when its `traceparent` is
/// valid (set before the span is entered, which is when it can still take a parent).
pub fn continue_remote_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() || TRUST_INCOMING.get() != Some(&true) {
        return;
    }
    // Only the two W3C headers, one value each, and a `tracestate` within the W3C limits.
    let mut taken = http::HeaderMap::new();
    let one = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v.clone()),
            _ => None,
        }
    };
    let Some(parent) = one("traceparent").filter(|v| v.len() == 55) else {
        return;
    };
    taken.insert("traceparent", parent);
    if let Some(state) = one("tracestate")
        .filter(|v| v.len() <= TRACESTATE_MAX && v.as_bytes().split(|b| *b == b',').count() <= 32)
    {
        taken.insert("tracestate", state);
    }
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(&taken)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// `traceparent` of the current span, for an outbound request: ids only, never the caller's
/// `tracestate` (a caller must not put its headers on Tessera's calls to the URLs clients give).
pub fn inject_current(headers: &mut http::HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
    headers.remove("tracestate");
}

/// Exports what is buffered and stops (at the end of `serve`), off the async workers.
pub async fn shutdown() {
    if let Some(p) = PROVIDER.get().cloned() {
        let _ =
            tokio::task::spawn_blocking(move || p.shutdown_with_timeout(Duration::from_secs(5)))
                .await;
    }
}

#[cfg(test)]
mod tests {
    use super::OtelConfig;

    #[test]
    fn off_without_an_endpoint_and_never_with_credentials_in_it() {
        assert!(super::init(&OtelConfig::default()).unwrap().is_none());
        let with_password = OtelConfig {
            endpoint: "http://collector:secret@127.0.0.1:4318".into(),
            ..OtelConfig::default()
        };
        let refused = super::init(&with_password).unwrap_err().to_string();
        assert!(refused.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{refused}");
        assert!(!super::enabled());
    }
}

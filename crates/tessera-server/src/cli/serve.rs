//! `tessera serve`: logging, the provider, background jobs, the listener, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::lanes::Lanes;
use crate::listener::{self, ConnectionLimits};
use crate::metrics::MetricsAccess;
use crate::{app, jobs, AppState, Limits, Shared};

/// Text or JSON logs to stderr; `RUST_LOG` overrides `log.level`. CLI commands other than `serve`
/// log warnings only, so their output stays readable.
pub fn init_logging(config: &Config, serving: bool) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let default = if serving {
        config.log.level.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if config.log.format == "json" {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    // Only the server exports traces; an exporter that cannot be set up is reported, and the
    // server runs without it.
    let tracer = if serving {
        crate::otel::init(&config.otel).unwrap_or_else(|e| {
            eprintln!("OpenTelemetry traces are off: {e:#}");
            None
        })
    } else {
        None
    };
    // A filter of its own, so that the log level does not decide what the traces hold.
    let otel = tracer.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_filter(EnvFilter::new(&config.otel.filter))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
}

async fn shutdown_signal(stop: watch::Sender<bool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop.send(true);
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let url = config.database_url();
    let provider = super::provider(&config).await?;
    // The admin API is one of Tessera's own APIs: its scopes must exist before a token names them.
    provider
        .admin(tessera_core::admin::Caller::system())
        .ensure_admin_api()
        .await
        .context("creating the admin API")?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // Names this process in the cluster (the purge lease's holder) and in its logs.
    let node = tessera_core::secret::b64url(&tessera_core::secret::random_bytes::<9>());
    tracing::info!(
        node,
        issuer = %provider.settings.issuer,
        listen = %listener.local_addr()?,
        database = %tessera_store::redact(&url),
        data_dir = %config.data_dir.display(),
        "tessera is serving"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let sync = tokio::spawn(jobs::sync(provider.clone(), stop_rx.clone()));
    let purge = tokio::spawn(jobs::purge(provider.clone(), node, stop_rx.clone()));
    let upkeep = tokio::spawn(crate::metrics::upkeep(stop_rx.clone()));
    let usage = tokio::spawn(jobs::usage(provider.clone(), stop_rx.clone()));
    tokio::spawn(jobs::report_shared_subjects(provider.clone()));
    let limits = Limits {
        max_body_bytes: config.http.max_body_bytes,
        max_uri_bytes: config.http.max_uri_bytes,
        max_header_bytes: config.http.max_header_bytes,
        request_timeout: Duration::from_secs(config.http.request_timeout_secs),
    };
    let client_ip_header = match config.http.client_ip_header.trim() {
        "" => None,
        h => Some(http::HeaderName::from_bytes(h.as_bytes())?),
    };
    let metrics_listen = config.metrics.listen.trim();
    let state = AppState::from(Shared {
        provider,
        client_ip_header,
        metrics: MetricsAccess {
            on_main: metrics_listen.is_empty(),
            token: config.metrics.bearer_token()?.map(Into::into),
        },
        certificate_proxy: config.mtls.proxy()?,
    });
    let tls = config
        .tls
        .server_config()?
        .map(tokio_rustls::TlsAcceptor::from);
    let connections = ConnectionLimits {
        max_connections: config.http.max_connections,
        header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(config.http.idle_timeout_secs),
        drain_timeout: limits.request_timeout,
        http2_header_list: ConnectionLimits::http2_header_list(
            limits.max_header_bytes,
            limits.max_uri_bytes,
        ),
    };
    // One lane per runtime worker: the connections' threads (the runtime keeps the rest).
    let lanes = Arc::new(
        Lanes::start(tokio::runtime::Handle::current().metrics().num_workers())
            .context("starting the threads that serve connections")?,
    );
    let metrics_server = if metrics_listen.is_empty() {
        None
    } else {
        let l = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {metrics_listen} (metrics.listen)"))?;
        tracing::info!(listen = %l.local_addr()?, "metrics are served apart");
        let (lanes, stop) = (lanes.clone(), stop_rx.clone());
        let router = crate::metrics::router(state.clone(), limits);
        Some(tokio::spawn(async move {
            listener::serve(l, &lanes, router, connections, None, stop).await
        }))
    };
    tokio::spawn(shutdown_signal(stop_tx));
    listener::serve(
        listener,
        &lanes,
        app(state, limits),
        connections,
        tls,
        stop_rx,
    )
    .await;
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    let _ = tokio::join!(sync, purge, upkeep, usage);
    crate::otel::shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

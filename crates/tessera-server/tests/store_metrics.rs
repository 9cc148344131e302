//! The store's timing metrics count a node's store operations from the first one, made before
//! any request (the jobs and the configuration's load run first), in a process of its own so
//! that nothing else installs the recorder before it.

#![allow(clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tessera_core::secret::MasterKey;
use tessera_core::settings::{KeySettings, Lifetimes, Settings};
use tessera_core::{Clock, Provider};
use tessera_server::metrics::MeteredStore;
use tessera_server::{app, AppState, Limits};
use tower::ServiceExt;

/// One runtime thread, as the store's first operations and the later ones share it: a handle
/// kept from before the recorder existed would leave the operation's series out for good.
#[tokio::test(flavor = "current_thread")]
async fn store_operations_made_before_the_first_request_are_timed() {
    let store = tessera_store::connect("sqlite::memory:")
        .await
        .expect("store");
    let store: Arc<dyn tessera_core::store::Store> = Arc::new(MeteredStore::new(store));
    let settings = Settings::new(
        "https://issuer.example",
        Lifetimes::default(),
        KeySettings::default(),
    )
    .expect("settings");
    let master = MasterKey::parse(&MasterKey::generate_text()).expect("master key");
    // Loading the configuration reads the store: before the router (and its recorder) exists.
    let provider = Arc::new(
        Provider::new(settings, store.clone(), master, Clock::System)
            .await
            .expect("provider"),
    );
    store.ping().await.expect("ping before the router");
    let router = app(AppState::new(provider), Limits::default());
    store.ping().await.expect("ping after the router");
    let reply = router
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    let body = reply.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let pings = text
        .lines()
        .find(|l| {
            l.starts_with("tessera_store_operation_duration_seconds_count")
                && l.contains("op=\"ping\"")
        })
        .unwrap_or_else(|| panic!("no ping series in:\n{text}"));
    let n: f64 = pings
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a count");
    assert_eq!(n, 2.0, "both pings timed: {pings}");
}

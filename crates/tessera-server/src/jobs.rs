//! Background jobs of a running server: configuration sync (changes made by the CLI or another node
//! take effect within a second, due signing keys are generated) and the purge of expired artifacts
//! in bounded batches, run by one node of the cluster at a time (a lease in the store); this node's
//! dashboard counts added to the store.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::admin::Caller;
use tessera_core::Provider;
use tokio::sync::watch;

/// How often the store's configuration version is compared.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
const PURGE_BATCH: i64 = 1_000;
/// The purge lease outlives two intervals: when its holder stops renewing it, another node takes
/// it at its next pass after the lease ran out (within three minutes).
const PURGE_LEASE_SECS: i64 = 2 * PURGE_INTERVAL.as_secs() as i64;

/// How often this node's dashboard counts are added to the store.
pub const USAGE_INTERVAL: Duration = Duration::from_secs(5);

/// Adds this node's usage counts to the store every few seconds, and once more when `stop`
/// changes; counts the store did not take are kept for the next time.
pub async fn usage(provider: Arc<Provider>, mut stop: watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(USAGE_INTERVAL) => false,
            _ = stop.changed() => true,
        };
        store_usage(&provider).await;
        if stopping {
            return;
        }
    }
}

/// Adds this node's counts to the store; those it does not take wait for the next time.
pub async fn store_usage(provider: &Provider) {
    let counts = provider.usage.drain();
    if counts.is_empty() {
        return;
    }
    let before = provider.now().0 - tessera_core::usage::KEPT_SECS;
    if let Err(e) = provider.store.add_usage(&counts, before).await {
        tracing::warn!(error = %e, "usage counts not stored; kept for the next time");
        provider.usage.restore(counts);
    }
}

/// Runs until `stop` changes.
pub async fn sync(provider: Arc<Provider>, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SYNC_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        match provider.sync().await {
            Ok(()) if failing => {
                tracing::info!("configuration sync recovered");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "configuration sync failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// While this node (`node`) holds the purge lease: deletes expired artifacts a batch at a time
/// until none is left, renewing the lease between batches; then waits a minute.
pub async fn purge(provider: Arc<Provider>, node: String, mut stop: watch::Receiver<bool>) {
    loop {
        let mut deleted = 0;
        loop {
            let now = provider.now();
            match provider
                .store
                .try_lease("purge", &node, now, PURGE_LEASE_SECS)
                .await
            {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "purge lease unavailable");
                    break;
                }
            }
            let purged = match provider.store.purge_expired(now, PURGE_BATCH).await {
                Ok(n) => provider
                    .store
                    .purge_events(now, PURGE_BATCH)
                    .await
                    .map(|e| n.max(e)),
                Err(e) => Err(e),
            };
            match purged {
                Ok(n) => {
                    deleted += n;
                    if (n as i64) < PURGE_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purge failed");
                    break;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
        if deleted > 0 {
            tracing::debug!(deleted, "purged expired artifacts");
            metrics::counter!("tessera_purged_artifacts_total").increment(deleted);
        }
        tokio::select! {
            _ = tokio::time::sleep(PURGE_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Once at start: names, as warnings, subject values two parties hold (stored before such
/// writes were refused, or written on two nodes at one instant); an operator resolves them by
/// changing one party's value.
pub async fn report_shared_subjects(provider: Arc<Provider>) {
    match provider.admin(Caller::system()).shared_subjects().await {
        Ok(shared) => {
            for s in shared {
                tracing::warn!(subject = %s, "two parties hold one subject identifier");
            }
        }
        Err(e) => tracing::warn!(error = %e, "shared subject identifiers could not be looked for"),
    }
}

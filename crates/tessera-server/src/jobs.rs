//! Background jobs of a running server: configuration sync (changes made by the CLI or another node
//! take effect within a second) and the purge of expired artifacts in bounded batches.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::Provider;
use tokio::sync::watch;

/// How often the store's configuration version is compared.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
const PURGE_BATCH: i64 = 1_000;

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

/// Deletes expired artifacts, a batch at a time, until none is left; then waits a minute.
pub async fn purge(provider: Arc<Provider>, mut stop: watch::Receiver<bool>) {
    loop {
        loop {
            match provider
                .store
                .purge_expired(provider.now(), PURGE_BATCH)
                .await
            {
                Ok(n) if n as i64 == PURGE_BATCH => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(deleted = n, "purged expired artifacts");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purge failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PURGE_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

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
/// How long one purge statement should hold the store's writer: a request's write that queues
/// behind it waits about this long. The rows per statement follow, between the bounds below.
const PURGE_STEP: Duration = Duration::from_millis(2);
const PURGE_BATCH_FIRST: i64 = 500;
const PURGE_BATCH_MIN: i64 = 50;
const PURGE_BATCH_MAX: i64 = 5_000;
/// How often a purge under way renews its lease.
const PURGE_RENEW: Duration = Duration::from_secs(10);
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
/// until none is left, then waits a minute. Serving comes first: each statement is sized to hold
/// the writer for about [`PURGE_STEP`], and the purge rests three times as long as a statement
/// took before the next, so it never takes more than a quarter of the writer's time. When the
/// server stops, the lease is given back, so another node (or this one restarted) takes over at
/// its next pass instead of after the lease ran out.
pub async fn purge(provider: Arc<Provider>, node: String, stop: watch::Receiver<bool>) {
    purge_passes(&provider, &node, stop).await;
    // A lease that ends now: the next node's `expires_at <= now` takes it.
    if let Err(e) = provider
        .store
        .try_lease("purge", &node, provider.now(), 0)
        .await
    {
        tracing::debug!(error = %e, "purge lease not given back");
    }
}

async fn purge_passes(provider: &Provider, node: &str, mut stop: watch::Receiver<bool>) {
    loop {
        let mut deleted = 0;
        let mut batch = PURGE_BATCH_FIRST;
        let mut renewed: Option<std::time::Instant> = None;
        loop {
            let now = provider.now();
            if renewed.is_none_or(|at| at.elapsed() >= PURGE_RENEW) {
                match provider
                    .store
                    .try_lease("purge", node, now, PURGE_LEASE_SECS)
                    .await
                {
                    Ok(true) => renewed = Some(std::time::Instant::now()),
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "purge lease unavailable");
                        break;
                    }
                }
            }
            let started = std::time::Instant::now();
            let purged = match provider.store.purge_expired(now, batch).await {
                Ok(n) => provider
                    .store
                    .purge_events(now, batch)
                    .await
                    .map(|e| n.max(e)),
                Err(e) => Err(e),
            };
            let took = started.elapsed();
            match purged {
                Ok(n) => {
                    deleted += n;
                    if (n as i64) < batch {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purge failed");
                    break;
                }
            }
            batch = next_batch(batch, took);
            tokio::select! {
                _ = tokio::time::sleep(took * 3) => {}
                _ = stop.changed() => return,
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

/// The next purge statement's rows: fewer when the last took longer than [`PURGE_STEP`], more
/// when it took less than half of it.
fn next_batch(batch: i64, took: Duration) -> i64 {
    if took > PURGE_STEP {
        (batch * 3 / 4).max(PURGE_BATCH_MIN)
    } else if took < PURGE_STEP / 2 {
        (batch * 5 / 4).min(PURGE_BATCH_MAX)
    } else {
        batch
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{next_batch, PURGE_BATCH_MAX, PURGE_BATCH_MIN, PURGE_STEP};

    #[test]
    fn purge_statements_shrink_when_slow_and_grow_when_fast_within_bounds() {
        assert_eq!(next_batch(1_000, PURGE_STEP * 2), 750);
        assert_eq!(next_batch(1_000, Duration::ZERO), 1_250);
        assert_eq!(next_batch(1_000, PURGE_STEP * 3 / 4), 1_000);
        assert_eq!(
            next_batch(PURGE_BATCH_MIN, PURGE_STEP * 10),
            PURGE_BATCH_MIN
        );
        assert_eq!(next_batch(PURGE_BATCH_MAX, Duration::ZERO), PURGE_BATCH_MAX);
    }
}

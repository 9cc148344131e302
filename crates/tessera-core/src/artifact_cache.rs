//! A short-lived, per-node cache of opaque access tokens read for introspection, and of grants from
//! their creation to the code exchange. Resource servers introspect the same token again and again;
//! answering from memory for at most [`FRESHNESS`] keeps the store off that path. Revocation on
//! this node caches the revoked state at once; a revocation made on another node is seen within
//! `FRESHNESS` (the scale-out promise: within one second).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::model::{Artifact, ArtifactKey};

pub const FRESHNESS: Duration = Duration::from_millis(500);
const LIMIT: usize = 100_000;

#[derive(Debug, Default)]
pub struct ArtifactCache {
    entries: RwLock<HashMap<ArtifactKey, (Instant, Arc<Artifact>)>>,
}

impl ArtifactCache {
    pub fn get(&self, key: &ArtifactKey) -> Option<Arc<Artifact>> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < FRESHNESS)
            .map(|(_, a)| a.clone())
    }

    pub fn put(&self, artifact: Arc<Artifact>) {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= LIMIT {
            map.retain(|_, (at, _)| at.elapsed() < FRESHNESS);
            if map.len() >= LIMIT {
                map.clear();
            }
        }
        // A revoked copy is never replaced by an older, unrevoked read.
        if map
            .get(&artifact.key)
            .is_some_and(|(_, old)| old.revoked_at.is_some() && artifact.revoked_at.is_none())
        {
            return;
        }
        map.insert(artifact.key, (Instant::now(), artifact));
    }
}

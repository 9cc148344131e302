//! Identity providers' metadata as last read, by provider name: an entry serves while it is
//! younger than the caller's limit and was read for the provider's current configuration.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::Timestamp;

/// When it was read, for which version (`updated_at`) of the provider, and what it said.
type Read<T> = (Timestamp, Timestamp, Arc<T>);

#[derive(Debug)]
pub struct MetadataCache<T> {
    entries: RwLock<HashMap<String, Read<T>>>,
}

impl<T> Default for MetadataCache<T> {
    fn default() -> Self {
        MetadataCache {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<T> MetadataCache<T> {
    /// What `name`'s metadata said, if read less than `max_age` seconds before `now` for the
    /// provider's configuration of `version`.
    pub(crate) fn fresh(
        &self,
        name: &str,
        version: Timestamp,
        now: Timestamp,
        max_age: i64,
    ) -> Option<Arc<T>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (at, read_for, value) = entries.get(name)?;
        (now.0 - at.0 < max_age && *read_for == version).then(|| value.clone())
    }

    /// Remembers what `name`'s metadata said at `now`, for its configuration of `version`.
    pub(crate) fn put(&self, name: &str, version: Timestamp, now: Timestamp, value: Arc<T>) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), (now, version, value));
    }
}

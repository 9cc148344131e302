//! Signing-key administration (DESIGN §3): generate, import, retire, and the upkeep that keeps one
//! current signer per algorithm with its successor published ahead of use and drops keys no
//! longer needed.

use super::permission::{Operation, TargetKind};
use super::{Admin, AdminError, AdminResult};
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::keys::{self, Upkeep};
use crate::model::{Alg, KeyRecord};
use crate::provider::Provider;
use crate::store::{Change, Record, StoreError, Table};

/// A signing window; an absent end means the configured key lifetime after the start.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyWindow {
    pub not_before: Option<Timestamp>,
    pub not_after: Option<Timestamp>,
}

impl Provider {
    fn window(&self, w: KeyWindow, now: Timestamp) -> AdminResult<(Timestamp, Timestamp)> {
        let nb = w.not_before.unwrap_or(now);
        let na = w.not_after.unwrap_or(nb.plus(self.settings.keys.lifetime));
        if na <= nb {
            return Err(super::invalid("not_after", "must be later than not_before"));
        }
        Ok((nb, na))
    }

    /// Signing windows of one algorithm never overlap: a key that started earlier (or at the same
    /// time) hands over at the new key's not_before; a key that starts later is a conflict.
    fn key_changes(existing: &[KeyRecord], new: KeyRecord) -> AdminResult<Vec<Change>> {
        let mut changes = Vec::new();
        for e in existing.iter().filter(|e| e.alg == new.alg) {
            let overlaps = e.not_before < new.not_after && new.not_before < e.not_after;
            if !overlaps {
                continue;
            }
            if e.not_before <= new.not_before {
                let mut cut = e.clone();
                cut.not_after = new.not_before;
                changes.push(Change::Update(Record::Key(cut)));
            } else {
                return Err(AdminError::Conflict(format!(
                    "key {} already signs {} from {}; choose a window that does not overlap it",
                    e.kid,
                    e.alg.as_str(),
                    e.not_before.0
                )));
            }
        }
        changes.push(Change::Create(Record::Key(new)));
        Ok(changes)
    }

    pub(crate) async fn get_key(&self, kid: &str) -> AdminResult<KeyRecord> {
        self.store
            .list_keys()
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| AdminError::NotFound(format!("key {kid}")))
    }

    pub(crate) async fn list_keys(&self) -> AdminResult<Vec<KeyRecord>> {
        let mut keys = self.store.list_keys().await?;
        keys.sort_by_key(|k| (k.alg, k.not_before));
        Ok(keys)
    }

    /// A key applications are pinned to (seed 000 "Certificate") does not stop signing early:
    /// their tokens would be refused, and the pins may be theirs to change only with more power
    /// than ending a key needs. They are moved to another key, or unpinned, first.
    async fn refuse_if_pinned(&self, kid: &str) -> AdminResult<()> {
        let pinned: Vec<String> = self
            .store
            .list_clients()
            .await?
            .into_iter()
            .filter(|c| c.signing_kid.as_deref() == Some(kid))
            .map(|c| c.client_id)
            .collect();
        if pinned.is_empty() {
            return Ok(());
        }
        Err(AdminError::Conflict(format!(
            "applications {} are pinned to key {kid}; pin them to another key or unpin them first",
            pinned.join(", ")
        )))
    }

    /// A new key that takes over early ends the key it follows: not one applications are
    /// pinned to ([`Provider::refuse_if_pinned`]).
    async fn refuse_cutting_pinned(&self, changes: &[Change]) -> AdminResult<()> {
        for c in changes {
            if let Change::Update(Record::Key(cut)) = c {
                self.refuse_if_pinned(&cut.kid).await?;
            }
        }
        Ok(())
    }

    /// The changes that add a generated key (and hand over from the key it follows).
    async fn generated_key(
        &self,
        alg: Alg,
        window: KeyWindow,
    ) -> AdminResult<(KeyRecord, Vec<Change>)> {
        let now = self.now();
        let w = self.window(window, now)?;
        let rec = keys::generate(alg, w, &self.master, now)?;
        tracing::info!(kid = %rec.kid, alg = alg.as_str(), "signing key generated");
        let changes = Self::key_changes(&self.store.list_keys().await?, rec.clone())?;
        self.refuse_cutting_pinned(&changes).await?;
        Ok((rec, changes))
    }

    /// Generates what is due for each configured algorithm: a signer when none is valid now, and a
    /// successor once the current signer is within `publish_ahead` of its end; deletes the records
    /// of keys no longer needed ([`keys::SigningKey::kept_at`]). All of it is written
    /// only if the configuration is still the one the key ring was loaded from (`version`), so nodes
    /// starting together do not each generate keys: the losers reload and find the winner's.
    pub(crate) async fn ensure_signing_keys(&self, version: i64, now: Timestamp) -> Result<Upkeep> {
        let ring = self.keys();
        let mut changes = Vec::new();
        let mut made = Vec::new();
        for &alg in &self.settings.keys.algorithms {
            let window = match ring.signer(alg, now) {
                // No signer now: one that signs until the next scheduled key (if any) takes over.
                None => KeyWindow {
                    not_before: Some(now),
                    not_after: ring
                        .all()
                        .filter(|k| k.alg == alg && k.not_before > now)
                        .map(|k| k.not_before)
                        .min(),
                },
                Some(cur) if cur.not_after.0 - now.0 <= self.settings.keys.publish_ahead => {
                    if ring
                        .all()
                        .any(|k| k.alg == alg && k.not_before >= cur.not_after)
                    {
                        continue;
                    }
                    KeyWindow {
                        not_before: Some(cur.not_after),
                        not_after: None,
                    }
                }
                Some(_) => continue,
            };
            let action = match ring.signer(alg, now) {
                Some(_) => "key.rotated",
                None => "key.generated",
            };
            match self.generated_key(alg, window).await {
                Ok((rec, c)) => {
                    made.push((action, rec));
                    changes.extend(c);
                }
                // Another node wrote its key between this ring's load and now: the store moved,
                // so this node reloads and finds the winner's key, as for a stale write.
                Err(AdminError::Conflict(_)) => return Ok(Upkeep::Raced),
                Err(e) => return Err(Error::server(e)),
            }
        }
        // A key no longer published and past every session's expired ID token hints: its record goes.
        changes.extend(
            ring.all()
                .filter(|k| !k.kept_at(now))
                .map(|k| Change::Delete(Table::Keys, k.kid.clone())),
        );
        if changes.is_empty() {
            return Ok(Upkeep::Nothing);
        }
        match self.store.apply_at(version, &changes).await {
            Ok(()) => {
                for (action, k) in made {
                    let target = format!("key:{}", k.kid);
                    self.record(&Actor::system(), action, &target, None, key_detail(&k))
                        .await;
                }
                Ok(Upkeep::Applied)
            }
            Err(StoreError::Stale) => Ok(Upkeep::Raced),
            Err(e) => Err(e.into()),
        }
    }
}

impl Admin<'_> {
    pub async fn keys(&self) -> AdminResult<Vec<KeyRecord>> {
        self.authorize(Operation::ListKeys, TargetKind::Ordinary)?;
        self.list_keys().await
    }

    pub async fn key(&self, kid: &str) -> AdminResult<KeyRecord> {
        self.authorize(Operation::ReadKey, TargetKind::Ordinary)?;
        self.get_key(kid).await
    }

    pub async fn generate_key(&self, alg: Alg, window: KeyWindow) -> AdminResult<KeyRecord> {
        self.authorize(Operation::GenerateKey, TargetKind::Ordinary)?;
        let now = self.now();
        let rec = keys::generate(alg, self.window(window, now)?, &self.master, now)?;
        tracing::info!(kid = %rec.kid, alg = alg.as_str(), "signing key generated");
        self.add_key(&rec, "key.generated").await?;
        Ok(rec)
    }

    pub async fn import_key(
        &self,
        alg: Alg,
        key_pem: &str,
        chain_pem: &str,
        window: KeyWindow,
    ) -> AdminResult<KeyRecord> {
        // Whoever knows an imported key's private part can sign any token.
        self.authorize(Operation::ImportKey, TargetKind::Protected)?;
        let now = self.now();
        let w = self.window(window, now)?;
        let rec = keys::import(alg, key_pem, chain_pem, w, &self.master, now)?;
        self.add_key(&rec, "key.imported").await?;
        tracing::info!(kid = %rec.kid, alg = alg.as_str(), "signing key imported");
        Ok(rec)
    }

    /// Writes a new key, handing over from the key it follows, against the keys as they are then.
    async fn add_key(&self, rec: &KeyRecord, action: &str) -> AdminResult<()> {
        self.settle(|| async move {
            let version = self.read_version().await?;
            let existing = self.store.list_keys().await?;
            if existing.iter().any(|k| k.kid == rec.kid) {
                return Err(AdminError::Conflict(format!(
                    "key {} already exists",
                    rec.kid
                )));
            }
            let changes = Provider::key_changes(&existing, rec.clone())?;
            self.refuse_cutting_pinned(&changes).await?;
            self.commit_as(version, &changes, Some(action), key_detail(rec))
                .await
        })
        .await
    }

    /// Stops a key signing now; it stays in the JWKS until the tokens it signed have expired.
    pub async fn retire_key(&self, kid: &str) -> AdminResult<KeyRecord> {
        self.settle(|| self.try_retire_key(kid)).await
    }

    async fn try_retire_key(&self, kid: &str) -> AdminResult<KeyRecord> {
        self.authorize(Operation::RetireKey, TargetKind::Ordinary)?;
        let version = self.read_version().await?;
        let now = self.now();
        let mut k = self.get_key(kid).await?;
        self.precondition(&k)?;
        if k.not_after <= now {
            return Err(AdminError::Conflict(format!(
                "key {kid} is already retired"
            )));
        }
        self.refuse_if_pinned(kid).await?;
        let old_end = k.not_after;
        k.not_after = now;
        if k.not_before > now {
            k.not_before = now;
        }
        let mut changes = vec![Change::Update(Record::Key(k.clone()))];
        // A successor published to take over at the retired key's end takes over now instead.
        if let Some(mut next) = self
            .store
            .list_keys()
            .await?
            .into_iter()
            .find(|n| n.alg == k.alg && n.kid != k.kid && n.not_before == old_end)
        {
            next.not_before = now;
            changes.push(Change::Update(Record::Key(next)));
        }
        self.commit_as(version, &changes, Some("key.retired"), key_detail(&k))
            .await?;
        tracing::info!(kid, "signing key retired");
        Ok(k)
    }

    /// Moves a key's signing window (seed 002 "Used From" / "Used Until"). A key that has
    /// signed keeps its start; windows of one algorithm still may not overlap.
    pub async fn schedule_key(&self, kid: &str, window: KeyWindow) -> AdminResult<KeyRecord> {
        self.settle(|| self.try_schedule_key(kid, window)).await
    }

    async fn try_schedule_key(&self, kid: &str, window: KeyWindow) -> AdminResult<KeyRecord> {
        self.authorize(Operation::ScheduleKey, TargetKind::Ordinary)?;
        let version = self.read_version().await?;
        let now = self.now();
        let mut k = self.get_key(kid).await?;
        self.precondition(&k)?;
        let nb = window.not_before.unwrap_or(k.not_before);
        let na = window.not_after.unwrap_or(k.not_after);
        if k.not_before <= now && nb != k.not_before {
            return Err(super::invalid(
                "not_before",
                "the key has already signed; only its end can move",
            ));
        }
        if k.not_before > now && nb < now {
            return Err(super::invalid("not_before", "must not be in the past"));
        }
        if na <= nb {
            return Err(super::invalid("not_after", "must be later than not_before"));
        }
        if na < now {
            return Err(super::invalid(
                "not_after",
                "must not be in the past; retire the key to stop it now",
            ));
        }
        if na < k.not_after {
            self.refuse_if_pinned(kid).await?;
        }
        let others = self.store.list_keys().await?;
        if let Some(o) = others
            .iter()
            .find(|o| o.alg == k.alg && o.kid != k.kid && o.not_before < na && nb < o.not_after)
        {
            return Err(AdminError::Conflict(format!(
                "key {} signs {} in that window; windows of one algorithm may not overlap",
                o.kid,
                o.alg.as_str()
            )));
        }
        k.not_before = nb;
        k.not_after = na;
        self.commit_as(
            version,
            &[Change::Update(Record::Key(k.clone()))],
            Some("key.scheduled"),
            key_detail(&k),
        )
        .await?;
        Ok(k)
    }
}

fn key_detail(k: &KeyRecord) -> serde_json::Value {
    serde_json::json!({
        "alg": k.alg.as_str(),
        "not_before": k.not_before.0,
        "not_after": k.not_after.0,
    })
}

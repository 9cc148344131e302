//! `Provider`: settings, store, keys and clock; the only entry point of the protocol. One async fn per
//! endpoint lives beside the module that implements it; this file owns the shared state and caches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::artifact_cache::ArtifactCache;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::jwks::JwksCache;
use crate::keys::{KeyRing, Upkeep};
use crate::model::{Api, Client, Installation, LifetimeOverrides, Scope};
use crate::outbound::{NoOutbound, Outbound};
use crate::scheme::{AuthScheme, DEFAULT_SCHEME};
use crate::secret::MasterKey;
use crate::settings::{Lifetimes, Settings};
use crate::store::{Change, Record, Store, StoreError, StoreResult};
use crate::throttle_memo::{ClientThrottle, ThrottleNotes};

/// A client as the hot path needs it: the record and its decrypted secret.
pub struct LoadedClient {
    pub client: Client,
    pub secret: Option<Vec<u8>>,
    pub(crate) throttle: ClientThrottle,
}

impl std::fmt::Debug for LoadedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedClient")
            .field("client_id", &self.client.client_id)
            .finish_non_exhaustive()
    }
}

/// How many client lookups (hits or misses) the cache keeps before it starts over.
const CLIENT_CACHE_LIMIT: usize = 100_000;

/// Configuration read through once per store version: keys, APIs, scopes, clients.
#[derive(Debug, Default)]
struct Snapshot {
    version: i64,
    /// Stored keys that could not be loaded (wrong master key, corrupt record).
    broken_keys: usize,
    keys: KeyRing,
    apis: HashMap<String, Api>,
    scopes: HashMap<String, Scope>,
    /// Authentication schemes by name (the built-in `password` among them).
    schemes: HashMap<String, AuthScheme>,
    /// Their `acr` values, sorted: discovery's, and what an essential `acr` may name.
    acr_values: Vec<String>,
    /// Upstream identity providers by name.
    idps: HashMap<String, crate::federation::IdentityProvider>,
    /// Every client's allowed CORS origins (patterns).
    origins: Vec<String>,
    /// Default lifetimes administrators set at runtime, over the configuration file's.
    lifetimes: LifetimeOverrides,
    clients: RwLock<HashMap<String, Option<Arc<LoadedClient>>>>,
}

/// Hits and misses of the per-node caches, for metrics.
#[derive(Debug, Default)]
struct CacheCounters {
    client_hits: AtomicU64,
    client_misses: AtomicU64,
    token_hits: AtomicU64,
    token_misses: AtomicU64,
}

/// A reading of the cache counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub client_hits: u64,
    pub client_misses: u64,
    pub token_hits: u64,
    pub token_misses: u64,
}

pub struct Provider {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub(crate) master: Arc<MasterKey>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Opaque tokens recently read, for introspection.
    pub(crate) artifacts: ArtifactCache,
    stats: CacheCounters,
    /// Serializes reloads so that concurrent callers do not reload twice.
    reload: tokio::sync::Mutex<()>,
    /// Requests to other servers (key sets, policy webhooks).
    pub(crate) outbound: Arc<dyn Outbound>,
    /// Fetched key sets of clients and trusted issuers.
    pub(crate) jwks: JwksCache,
    /// Upstream identity providers' metadata.
    pub(crate) upstream_metadata:
        crate::federation::cache::MetadataCache<crate::federation::metadata::Endpoints>,
    pub(crate) saml_metadata_cache:
        crate::federation::cache::MetadataCache<crate::federation::metadata::IdpMetadata>,
    /// SAML signature checks run at most one per core at a time: xmlsec's work is the
    /// caller's to make, and must not take every core.
    pub(crate) saml_gate: tokio::sync::Semaphore,
    /// The throttled keys already in the audit log.
    pub(crate) throttle_notes: ThrottleNotes,
    /// Held by each write that could bring two parties to one subject value, from its check
    /// to its store write (admin/subjects.rs): one at a time on this node.
    pub(crate) subject_writes: tokio::sync::Mutex<()>,
    /// The WebAuthn relying party of the issuer, and whether passkeys can work on it: read
    /// once from the settings, not per request.
    pub(crate) relying_party: (crate::factor::webauthn::RelyingParty, bool),
    /// This node's counts for the dashboard, not yet in the store.
    pub usage: crate::usage::Usage,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.settings.issuer)
            .finish()
    }
}

impl Provider {
    /// Builds the provider and loads its configuration, generating any missing signing key.
    pub async fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        master: MasterKey,
        clock: Clock,
    ) -> Result<Provider> {
        let relying_party = crate::factor::webauthn::RelyingParty::of_issuer(
            &settings.issuer,
            settings.passkey_user_verification,
        );
        let p = Provider {
            settings,
            store,
            clock,
            master: Arc::new(master),
            snapshot: RwLock::new(Arc::new(Snapshot {
                version: -1,
                ..Snapshot::default()
            })),
            artifacts: ArtifactCache::default(),
            stats: CacheCounters::default(),
            reload: tokio::sync::Mutex::new(()),
            outbound: Arc::new(NoOutbound),
            jwks: JwksCache::default(),
            upstream_metadata: Default::default(),
            saml_metadata_cache: Default::default(),
            saml_gate: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            throttle_notes: ThrottleNotes::default(),
            subject_writes: tokio::sync::Mutex::new(()),
            relying_party,
            usage: crate::usage::Usage::default(),
        };
        p.bind_issuer().await?;
        p.sync().await?;
        let snap = p.snapshot();
        if snap.broken_keys > 0 && snap.keys.all().next().is_none() {
            return Err(Error::server(
                "no stored signing key can be decrypted: the master key is not the one this database was created with",
            ));
        }
        Ok(p)
    }

    /// Records the issuer on a database set up now; refuses a database set up for another issuer
    /// (its tokens, admin API and Portal are bound to that one).
    async fn bind_issuer(&self) -> Result<()> {
        let mine = &self.settings.issuer;
        let stored = match self.store.installation().await? {
            Some(i) => i,
            None => {
                let record = Installation {
                    issuer: mine.clone(),
                    updated_at: self.now(),
                };
                match self
                    .store
                    .apply(&[Change::Create(Record::Installation(record.clone()))])
                    .await
                {
                    Ok(()) => record,
                    // Another process recorded one meanwhile: judge by it.
                    Err(StoreError::Conflict(_)) => {
                        self.store.installation().await?.unwrap_or(record)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if stored.issuer != *mine {
            return Err(Error::server(format!(
                "this database was set up for the issuer {stored}, but this process is configured with {mine}: set issuer (TESSERA_ISSUER) to {stored}, or move the installation deliberately with `tessera issuer change --from {stored}`",
                stored = stored.issuer
            )));
        }
        Ok(())
    }

    /// Lets the provider make outbound requests (the server's HTTP client).
    pub fn with_outbound(mut self, outbound: Arc<dyn Outbound>) -> Provider {
        self.outbound = outbound;
        self
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Notices changes made by the CLI or another node: reloads when the store's version moved, and
    /// generates signing keys that are due. The server calls this every 250 ms.
    pub async fn sync(&self) -> Result<()> {
        let version = self.store.config_version().await?;
        if version != self.snapshot().version {
            self.reload_if_stale(version).await?;
        }
        // Never generate (and so hand over from) keys while some stored key cannot be read: a wrong
        // master key on one node must not rotate every other node's keys away.
        if self.snapshot().broken_keys > 0 {
            return Ok(());
        }
        for _ in 0..3 {
            let snapshot_version = self.snapshot().version;
            match self
                .ensure_signing_keys(snapshot_version, self.now())
                .await?
            {
                Upkeep::Nothing => break,
                Upkeep::Applied | Upkeep::Raced => {
                    let version = self.store.config_version().await?;
                    self.reload_if_stale(version).await?;
                }
            }
        }
        Ok(())
    }

    async fn reload_if_stale(&self, version: i64) -> Result<()> {
        let _guard = self.reload.lock().await;
        if self.snapshot().version == version {
            return Ok(());
        }
        let snap = self.load_snapshot().await?;
        let mut w = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        *w = Arc::new(snap);
        Ok(())
    }

    async fn load_snapshot(&self) -> StoreResult<Snapshot> {
        // Read the version first: a change racing with this load raises it again and triggers a reload.
        let version = self.store.config_version().await?;
        let (ring, failures) = KeyRing::load(&self.store.list_keys().await?, &self.master);
        for (kid, e) in &failures {
            tracing::error!(kid, error = %e, "signing key could not be loaded and is not used");
        }
        let apis = self
            .store
            .list_apis()
            .await?
            .into_iter()
            .map(|a| (a.identifier.clone(), a))
            .collect();
        let scopes = self
            .store
            .list_scopes()
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let mut schemes: HashMap<String, AuthScheme> = self
            .store
            .list_schemes()
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        schemes
            .entry(DEFAULT_SCHEME.to_owned())
            .or_insert_with(AuthScheme::password);
        let idps = self
            .store
            .list_idps()
            .await?
            .into_iter()
            .map(|i| (i.name.clone(), i))
            .collect();
        let mut acr_values: Vec<String> = schemes.values().map(|s| s.acr.clone()).collect();
        acr_values.sort();
        acr_values.dedup();
        let mut origins: Vec<String> = self
            .store
            .list_clients()
            .await?
            .into_iter()
            .filter(|c| c.enabled)
            .flat_map(|c| c.browser.allowed_origins)
            .collect();
        origins.sort();
        origins.dedup();
        let lifetimes = self
            .store
            .get_settings()
            .await?
            .unwrap_or_default()
            .lifetimes;
        Ok(Snapshot {
            version,
            broken_keys: failures.len(),
            keys: ring,
            apis,
            scopes,
            acr_values,
            idps,
            schemes,
            origins,
            lifetimes,
            clients: RwLock::default(),
        })
    }

    pub fn keys(&self) -> KeyRing {
        self.snapshot().keys.clone()
    }

    /// The lifetimes new applications get: what administrators set, else the configuration file's.
    pub fn default_lifetimes(&self) -> Lifetimes {
        self.settings
            .lifetimes
            .overridden(&self.snapshot().lifetimes)
    }

    pub(crate) fn api(&self, identifier: &str) -> Option<Api> {
        self.snapshot().apis.get(identifier).cloned()
    }

    /// An upstream identity provider by name.
    pub fn idp(&self, name: &str) -> Option<crate::federation::IdentityProvider> {
        self.snapshot().idps.get(name).cloned()
    }

    /// Every upstream identity provider, by name.
    pub fn idps(&self) -> Vec<crate::federation::IdentityProvider> {
        let mut v: Vec<_> = self.snapshot().idps.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The identity providers the account page signs users in with and links: enabled, and
    /// named by a scheme (one no scheme names is being set up, or retired).
    pub(crate) fn account_idps(&self) -> Vec<crate::federation::IdentityProvider> {
        let snap = self.snapshot();
        self.idps()
            .into_iter()
            .filter(|i| {
                i.enabled
                    && snap
                        .schemes
                        .values()
                        .any(|s| s.identity_providers.contains(&i.name))
            })
            .collect()
    }

    /// The scheme `name` names, if there is one (`password` always is).
    pub fn scheme(&self, name: &str) -> Option<AuthScheme> {
        self.snapshot().schemes.get(name).cloned()
    }

    /// The scheme an application's users sign in with; the default when its own is gone.
    pub fn scheme_of(&self, client: &Client) -> AuthScheme {
        self.scheme(&client.browser.authentication_scheme)
            .unwrap_or_else(AuthScheme::password)
    }

    /// The scheme whose `acr` is `acr`.
    pub(crate) fn scheme_by_acr(&self, acr: &str) -> Option<AuthScheme> {
        self.snapshot()
            .schemes
            .values()
            .find(|s| s.acr == acr)
            .cloned()
    }

    /// Every scheme's `acr`, sorted (discovery's `acr_values_supported`).
    pub fn acr_values(&self) -> Vec<String> {
        self.snapshot().acr_values.clone()
    }

    pub(crate) fn scope(&self, name: &str) -> Option<Scope> {
        self.snapshot().scopes.get(name).cloned()
    }

    /// A scope no API defines fits any audience; a scope of some API fits only an audience with one
    /// of the APIs that define it.
    pub(crate) fn scope_fits(&self, scope: &str, aud: &[String]) -> bool {
        let snap = self.snapshot();
        let mut owners = snap
            .apis
            .values()
            .filter(|a| a.scopes.iter().any(|s| s == scope))
            .peekable();
        owners.peek().is_none() || owners.any(|a| aud.contains(&a.identifier))
    }

    /// The scopes listed in discovery: the OpenID scopes and the discoverable ones (seed 003), sorted.
    pub fn scope_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .snapshot()
            .scopes
            .values()
            .filter(|s| s.discoverable)
            .map(|s| s.name.clone())
            .collect();
        for s in crate::model::OPENID_SCOPES {
            if !v.iter().any(|x| x == s) {
                v.push(s.to_owned());
            }
        }
        v.sort();
        v
    }

    /// CORS: whether a browser `Origin` is allowed by some application (seed 002 wildcards).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.snapshot()
            .origins
            .iter()
            .any(|a| crate::uri::origin_matches(a, origin))
    }

    /// CORS: whether the application `client_id` allows the browser `Origin` (an unknown client,
    /// or one the store cannot be read for, allows none).
    pub async fn origin_allowed_for(&self, client_id: &str, origin: &str) -> bool {
        match self.client(client_id).await {
            Ok(Some(c)) => c
                .client
                .browser
                .allowed_origins
                .iter()
                .any(|a| crate::uri::origin_matches(a, origin)),
            _ => false,
        }
    }

    /// Claim names the scopes' custom mappings release.
    pub(crate) fn custom_claim_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .snapshot()
            .scopes
            .values()
            .flat_map(|s| s.claims.keys().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn cache_stats(&self) -> CacheStats {
        let s = &self.stats;
        CacheStats {
            client_hits: s.client_hits.load(Ordering::Relaxed),
            client_misses: s.client_misses.load(Ordering::Relaxed),
            token_hits: s.token_hits.load(Ordering::Relaxed),
            token_misses: s.token_misses.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_token_lookup(&self, hit: bool) {
        let c = if hit {
            &self.stats.token_hits
        } else {
            &self.stats.token_misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A client by id through the cache; unknown ids are cached as misses too.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<LoadedClient>>> {
        let snap = self.snapshot();
        if let Some(hit) = snap
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
        {
            self.stats.client_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit.clone());
        }
        self.stats.client_misses.fetch_add(1, Ordering::Relaxed);
        let loaded = match self.store.get_client(client_id).await? {
            Some(client) => {
                let secret = match &client.secret_ciphertext {
                    Some(ct) => Some(
                        self.master
                            .decrypt(&client.client_id, ct)
                            .map_err(Error::server)?,
                    ),
                    None => None,
                };
                Some(Arc::new(LoadedClient {
                    client,
                    secret,
                    throttle: Default::default(),
                }))
            }
            None => None,
        };
        let mut w = snap.clients.write().unwrap_or_else(|p| p.into_inner());
        if w.len() >= CLIENT_CACHE_LIMIT {
            w.clear();
        }
        w.insert(client_id.to_owned(), loaded.clone());
        Ok(loaded)
    }
}

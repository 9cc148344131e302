//! Settings: built-in defaults, then a TOML file (`--config`), then `TESSERA_*` environment variables
//! (`TESSERA_<SECTION>__<KEY>` for nested keys), validated into core `Settings`. Every CLI command
//! reads the same settings, so it works on the same database as the server.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use tessera_core::model::Alg;
use tessera_core::secret::MasterKey;
use tessera_core::settings::{KeySettings, Lifetimes, Settings, Throttle};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer identifier: the base URL clients reach Tessera at.
    pub issuer: String,
    /// Address and port the HTTP server listens on.
    pub listen: String,
    /// Where the embedded database and the generated master key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `sqlite://<data_dir>/tessera.db`.
    pub database_url: Option<String>,
    /// The master key (64 hex digits or base64 of 32 bytes); prefer `master_key_file`.
    pub master_key: Option<String>,
    /// A file holding the master key.
    pub master_key_file: Option<PathBuf>,
    /// Seconds of leeway for other parties' clocks on incoming JWTs and SAML assertions (0-600).
    pub clock_skew: i64,
    pub lifetimes: LifetimesConfig,
    pub keys: KeysConfig,
    pub sign_in: SignInConfig,
    pub dpop: DpopConfig,
    pub tls: TlsConfig,
    pub mtls: MtlsConfig,
    pub registration: RegistrationConfig,
    pub outbound: OutboundConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub otel: crate::otel::OtelConfig,
    pub admin: AdminConfig,
}

/// DPoP (RFC 9449): sender-constrained tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Every DPoP proof must carry a nonce Tessera handed out in `DPoP-Nonce` (RFC 9449 §8).
    pub require_nonce: bool,
}

/// Dynamic client registration (RFC 7591, RFC 7592).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    pub enabled: bool,
    /// Without an initial access token (throttled per address like failed sign-ins).
    pub open: bool,
    /// The grant types a registered client may use.
    pub grant_types: Vec<String>,
    /// The scopes a registered client may ask for.
    pub scopes: Vec<String>,
    /// Every registration needs a software statement of one of `software_statement_issuers`.
    pub require_software_statement: bool,
    /// `[{ issuer = "...", jwks_uri = "..." }]` (or `jwks` inline).
    pub software_statement_issuers: Vec<tessera_core::model::TrustedIssuer>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        let d = tessera_core::settings::RegistrationSettings::default();
        RegistrationConfig {
            enabled: d.enabled,
            open: d.open,
            grant_types: d.grant_types.iter().map(|g| g.name().to_owned()).collect(),
            scopes: d.scopes,
            require_software_statement: d.require_software_statement,
            software_statement_issuers: d.software_statement_issuers,
        }
    }
}

/// Tessera's own TLS: with `cert` and `key`, `tessera serve` speaks HTTPS only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's PEM certificate chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Ask clients for a certificate (optional for them) for mutual TLS (RFC 8705).
    pub client_certificates: bool,
}

impl TlsConfig {
    /// The rustls configuration, when TLS is configured.
    pub fn server_config(&self) -> anyhow::Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
        match (&self.cert, &self.key) {
            (Some(c), Some(k)) => {
                crate::tls::server_config(c, k, self.client_certificates).map(Some)
            }
            (None, None) => Ok(None),
            _ => bail!("tls.cert and tls.key go together"),
        }
    }
}

/// Mutual TLS (RFC 8705): client authentication by certificate and certificate-bound tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MtlsConfig {
    /// PEM certificates of the CAs a `tls_client_auth` client certificate must chain to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// Behind a TLS-terminating proxy: the header it puts the client certificate in, URL-encoded
    /// PEM (nginx: `proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;`).
    pub proxy_header: String,
    /// The addresses or networks of those proxies: the header is honoured only from them.
    pub trusted_proxies: Vec<String>,
    /// RFC 8705 §5: the base URL clients reach the endpoints at with mutual TLS, when it is not
    /// the issuer (published as `mtls_endpoint_aliases`).
    pub endpoint_base: String,
}

impl MtlsConfig {
    /// The proxy whose certificate header is honoured, if any.
    pub fn proxy(&self) -> anyhow::Result<Option<crate::mtls::CertificateProxy>> {
        let header = self.proxy_header.trim();
        if header.is_empty() {
            return Ok(None);
        }
        let header = http::HeaderName::from_bytes(header.as_bytes())
            .with_context(|| format!("mtls.proxy_header {header:?} is not a header name"))?;
        if self.trusted_proxies.is_empty() {
            bail!("mtls.proxy_header needs mtls.trusted_proxies: the addresses of the proxies that set it");
        }
        let trusted = self
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|e: String| anyhow::anyhow!("mtls.trusted_proxies: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(crate::mtls::CertificateProxy { header, trusted }))
    }

    /// The DER certificates of `client_ca_file`.
    fn trust_anchors(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        use rustls_pki_types::pem::PemObject;
        let Some(path) = &self.client_ca_file else {
            return Ok(Vec::new());
        };
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {} (mtls.client_ca_file)", path.display()))?
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!(
                    "{} is not PEM certificates (mtls.client_ca_file)",
                    path.display()
                )
            })?;
        if certs.is_empty() {
            bail!(
                "{} holds no certificate (mtls.client_ca_file)",
                path.display()
            );
        }
        Ok(certs)
    }
}

/// Where `/metrics` is served and who may read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A separate address (`127.0.0.1:9464`) to serve `/metrics` on instead of the public
    /// listener; empty: the public listener.
    pub listen: String,
    /// A bearer token scrapers must send (`Authorization: Bearer …`); prefer `token_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding that token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl MetricsConfig {
    /// The token `/metrics` requires, if any (from `token` or `token_file`, trimmed).
    pub fn bearer_token(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => bail!("metrics: give token or token_file, not both"),
            (Some(t), None) => t.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("metrics.token_file {}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        if token.len() < 16 {
            bail!("metrics.token must be at least 16 characters");
        }
        Ok(Some(token))
    }
}

/// The admin API and the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// How long audit events are kept, in days.
    pub audit_retention_days: i64,
    /// Record every token issued or refused in the audit log.
    pub audit_tokens: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            audit_retention_days: 90,
            audit_tokens: false,
        }
    }
}

/// Requests Tessera makes: client key sets, trusted issuers' keys, policy webhooks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    pub timeout_ms: u64,
    pub max_bytes: usize,
    pub allow_private_addresses: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            timeout_ms: 3_000,
            max_bytes: 256 * 1024,
            allow_private_addresses: false,
        }
    }
}

impl OutboundConfig {
    pub fn client(&self) -> crate::outbound::HttpOutbound {
        crate::outbound::HttpOutbound {
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            max_bytes: self.max_bytes,
            allow_private: self.allow_private_addresses,
        }
    }
}

/// Browser sign-in: sessions, PKCE, throttling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    pub session_lifetime: i64,
    /// Replaced by each application's `refresh_grace_secs` (off by default); a file that still
    /// sets it is refused with a pointer there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_grace_secs: Option<i64>,
    pub pkce_plain: bool,
    /// Every application's authorization requests must be pushed first (PAR, RFC 9126).
    pub require_pushed_authorization_requests: bool,
    /// Seconds a pushed request's `request_uri` stays good (10-600).
    pub pushed_request_lifetime: i64,
    pub max_failures_per_account: i64,
    pub max_failures_per_address: i64,
    /// Failed client-secret authentications per client (token, introspection, revocation).
    pub max_failures_per_client: i64,
    pub failure_window_secs: i64,
    /// WebAuthn user verification for passkeys: `required`, `preferred` or `discouraged`.
    pub passkey_user_verification: tessera_core::factor::webauthn::UserVerification,
}

impl Default for SignInConfig {
    fn default() -> Self {
        let s = Settings::new(
            "http://localhost",
            Lifetimes::default(),
            KeySettings::default(),
        );
        let (life, plain, t) = match s {
            Ok(s) => (s.session_lifetime, s.pkce_plain, s.throttle),
            Err(_) => (86_400, false, Throttle::default()),
        };
        SignInConfig {
            session_lifetime: life,
            refresh_grace_secs: None,
            pkce_plain: plain,
            require_pushed_authorization_requests: false,
            pushed_request_lifetime: 60,
            max_failures_per_account: t.per_account,
            max_failures_per_address: t.per_address,
            max_failures_per_client: t.per_client,
            failure_window_secs: t.window,
            passkey_user_verification: Default::default(),
        }
    }
}

/// Default lifetimes in seconds; each application may set its own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimesConfig {
    pub authorization_code: i64,
    pub access_token: i64,
    pub refresh_token: i64,
    pub id_token: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub algorithms: Vec<String>,
    pub lifetime_days: i64,
    pub publish_ahead_days: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout_secs: u64,
    /// A connection must send its opening bytes, and each request's whole header section, within
    /// this many seconds (an HTTP/1 keep-alive connection waiting for its next request too).
    pub header_read_timeout_secs: u64,
    /// An HTTP/2 connection with no request in flight is closed after this many seconds.
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted until one closes.
    pub max_connections: usize,
    /// The header a trusted reverse proxy sets to the client's address; empty: the socket peer.
    pub client_ip_header: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `tessera=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./tessera-data"),
            database_url: None,
            master_key: None,
            master_key_file: None,
            clock_skew: tessera_core::settings::CLOCK_SKEW_DEFAULT,
            lifetimes: LifetimesConfig::default(),
            keys: KeysConfig::default(),
            sign_in: SignInConfig::default(),
            dpop: DpopConfig::default(),
            tls: TlsConfig::default(),
            mtls: MtlsConfig::default(),
            registration: RegistrationConfig::default(),
            outbound: OutboundConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            otel: crate::otel::OtelConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

impl Default for LifetimesConfig {
    fn default() -> Self {
        let l = Lifetimes::default();
        LifetimesConfig {
            authorization_code: l.authorization_code,
            access_token: l.access_token,
            refresh_token: l.refresh_token,
            id_token: l.id_token,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        let k = KeySettings::default();
        KeysConfig {
            algorithms: k.algorithms.iter().map(|a| a.as_str().to_owned()).collect(),
            lifetime_days: k.lifetime / 86_400,
            publish_ahead_days: k.publish_ahead / 86_400,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        let l = crate::Limits::default();
        HttpConfig {
            max_body_bytes: l.max_body_bytes,
            max_uri_bytes: l.max_uri_bytes,
            max_header_bytes: l.max_header_bytes,
            request_timeout_secs: l.request_timeout.as_secs(),
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 4096,
            client_ip_header: String::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Config {
    /// Defaults < TOML file < environment (`env` is the process environment in production).
    pub fn load(file: Option<&Path>, env: Env) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                bail!("configuration file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        let cfg: Config = fig.merge(env).extract().context("invalid configuration")?;
        cfg.settings()?;
        Ok(cfg)
    }

    /// The `TESSERA_*` environment provider. `TESSERA_CONFIG` (the file) and
    /// `TESSERA_NEW_CLIENT_SECRET` (`client create --client-secret`) and `TESSERA_NEW_PASSWORD`
    /// (`user create|set-password --password`) are CLI inputs, not settings. Of the others, only
    /// those that could be settings ([`could_be_setting`]) are judged: a misspelt setting stops
    /// the start, naming it; a tool's own variable (`TESSERA_BIN`) is left alone.
    pub fn env() -> Env {
        Env::prefixed("TESSERA_")
            .split("__")
            .ignore(&["config", "new_client_secret", "new_password"])
            .filter(|key| could_be_setting(key.as_str()))
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        let algorithms = self
            .keys
            .algorithms
            .iter()
            .map(|a| {
                Alg::parse(a).with_context(|| {
                    format!("keys.algorithms: unknown algorithm {a:?} (RS256, PS256, ES256, EdDSA)")
                })
            })
            .collect::<anyhow::Result<Vec<Alg>>>()?;
        let l = &self.lifetimes;
        let mut settings = Settings::new(
            &self.issuer,
            Lifetimes {
                authorization_code: l.authorization_code,
                access_token: l.access_token,
                refresh_token: l.refresh_token,
                id_token: l.id_token,
            },
            KeySettings {
                algorithms,
                lifetime: self.keys.lifetime_days.saturating_mul(86_400),
                publish_ahead: self.keys.publish_ahead_days.saturating_mul(86_400),
            },
        )
        .map_err(anyhow::Error::msg)?;
        if self.http.max_uri_bytes < 2048 || self.http.max_header_bytes < 4096 {
            bail!(
                "http.max_uri_bytes must be at least 2048 and http.max_header_bytes at least 4096"
            );
        }
        tessera_core::settings::check_range(
            "clock_skew",
            self.clock_skew,
            tessera_core::settings::CLOCK_SKEW_RANGE,
        )
        .map_err(anyhow::Error::msg)?;
        settings.clock_skew = self.clock_skew;
        let si = &self.sign_in;
        if !(10..=600).contains(&si.pushed_request_lifetime) {
            bail!("sign_in.pushed_request_lifetime must be between 10 and 600 seconds");
        }
        if !(300..=30 * 86_400).contains(&si.session_lifetime) {
            bail!("sign_in.session_lifetime must be between 300 and 2592000 seconds");
        }
        if si.refresh_grace_secs.is_some() {
            bail!("sign_in.refresh_grace_secs was removed: the grace window for retried refresh tokens is now a setting of each confidential application (refresh_grace_secs, 0 by default)");
        }
        let h = &self.http;
        if h.header_read_timeout_secs == 0 || h.idle_timeout_secs == 0 || h.max_connections == 0 {
            bail!("http.header_read_timeout_secs, http.idle_timeout_secs and http.max_connections must be positive");
        }
        self.metrics.bearer_token()?;
        if si.max_failures_per_account < 1
            || si.max_failures_per_address < 1
            || si.max_failures_per_client < 1
            || si.failure_window_secs < 1
        {
            bail!("sign_in failure limits and window must be positive");
        }
        if !(1..=3650).contains(&self.admin.audit_retention_days) {
            bail!("admin.audit_retention_days must be between 1 and 3650");
        }
        settings.audit_retention = self.admin.audit_retention_days * 86_400;
        settings.audit_tokens = self.admin.audit_tokens;
        settings.session_lifetime = si.session_lifetime;
        settings.allow_private_addresses = self.outbound.allow_private_addresses;
        settings.pkce_plain = si.pkce_plain;
        settings.dpop_require_nonce = self.dpop.require_nonce;
        let r = &self.registration;
        settings.registration = tessera_core::settings::RegistrationSettings {
            enabled: r.enabled,
            open: r.open,
            grant_types: r
                .grant_types
                .iter()
                .map(|g| {
                    tessera_core::model::GrantType::parse(g).with_context(|| {
                        format!("registration.grant_types: unknown grant type {g:?}")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            scopes: r.scopes.clone(),
            software_statement_issuers: r.software_statement_issuers.clone(),
            require_software_statement: r.require_software_statement,
        };
        let tls = self.tls.server_config()?;
        if self.tls.client_certificates && tls.is_none() {
            bail!("tls.client_certificates needs tls.cert and tls.key");
        }
        let proxy = self.mtls.proxy()?;
        let base = self.mtls.endpoint_base.trim();
        settings.mtls = tessera_core::settings::MtlsSettings {
            enabled: self.tls.client_certificates || proxy.is_some(),
            trust_anchors: self.mtls.trust_anchors()?,
            endpoint_base: if base.is_empty() {
                None
            } else {
                let u = url::Url::parse(base).with_context(|| {
                    format!("mtls.endpoint_base {base:?} is not an absolute URL")
                })?;
                if u.scheme() != "https" || u.query().is_some() || u.fragment().is_some() {
                    bail!("mtls.endpoint_base must be an https URL without query or fragment");
                }
                Some(base.trim_end_matches('/').to_owned())
            },
        };
        settings.require_pushed_requests = si.require_pushed_authorization_requests;
        settings.pushed_request_lifetime = si.pushed_request_lifetime;
        settings.passkey_user_verification = si.passkey_user_verification;
        settings.throttle = Throttle {
            per_account: si.max_failures_per_account,
            per_address: si.max_failures_per_address,
            per_client: si.max_failures_per_client,
            window: si.failure_window_secs,
        };
        Ok(settings)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/tessera.db", self.data_dir.display()))
    }

    fn ensure_data_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// Creates the data directory when the database lives in it.
    pub fn prepare(&self) -> anyhow::Result<()> {
        if self.database_url.is_none() {
            self.ensure_data_dir()?;
        }
        Ok(())
    }

    /// The master key from `master_key`, `master_key_file`, or `<data_dir>/master.key` (generated
    /// with mode 0600 on first use).
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(text) = &self.master_key {
            return MasterKey::parse(text).context("master_key");
        }
        let (path, explicit) = match &self.master_key_file {
            Some(p) => (p.clone(), true),
            None => (self.data_dir.join("master.key"), false),
        };
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return MasterKey::parse(&text)
                .with_context(|| format!("master key file {}", path.display()));
        }
        if explicit {
            bail!("master_key_file {} does not exist", path.display());
        }
        if self
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
        {
            bail!("with a PostgreSQL database_url, set master_key or master_key_file: every node and CLI run must share one master key");
        }
        self.ensure_data_dir()?;
        let text = MasterKey::generate_text();
        write_private(&path, &text)?;
        tracing::warn!(path = %path.display(), "generated a new master key; back it up: without it, signing keys and client secrets cannot be decrypted");
        MasterKey::parse(&text).context("generated master key")
    }
}

/// The top-level names of the settings (sections and keys), as the configuration file spells them.
fn setting_names() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// How many single-character edits turn `a` into `b` (Levenshtein).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Whether a `TESSERA_` variable (its name after the prefix, lower case, sections joined by
/// `.`) could be a setting: its first part names a setting or section, is a few edits from one
/// (one for names of up to four letters, such as `log` or `http`, two for longer ones), or
/// starts with a section's name and `_` (a section joined with one underscore instead of two):
/// misspellings, which must be refused rather than silently ignored. Anything else
/// (`TESSERA_BIN`, `TESSERA_TAG`, a deployment tool's `TESSERA_DEPLOY_ENV`) is not Tessera's to
/// judge.
pub fn could_be_setting(key: &str) -> bool {
    let top = key.split('.').next().unwrap_or(key).to_ascii_lowercase();
    setting_names().iter().any(|name| {
        let near = if name.len() <= 4 { 1 } else { 2 };
        // `TESSERA_METRICS_TOKEN` for `TESSERA_METRICS__TOKEN`: one underscore too few.
        edits(&top, name) <= near || top.starts_with(&format!("{name}_"))
    })
}

/// Writes a file readable by its owner only (mode 0600), failing if it already exists.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

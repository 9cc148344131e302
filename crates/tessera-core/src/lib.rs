//! Tessera's protocol: OAuth 2.0 and OpenID Connect logic with no HTTP and no SQL (DESIGN §1).
//!
//! - [`provider`]: `Provider`, the one entry point, with its configuration caches
//! - [`grant`]: the token endpoint, one file per grant type
//! - [`authorize`]: the authorization endpoint, login and consent
//! - [`introspect`], [`revoke`], [`userinfo`], [`end_session`], [`discovery`]: the other endpoints
//! - [`user_grant`], [`session`]: grants (a user's authorization of a client) and SSO sessions
//! - [`id_token`], [`claims`], [`pkce`], [`password`], [`credentials`]: ID tokens, user claims,
//!   PKCE, passwords and their throttled checking
//! - [`client_auth`], [`client_assertion`]: client authentication methods
//! - [`assertion`], [`jwks`], [`outbound`]: JWTs and keys of other parties, fetched through the
//!   `Outbound` trait (the protocol never sees HTTP)
//! - [`token`]: JWT (RFC 9068) and opaque access tokens; [`artifact_cache`]: their per-node cache
//! - [`keys`]: signing keys, certificates, JWKS
//! - [`federation`]: upstream identity providers (OpenID Connect, OAuth 2.0), linked identities
//! - [`admin`]: the administrative use-cases behind the CLI, `apply`, API and Admin Portal;
//!   [`audit`]: the log of administrative changes and security events
//! - [`store`]: the `Store` trait, the only I/O boundary
//! - [`model`], [`settings`], [`params`], [`secret`], [`clock`], [`error`]: the vocabulary

/// The `tracing` target of the spans only traces want (store operations, outbound calls,
/// signatures), at `trace` level: nothing enables them unless traces are exported.
pub const TRACE_TARGET: &str = "tessera::trace";

pub mod account;
pub mod admin;
pub mod artifact_cache;
pub mod assertion;
pub mod audit;
pub mod audit_log;
pub mod authorize;
pub mod ciba;
pub mod claims;
pub mod client_assertion;
pub mod client_auth;
pub mod clock;
pub mod credentials;
pub mod decoupled;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod end_session;
pub mod error;
pub mod factor;
pub mod federation;
pub mod foreign_hash;
pub mod grant;
pub mod id_token;
pub mod introspect;
pub mod jwe;
pub mod jwks;
pub mod keys;
pub mod model;
pub mod mtls;
pub mod names;
pub mod outbound;
pub mod par;
pub mod params;
pub mod password;
pub mod pkce;
pub mod provider;
pub mod public_key;
pub mod registration;
pub mod request_object;
pub mod resource;
pub mod response_protection;
pub mod response_type;
pub mod revoke;
pub mod scheme;
pub mod secret;
pub mod session;
pub mod settings;
pub mod store;
pub mod throttle;
pub mod throttle_memo;
pub mod token;
pub mod uri;
pub mod usage;
pub mod user_factors;
pub mod user_grant;
pub mod userinfo;

pub use clock::{Clock, Timestamp};
pub use error::{Error, ErrorCode};
pub use provider::Provider;

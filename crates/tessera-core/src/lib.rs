//! Tessera's protocol: OAuth 2.0 and OpenID Connect logic with no HTTP and no SQL (DESIGN §1).
//!
//! - [`provider`]: `Provider`, the one entry point, with its configuration caches
//! - [`grant`]: the token endpoint, one file per grant type
//! - [`introspect`], [`revoke`], [`discovery`]: the other endpoints
//! - [`client_auth`]: client authentication methods
//! - [`token`]: JWT (RFC 9068) and opaque access tokens; [`artifact_cache`]: their per-node cache
//! - [`keys`]: signing keys, certificates, JWKS
//! - [`admin`]: the administrative use-cases behind the CLI, `apply`, API and Admin Portal
//! - [`store`]: the `Store` trait, the only I/O boundary
//! - [`model`], [`settings`], [`params`], [`secret`], [`clock`], [`error`]: the vocabulary

pub mod admin;
pub mod artifact_cache;
pub mod client_auth;
pub mod clock;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod introspect;
pub mod keys;
pub mod model;
pub mod params;
pub mod provider;
pub mod revoke;
pub mod secret;
pub mod settings;
pub mod store;
pub mod token;

pub use clock::{Clock, Timestamp};
pub use error::{Error, ErrorCode};
pub use provider::Provider;

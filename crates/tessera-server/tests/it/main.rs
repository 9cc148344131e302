//! Tessera's one integration-test binary: every flow through `app()` on in-memory SQLite, and the
//! `tessera` binary itself as a real process.

// Test helpers outside #[test] functions: a failed expectation is the test failing.
#![allow(clippy::expect_used)]

mod flow;
mod peers;
mod process;
mod support;

mod admin_access;
mod admin_api;
mod assertions;
mod authz;
mod browser;
mod ciba;
mod cli;
mod client_credentials;
mod cluster;
mod config;
mod dashboard;
mod device;
mod discovery;
mod dpop;
mod errors;
mod export;
mod faults;
mod federation;
mod introspect_revoke;
mod keys;
mod logo;
mod logout;
mod mfa;
mod migration;
mod mtls;
mod observability;
mod oidc_rp;
mod operations;
mod ops;
mod par;
mod policies;
mod refresh_tokens;
mod registration;
mod request_objects;
mod response_protection;
mod saml;
mod sign_in;
mod takeover;
mod token_exchange;
mod user_tokens;

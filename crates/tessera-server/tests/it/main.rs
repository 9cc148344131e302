//! Tessera's one integration-test binary: every flow through `app()` on in-memory SQLite, and the
//! `tessera` binary itself as a real process.

// Test helpers outside #[test] functions: a failed expectation is the test failing.
#![allow(clippy::expect_used)]

mod process;
mod support;

mod cli;
mod client_credentials;
mod cluster;
mod config;
mod discovery;
mod errors;
mod faults;
mod introspect_revoke;
mod keys;
mod ops;

//! The `Authorization: Basic` header and the client credentials in the form (RFC 6749 §2.3.1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::client_auth::parse_basic;

fuzz_target!(|header: &str| {
    let _ = parse_basic(header);
});

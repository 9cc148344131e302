//! Form parameters (RFC 6749 §3.2) and the token request built from them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::grant::TokenRequest;
use tessera_core::params::{parse_scope, Params};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Params::parse(data) {
        let _ = TokenRequest::parse(&p);
        let _ = p.all("resource");
        if let Ok(Some(scope)) = p.get("scope") {
            let _ = parse_scope(scope);
        }
    }
});

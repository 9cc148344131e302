//! Parsers of foreign input added with sign-in and client assertions: compact JWS headers and
//! claims of assertions and subject tokens, time checks, PKCE challenges, response types.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::admin::canonical_response_type;
use tessera_core::assertion::peek;
use tessera_core::pkce;

fuzz_target!(|input: &str| {
    if let Some((_, claims)) = peek(input) {
        let _ = claims["exp"].as_i64();
    }
    let _ = canonical_response_type(input);
    let (challenge, method) = input.split_once(' ').unwrap_or((input, "S256"));
    let _ = pkce::parse_challenge(Some(challenge), Some(method), true);
    let _ = pkce::verify(challenge, method, input);
});

//! Presented opaque handles, master keys, base64url.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::secret::{b64url_decode, handle_key, MasterKey};

fuzz_target!(|text: &str| {
    let _ = handle_key(text);
    let _ = MasterKey::parse(text);
    let _ = b64url_decode(text);
});

//! The `tessera apply` YAML file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = tessera_server::cli::apply::parse_spec(text);
});

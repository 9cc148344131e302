//! Configuration: `config.example.toml` documents every setting and parses; bad settings are refused.

use std::path::PathBuf;

use figment::providers::Env;
use tessera_server::config::Config;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config.example.toml")
}

/// An environment provider that reads nothing (these tests must not depend on the process env).
fn no_env() -> Env {
    Env::prefixed("TESSERA_TEST_UNSET_PREFIX_")
}

#[test]
fn the_example_parses_and_matches_the_defaults() {
    let cfg = Config::load(Some(&example()), no_env()).expect("config.example.toml parses");
    assert_eq!(cfg, Config::default(), "the example documents the defaults");
    let text = std::fs::read_to_string(example()).expect("read");
    for key in [
        "issuer",
        "listen",
        "data_dir",
        "database_url",
        "master_key_file",
        "clock_skew",
        "access_token",
        "algorithms",
        "max_body_bytes",
        "format",
    ] {
        assert!(text.contains(key), "config.example.toml documents {key}");
    }
}

#[test]
fn invalid_settings_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |body: &str| {
        let p = dir.path().join("c.toml");
        std::fs::write(&p, body).expect("write");
        p
    };
    let unknown = Config::load(Some(&write("isuer = \"https://x\"\n")), no_env());
    assert!(format!("{:#}", unknown.unwrap_err()).contains("isuer"));
    let http = Config::load(
        Some(&write("issuer = \"http://id.example.com\"\n")),
        no_env(),
    );
    assert!(format!("{:#}", http.unwrap_err()).contains("https"));
    let ttl = Config::load(Some(&write("[lifetimes]\naccess_token = 5\n")), no_env());
    assert!(format!("{:#}", ttl.unwrap_err()).contains("access_token"));
    let alg = Config::load(Some(&write("[keys]\nalgorithms = [\"none\"]\n")), no_env());
    assert!(format!("{:#}", alg.unwrap_err()).contains("none"));
    let skew = Config::load(Some(&write("clock_skew = 601\n")), no_env());
    assert!(format!("{:#}", skew.unwrap_err()).contains("clock_skew"));
    assert!(Config::load(Some(&dir.path().join("missing.toml")), no_env()).is_err());
}

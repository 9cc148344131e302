//! Imported password hashes, made by the other systems' own libraries (`password_hashes.json`:
//! bcrypt, passlib, Django, Werkzeug, argon2-cffi, and Keycloak's credential JSON): each one is
//! read into its stored form, verifies its password and no other, and is due for rehashing;
//! what cannot be read is refused with the reason.

#![allow(clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tessera_core::foreign_hash::from_keycloak;
use tessera_core::password::{hash, needs_rehash, stored_form, verify};

fn vectors() -> Vec<Value> {
    let doc: Value =
        serde_json::from_str(include_str!("password_hashes.json")).expect("the vectors are JSON");
    doc["vectors"].as_array().expect("vectors").clone()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} of {v}"))
}

#[test]
fn every_format_verifies_its_password_and_no_other() {
    let all = vectors();
    assert_eq!(all.len(), 50);
    let mut formats = std::collections::BTreeSet::new();
    for v in &all {
        let id = text(v, "id");
        let stored = match v.get("hash") {
            Some(h) => stored_form(h.as_str().expect("hash")),
            None => from_keycloak(text(v, "secretData"), text(v, "credentialData"))
                .and_then(|h| stored_form(&h)),
        }
        .unwrap_or_else(|why| panic!("{id} was refused: {why}"));
        assert!(verify(&stored, text(v, "password")), "{id}: {stored}");
        assert!(!verify(&stored, text(v, "wrong_password")), "{id}");
        assert!(needs_rehash(&stored), "{id}: imported hashes are replaced");
        // The stored form reads back to itself.
        assert_eq!(stored_form(&stored).as_deref(), Ok(stored.as_str()), "{id}");
        formats.insert(text(v, "format").to_owned());
    }
    for f in [
        "bcrypt-2a",
        "bcrypt-2b",
        "bcrypt-2y",
        "django-bcrypt_sha256",
        "django-pbkdf2_sha256",
        "passlib-pbkdf2_sha512",
        "rustcrypto-phc-pbkdf2-sha256",
        "werkzeug-pbkdf2-sha256",
        "passlib-scrypt",
        "django-scrypt",
        "werkzeug-scrypt",
        "argon2i-phc",
        "argon2i-phc-noversion",
        "django-argon2",
        "keycloak-pbkdf2-sha512",
        "keycloak-argon2",
    ] {
        assert!(formats.contains(f), "no vector of {f}");
    }
}

/// bcrypt reads only the first 72 bytes, as every bcrypt the hashes came from did.
#[test]
fn bcrypt_compares_the_first_72_bytes_like_its_makers() {
    let long = vectors()
        .into_iter()
        .find(|v| v["id"] == "bcrypt-2b-long-1")
        .expect("the long vector");
    let stored = stored_form(text(&long, "hash")).expect("bcrypt");
    let password = text(&long, "password");
    assert!(verify(
        &stored,
        &format!("{}anything after", &password[..72])
    ));
    assert!(!verify(&stored, &password[..71]));
}

#[test]
fn tesseras_own_hash_is_not_rehashed() {
    let own = hash("correct horse battery").expect("hash");
    assert!(!needs_rehash(&own));
    assert_eq!(stored_form(&own).as_deref(), Ok(own.as_str()));
    // argon2id at another cost is replaced by Tessera's.
    let cheaper = own.replace("m=19456", "m=8192");
    assert!(needs_rehash(&cheaper));
}

#[test]
fn unreadable_hashes_are_refused_with_the_reason() {
    let long = "A".repeat(171);
    let cases: Vec<(String, &str)> = [
        ("$1$saltsalt$hash", "not a hash Tessera reads"),
        ("md5$abc$def", "not a hash Tessera reads"),
        ("{SSHA}abcdef", "not a hash Tessera reads"),
        (
            "$2x$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "$2x$",
        ),
        (
            "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "cost 31",
        ),
        (
            "$2b$14$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "cost 14",
        ),
        ("$2b$10$short", "not a bcrypt hash"),
        ("pbkdf2_sha256$999999999$salt$aGFzaGhhc2g=", "iterations"),
        ("pbkdf2_md5$1000$salt$aGFzaGhhc2g=", "digest"),
        ("pbkdf2_sha256$1000$salt$not base64!", "base64"),
        ("pbkdf2:sha256$salt$abcd", "iteration count"),
        ("pbkdf2:sha256:1000$salt$xyz", "hexadecimal"),
        (
            "$pbkdf2$5000000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "iterations",
        ),
        ("$pbkdf2-sha256$1000$c2FsdA$aGFzaA", "hash of 8 to 128"),
        (
            "$scrypt$ln=24,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "64 MiB",
        ),
        (
            "$scrypt$ln=18,r=8,p=16$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "more than Tessera",
        ),
        (
            "$scrypt$ln=10,r=8,p=99999$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "more than Tessera",
        ),
        (
            "$scrypt$ln=30,r=134217728,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "more than Tessera",
        ),
        (
            "$scrypt$ln=17,r=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "cannot be computed",
        ),
        (
            "$scrypt$ln=10,r=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "ln, r and p",
        ),
        ("scrypt$1000$salt$8$1$aGFzaGhhc2g=", "power of two"),
        (
            "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "128 MiB",
        ),
        (
            "$argon2id$v=19$m=131072,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "128 MiB",
        ),
        (
            "$argon2id$v=99$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "version",
        ),
    ]
    .into_iter()
    .map(|(i, r)| (i.to_owned(), r))
    .chain([
        (
            format!("$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ${long}"),
            "hash of 10 to 64",
        ),
        (
            format!("$pbkdf2-sha256$1000000$c2FsdHNhbHQ${long}"),
            "iterations",
        ),
    ])
    .collect();
    for (input, reason) in &cases {
        let why = stored_form(input).expect_err(input);
        assert!(why.contains(reason), "{input}: {why}");
    }
    for (secret, credential, reason) in [
        (
            r#"{"value":"aGFzaGhhc2g=","salt":"c2FsdA=="}"#,
            r#"{"hashIterations":1,"algorithm":"md5-custom"}"#,
            "md5-custom",
        ),
        (
            r#"{"value":"aGFzaGhhc2g="}"#,
            r#"{"algorithm":"pbkdf2-sha256"}"#,
            "hashIterations",
        ),
        (
            "not json",
            r#"{"hashIterations":1,"algorithm":"pbkdf2"}"#,
            "secretData",
        ),
    ] {
        let why = from_keycloak(secret, credential).expect_err(credential);
        assert!(why.contains(reason), "{credential}: {why}");
    }
}

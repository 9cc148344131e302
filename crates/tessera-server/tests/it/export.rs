//! `tessera export` and drift: an export of a store that uses every setting applies back
//! unchanged (to the same store, and to a fresh one where it makes the same export), secrets stay
//! behind as a placeholder apply keeps, and `apply --dry-run --exit-code` exits 2 on drift.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::process::{cli, cli_env, json as json_out, stdout, tessera};

/// An EC P-256 public key (RFC 7517 appendix A.1) for encryption to the application.
fn enc_jwks() -> Value {
    json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "enc", "kid": "app-enc",
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]})
}

/// A file that sets every client setting somewhere (`kid`: a signing key to pin to).
fn every_setting(kid: &str) -> Value {
    let mtls = [
        ("tls_client_auth_subject_dn", "CN=billing,O=Example"),
        ("tls_client_auth_san_dns", "billing.example.com"),
        ("tls_client_auth_san_uri", "https://billing.example.com/id"),
        ("tls_client_auth_san_ip", "192.0.2.7"),
        ("tls_client_auth_san_email", "billing@example.com"),
    ];
    let [browser, protection] = [
        json!({
            "client_id": "web-full", "client_secret": "web-full-secret-0123456789",
            "name": "Web with everything", "description": "Every browser setting",
            "type": "web", "grant_types": ["authorization_code", "refresh_token", "password"],
            "scopes": ["read:things"], "apis": ["https://api.example.com"],
            "token_format": "opaque", "signing_alg": "ES256", "auth_method": "client_secret_post",
            "access_token_ttl": 600, "introspection_allowed": false,
            "introspect_any_token": false, "refresh_grace_secs": 30, "oauth_policy": "2.0",
            "signing_kid": kid, "dpop_bound_access_tokens": true, "enabled": false,
            "redirect_uris": ["https://web.example.com/cb"],
            "post_logout_redirect_uris": ["https://web.example.com/"],
            "allowed_origins": ["https://web.example.com"],
            "response_types": ["code", "code id_token"], "pkce_required": true,
            "require_pushed_authorization_requests": true,
            "require_signed_request_object": true,
            "request_uris": ["https://web.example.com/request.jwt"], "consent": "auto-accept",
            "subject_attribute": "employee_id", "subject_type": "pairwise",
            "id_token_alg": "ES256", "id_token_ttl": 300, "code_ttl": 30,
            "refresh_token_ttl": 172800, "additional_audiences": ["https://other.example.com"],
            "allowed_groups": ["staff"],
            "frontchannel_logout_uri": "https://web.example.com/fc",
            "backchannel_logout_uri": "https://web.example.com/bc",
            "authentication_scheme": "corp-sso", "jwks": enc_jwks(),
        }),
        json!({
            "id_token_encrypted_response_alg": "ECDH-ES",
            "id_token_encrypted_response_enc": "A256GCM",
            "userinfo_signed_response_alg": "ES256",
            "userinfo_encrypted_response_alg": "ECDH-ES+A128KW",
            "userinfo_encrypted_response_enc": "A128GCM",
            "introspection_encrypted_response_alg": "ECDH-ES",
            "introspection_encrypted_response_enc": "A128CBC-HS256",
            "authorization_signed_response_alg": "ES256",
            "authorization_encrypted_response_alg": "ECDH-ES",
            "authorization_encrypted_response_enc": "A256GCM",
        }),
    ];
    let mut web = browser;
    web.as_object_mut()
        .expect("object")
        .extend(protection.as_object().expect("object").clone());
    let mut clients = vec![
        web,
        json!({
            "client_id": "https://api.example.com", "name": "Things backend", "type": "m2m",
            "auth_method": "private_key_jwt",
            "jwks_uri": "https://backend.example.com/jwks.json",
            "grant_types": ["client_credentials", "jwt_bearer", "token_exchange"],
            "trusted_issuers": [{"issuer": "https://idp.partner.example",
                                 "jwks_uri": "https://idp.partner.example/jwks"}],
            "impersonation_allowed": true,
            "exchange_policy_url": "https://policy.example.com/exchange",
            "jwt_bearer_subject": "user", "exchange_identity_providers": ["corp"],
        }),
        json!({
            "client_id": "ciba-app", "name": "Call centre", "type": "web",
            "grant_types": ["ciba"], "profile": "fapi2",
            "auth_method": "private_key_jwt", "jwks_uri": "https://ciba.example.com/jwks",
            "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": "https://ciba.example.com/notify",
        }),
    ];
    for (i, (field, value)) in mtls.iter().enumerate() {
        clients.push(json!({
            "client_id": format!("mtls-{i}"), "name": format!("Certificate {i}"), "type": "m2m",
            "auth_method": "tls_client_auth", (*field): value,
            "tls_client_certificate_bound_access_tokens": i == 0,
        }));
    }
    json!({
        "scopes": [{"name": "read:things", "display_name": "Read things",
                    "description": "Read access", "default": true, "discoverable": false,
                    "claims": {"department": "department"}}],
        "apis": [{"identifier": "https://api.example.com", "name": "Things",
                  "scopes": ["read:things"]}],
        "identity_providers": [{"name": "corp", "issuer": "https://login.corp.example.com",
                                "client_id": "tessera", "client_secret": "upstream secret 1",
                                "domains": ["corp.example.com"],
                                "mappings": [{"claim": "email", "to": "email"}],
                                "link_by_email": true}],
        "schemes": [{"name": "corp-sso", "methods": [["upstream"]], "acr": "urn:corp",
                     "identity_providers": ["corp"]}],
        "clients": clients,
    })
}

/// A CA certificate for `mtls.client_ca_file` (tls_client_auth needs one configured).
fn client_ca(dir: &Path) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).expect("ca");
    let path = dir.join("clients-ca.pem");
    std::fs::write(&path, ca.pem()).expect("write CA");
    path.to_str().expect("path").to_owned()
}

fn write_yaml(path: &Path, v: &Value) {
    std::fs::write(path, serde_norway::to_string(v).expect("yaml")).expect("write");
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    tessera()
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run tessera")
}

/// The export, without its comment line (which names the configuration version).
fn export(dir: &Path, env: &[(&str, &str)]) -> Value {
    let text = stdout(&cli_env(dir, &["export"], env));
    serde_norway::from_str(&text).expect("the export is YAML")
}

#[test]
fn export_applies_back_unchanged_with_every_setting() {
    let a = tempfile::tempdir().expect("tempdir");
    let ca = client_ca(a.path());
    let env = [
        ("TESSERA_MTLS__CLIENT_CA_FILE", ca.as_str()),
        ("TESSERA_MTLS__PROXY_HEADER", "x-client-cert"),
        ("TESSERA_MTLS__TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
    ];
    let kid = json_out(&cli_env(
        a.path(),
        &["key", "generate", "--alg", "ES256", "--output", "json"],
        &env,
    ))["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let file = a.path().join("every.yaml");
    write_yaml(&file, &every_setting(&kid));
    cli_env(
        a.path(),
        &["apply", "-f", file.to_str().expect("path")],
        &env,
    );

    let exported = export(a.path(), &env);
    // Every setting of an application is written out somewhere: a new one fails here until
    // the export carries it (and the file above sets it).
    let schema = serde_json::to_value(schemars::schema_for!(tessera_core::admin::ClientSpec))
        .expect("schema");
    let settings: BTreeSet<&str> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    let written: BTreeSet<&str> = exported["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .flat_map(|c| c.as_object().expect("client").keys().map(String::as_str))
        .collect();
    let missing: Vec<_> = settings.difference(&written).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
    let text = serde_json::to_string(&exported).expect("json");
    for secret in ["web-full-secret-0123456789", "upstream secret 1"] {
        assert!(!text.contains(secret), "a secret was exported");
    }
    assert_eq!(exported["clients"][0]["client_id"], "ciba-app");
    let web = exported["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["client_id"] == "web-full")
        .expect("web-full");
    assert_eq!(web["client_secret"], tessera_core::admin::SECRET_KEPT);
    assert_eq!(
        exported["identity_providers"][0]["client_secret"],
        tessera_core::admin::SECRET_KEPT
    );
    for builtin in ["tessera-admin-portal", "tessera-account"] {
        assert!(!text.contains(builtin), "{builtin} is Tessera's own");
    }

    // The same store: nothing to do, and the drift check says so with status 0.
    let out_file = a.path().join("exported.yaml");
    let out = out_file.to_str().expect("path");
    cli_env(a.path(), &["export", "-f", out], &env);
    let dry = stdout(&cli_env(
        a.path(),
        &["apply", "-f", out, "--dry-run", "--exit-code"],
        &env,
    ));
    assert!(dry.contains("0 change(s) planned"), "{dry}");
    assert!(!dry.contains("update") && !dry.contains("create"), "{dry}");
    // Nor does a prune touch Tessera's own portal, account page, admin API and its scopes.
    let pruned = stdout(&cli_env(
        a.path(),
        &["apply", "-f", out, "--dry-run", "--prune", "--exit-code"],
        &env,
    ));
    assert!(pruned.contains("0 change(s) planned"), "{pruned}");

    // Drift: a change made elsewhere exits 2 and names the place.
    cli_env(
        a.path(),
        &["client", "update", "web-full", "--name", "Renamed"],
        &env,
    );
    let drift = run(
        a.path(),
        &env,
        &["apply", "-f", out, "--dry-run", "--exit-code"],
    );
    assert_eq!(drift.status.code(), Some(2), "{drift:?}");
    assert!(stdout(&drift).contains("update     client  web-full"));
    assert!(String::from_utf8_lossy(&drift.stderr).contains("drift"));
    // --exit-code only means something with --dry-run.
    let refused = run(a.path(), &env, &["apply", "-f", out, "--exit-code"]);
    assert_eq!(refused.status.code(), Some(1), "an error, not drift");
    // A mistyped flag is an error too (status 1), never read as drift.
    let typo = run(
        a.path(),
        &env,
        &["apply", "-f", out, "--dry-run", "--exit-code", "--prnue"],
    );
    assert_eq!(typo.status.code(), Some(1), "{typo:?}");
    assert_eq!(run(a.path(), &env, &["--help"]).status.code(), Some(0));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--dry-run"));

    // A fresh store: the placeholder has no stored secret to keep, and says so.
    let b = tempfile::tempdir().expect("tempdir");
    let ca_b = client_ca(b.path());
    let env_b = [
        ("TESSERA_MTLS__CLIENT_CA_FILE", ca_b.as_str()),
        ("TESSERA_MTLS__PROXY_HEADER", "x-client-cert"),
        ("TESSERA_MTLS__TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
    ];
    let kid_b = json_out(&cli_env(
        b.path(),
        &["key", "generate", "--alg", "ES256", "--output", "json"],
        &env_b,
    ))["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let moved = b.path().join("moved.yaml");
    std::fs::copy(&out_file, &moved).expect("copy");
    let placeholder = run(
        b.path(),
        &env_b,
        &["apply", "-f", moved.to_str().expect("path")],
    );
    assert!(!placeholder.status.success());
    let why = String::from_utf8_lossy(&placeholder.stderr);
    assert!(why.contains("placeholder"), "{why}");
    // With the secrets given and the key of the new store pinned, it applies, and exports
    // exactly as the first store did.
    let mut given = exported.clone();
    for c in given["clients"].as_array_mut().expect("clients") {
        if c["client_secret"] == tessera_core::admin::SECRET_KEPT {
            c["client_secret"] = json!(format!("{}-secret-0123456789", c["client_id"]));
        }
        if c["signing_kid"] == kid.as_str() {
            c["signing_kid"] = json!(kid_b);
        }
    }
    given["identity_providers"][0]["client_secret"] = json!("upstream secret 1");
    write_yaml(&moved, &given);
    cli_env(
        b.path(),
        &["apply", "-f", moved.to_str().expect("path")],
        &env_b,
    );
    let mut again = export(b.path(), &env_b);
    for c in again["clients"].as_array_mut().expect("clients") {
        if c["signing_kid"] == kid_b.as_str() {
            c["signing_kid"] = json!(kid);
        }
    }
    assert_eq!(again, exported);
    // The export of a store at rest reads one configuration version.
    let header = stdout(&cli(b.path(), &["export"]));
    assert!(
        header.starts_with("# tessera export at configuration version "),
        "{header}"
    );
}

/// A prune keeps the scheme the Admin Portal signs in with (and its identity providers), as it
/// keeps the Portal itself: administrators never lose their second factor to a stale file.
#[test]
fn a_prune_keeps_what_the_portal_signs_in_with() {
    let d = tempfile::tempdir().expect("tempdir");
    let d = d.path();
    // The first administrator: the admin API and the Portal's client are made with them.
    cli_env(
        d,
        &["admin", "create", "--username", "root"],
        &[("TESSERA_NEW_PASSWORD", "correct horse battery")],
    );
    cli(
        d,
        &[
            "scheme",
            "create",
            "mfa",
            "--methods",
            "password+totp",
            "--acr",
            "urn:example:mfa",
        ],
    );
    cli(
        d,
        &[
            "client",
            "update",
            "tessera-admin-portal",
            "--authentication-scheme",
            "mfa",
        ],
    );
    let empty = d.join("empty.yaml");
    std::fs::write(&empty, "{}\n").expect("write");
    let empty = empty.to_str().expect("path");
    let plan = stdout(&cli(d, &["apply", "-f", empty, "--prune"]));
    assert!(!plan.contains("scheme"), "{plan}");
    let shown = json_out(&cli(d, &["scheme", "list", "--output", "json"]));
    assert!(shown.to_string().contains("urn:example:mfa"), "{shown}");
}

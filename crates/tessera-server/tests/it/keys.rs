//! Signing keys: the published JWKS, windows that hand over without overlap, retirement that keeps
//! verifying what the retired key signed.

use serde_json::json;
use tessera_core::admin::KeyWindow;
use tessera_core::model::{Alg, TokenFormat};
use tessera_core::secret::{b64url, sha256};

use crate::support::Harness;

#[tokio::test]
async fn jwks_publishes_public_parts_with_certificates() {
    let h = Harness::new().await;
    let r = h.get("/jwks").await;
    assert_eq!(r.status, http::StatusCode::OK);
    let all = r.json["keys"].as_array().expect("keys").clone();
    // Tessera's encryption key (RFC 9101 §6.1) comes with its ES256 key: P-256, use enc.
    let (enc, keys): (Vec<_>, Vec<_>) = all.into_iter().partition(|k| k["use"] == "enc");
    assert_eq!(keys.len(), 4, "one key per algorithm at first start");
    assert_eq!(enc.len(), 1, "one encryption key");
    assert_eq!(
        (&enc[0]["kty"], &enc[0]["crv"]),
        (&json!("EC"), &json!("P-256"))
    );
    assert!(enc[0].get("d").is_none() && enc[0].get("alg").is_none());
    assert!(keys.iter().all(|k| k["kid"] != enc[0]["kid"]));
    for k in &keys {
        for member in ["kid", "kty", "alg", "use", "x5c", "x5t#S256"] {
            assert!(!k[member].is_null(), "{member} in {k}");
        }
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "no private member {private}");
        }
        assert_eq!(k["use"], "sig");
        let der = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            k["x5c"][0].as_str().expect("x5c"),
        )
        .expect("der");
        assert_eq!(k["x5t#S256"], b64url(&sha256(&der)));
    }
    let mut algs: Vec<&str> = keys
        .iter()
        .map(|k| k["alg"].as_str().expect("alg"))
        .collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "PS256", "RS256"]);
}

#[tokio::test]
async fn a_scheduled_key_takes_over_at_its_not_before() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let now = h.provider.now();
    let next = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .generate_key(
            Alg::ES256,
            KeyWindow {
                not_before: Some(now.plus(100)),
                not_after: None,
            },
        )
        .await
        .expect("generate");
    let kid = |t: &serde_json::Value| {
        jsonwebtoken::decode_header(t["access_token"].as_str().expect("t"))
            .expect("h")
            .kid
            .expect("kid")
    };
    let before = h.token(&c, "").await;
    assert_ne!(
        kid(&before),
        next.kid,
        "the current key signs until the next one's not_before"
    );
    assert!(
        h.get("/jwks").await.json["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["kid"] == next.kid.as_str()),
        "published ahead of use"
    );

    h.clock.advance(100);
    let after = h.token(&c, "").await;
    assert_eq!(kid(&after), next.kid);
    assert_eq!(
        h.introspect(&c, before["access_token"].as_str().expect("t"))
            .await["active"],
        true,
        "old tokens still verify"
    );

    let overlapping = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .generate_key(
            Alg::ES256,
            KeyWindow {
                not_before: Some(now.plus(50)),
                not_after: Some(now.plus(200)),
            },
        )
        .await;
    assert!(
        overlapping.is_err(),
        "a window that starts before a later key's is a conflict"
    );
}

#[tokio::test]
async fn retiring_a_key_rotates_and_keeps_it_published() {
    let h = Harness::new().await;
    let c = h.client(Alg::RS256, TokenFormat::Jwt).await;
    let t = h.access_token(&c).await;
    let old = jsonwebtoken::decode_header(&t)
        .expect("header")
        .kid
        .expect("kid");
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .retire_key(&old)
        .await
        .expect("retire");
    let t2 = h.access_token(&c).await;
    assert_ne!(
        jsonwebtoken::decode_header(&t2)
            .expect("header")
            .kid
            .expect("kid"),
        old,
        "a new signer was generated"
    );
    assert_eq!(
        h.introspect(&c, &t).await["active"],
        true,
        "tokens of the retired key still verify"
    );
    let published = |j: &serde_json::Value| {
        j["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["kid"] == old.as_str())
    };
    assert!(published(&h.get("/jwks").await.json));
    h.clock.advance(86_400 + 301);
    h.provider.sync().await.expect("sync");
    assert!(
        !published(&h.get("/jwks").await.json),
        "dropped once every token it signed has expired"
    );
    let provider = h.provider.clone();
    let stored = |kid: String| {
        let provider = provider.clone();
        async move {
            provider
                .admin(tessera_core::admin::Caller::local())
                .keys()
                .await
                .expect("keys")
                .iter()
                .any(|k| k.kid == kid)
        }
    };
    assert!(
        stored(old.clone()).await,
        "its record still verifies expired ID tokens given as id_token_hint"
    );
    h.clock.advance(30 * 86_400);
    h.provider.sync().await.expect("sync");
    assert!(
        !stored(old.clone()).await,
        "deleted after the longest session"
    );
    assert!(h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .retire_key("no-such-kid")
        .await
        .is_err());
}

#[tokio::test]
async fn retiring_a_key_hands_over_to_its_published_successor() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let keys = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .keys()
        .await
        .expect("keys");
    let current = keys
        .iter()
        .find(|k| k.alg == Alg::ES256)
        .expect("ES256")
        .clone();
    let next = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .generate_key(
            Alg::ES256,
            KeyWindow {
                not_before: Some(current.not_after),
                not_after: None,
            },
        )
        .await
        .expect("successor");
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .retire_key(&current.kid)
        .await
        .expect("retire");
    let t = h.token(&c, "").await;
    let kid = jsonwebtoken::decode_header(t["access_token"].as_str().expect("t"))
        .expect("h")
        .kid
        .expect("kid");
    assert_eq!(kid, next.kid, "the successor signs at once");
}

/// DESIGN §3 key rotation without an operator: the successor is published `publish_ahead` (7 days)
/// before the current key's 90 days end, signs from that end, and the old key stays published
/// until every token it signed has expired; a token signed a second before the hand-over verifies.
#[tokio::test]
async fn keys_rotate_by_themselves_and_no_token_fails_verification() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let kid = |t: &str| {
        jsonwebtoken::decode_header(t)
            .expect("header")
            .kid
            .expect("kid")
    };
    // Signing keys (`use: sig`) or Tessera's encryption keys (`use: enc`).
    let hr = &h;
    let jwks_kids_of = move |usage: &'static str| async move {
        hr.get("/jwks").await.json["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter(|k| k["use"] == usage)
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect::<Vec<_>>()
    };
    let jwks_kids = || jwks_kids_of("sig");
    let first = h.access_token(&c).await;
    let k1 = kid(&first);
    let end = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .keys()
        .await
        .expect("keys")
        .into_iter()
        .find(|k| k.kid == k1)
        .expect("k1")
        .not_after;
    let now = h.provider.now();
    assert_eq!(end.0 - now.0, 90 * 86_400, "the configured lifetime");

    h.clock.advance(end.0 - now.0 - 7 * 86_400 - 1);
    h.provider.sync().await.expect("sync");
    let before = jwks_kids().await;
    assert_eq!(before.len(), 4, "nothing due yet");
    h.clock.advance(1);
    h.provider.sync().await.expect("sync");
    let published = jwks_kids().await;
    let new: Vec<&String> = published.iter().filter(|k| !before.contains(k)).collect();
    assert_eq!(
        new.len(),
        4,
        "a successor per algorithm, published a week ahead"
    );
    assert_eq!(
        jwks_kids_of("enc").await.len(),
        2,
        "the encryption key of the ES256 successor with it"
    );
    let k2 = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .keys()
        .await
        .expect("keys")
        .into_iter()
        .find(|k| k.alg == Alg::ES256 && k.not_before == end)
        .expect("the ES256 successor starts at the current key's end")
        .kid;
    assert!(published.contains(&k2));
    assert_eq!(
        kid(&h.access_token(&c).await),
        k1,
        "the current key still signs"
    );

    h.clock.advance(7 * 86_400 - 1);
    h.provider.sync().await.expect("sync");
    let last_of_k1 = h.access_token(&c).await;
    assert_eq!(kid(&last_of_k1), k1);
    h.clock.advance(1);
    h.provider.sync().await.expect("sync");
    let first_of_k2 = h.access_token(&c).await;
    assert_eq!(
        kid(&first_of_k2),
        k2,
        "the successor signs from the old key's end"
    );
    for t in [&first_of_k2, &last_of_k1] {
        assert_eq!(h.introspect(&c, t).await["active"], true);
    }
    assert!(
        jwks_kids().await.contains(&k1),
        "the old key is still published"
    );
    let jwks = h.get("/jwks").await.json;
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == k1.as_str())
        .expect("k1 published")
        .clone();
    let key = jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk).expect("jwk"))
        .expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(&last_of_k1, &key, &v)
        .expect("the last token of the old key verifies against the published JWKS");

    h.clock.advance(86_400 + 300);
    h.provider.sync().await.expect("sync");
    assert!(
        !jwks_kids().await.contains(&k1),
        "gone once its tokens have expired"
    );
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_at_start() {
    use std::sync::Arc;
    use tessera_core::secret::MasterKey;
    use tessera_core::settings::{KeySettings, Lifetimes, Settings};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let settings = Settings::new(
        crate::support::ISSUER,
        Lifetimes::default(),
        KeySettings::default(),
    )
    .expect("settings");
    let start = |key: &str| {
        let (url, settings, key) = (url.clone(), settings.clone(), key.to_owned());
        async move {
            let store = tessera_store::connect(&url).await.expect("store");
            tessera_core::Provider::new(
                settings,
                store,
                MasterKey::parse(&key).expect("key"),
                tessera_core::Clock::System,
            )
            .await
            .map(Arc::new)
        }
    };
    let first = start(&"11".repeat(32))
        .await
        .expect("first start generates keys");
    let keys_before = first
        .admin(tessera_core::admin::Caller::local())
        .keys()
        .await
        .expect("keys")
        .len();
    let err = start(&"22".repeat(32))
        .await
        .expect_err("another master key");
    assert!(err.to_string().contains("master key"), "{err}");
    assert_eq!(
        first
            .admin(tessera_core::admin::Caller::local())
            .keys()
            .await
            .expect("keys")
            .len(),
        keys_before,
        "nothing was generated or cut"
    );
}

/// Seed 000 "Certificate": an application pinned to one key is signed with it within its window,
/// and not with the successor that takes over for everyone else; a pin that cannot work is
/// refused when it is saved.
#[tokio::test]
async fn an_application_pinned_to_a_key_is_signed_with_that_key_only() {
    let h = Harness::new().await;
    let admin = h.provider.admin(tessera_core::admin::Caller::local());
    let keys = admin.keys().await.expect("keys");
    let current = |alg: Alg| keys.iter().find(|k| k.alg == alg).expect("a key").clone();
    let k1 = current(Alg::ES256);
    // A machine-to-machine application: its ID token algorithm (it has none) does not matter.
    let spec = |name: &str, kid: Option<&str>| {
        let mut s = Harness::spec(name);
        s.signing_alg = Some(tessera_core::model::JwsAlg::Key(Alg::ES256));
        s.signing_kid = kid.map(str::to_owned);
        s
    };
    let pinned = h.client_with(spec("pinned", Some(&k1.kid))).await;
    let rotating = h.client_with(spec("rotating", None)).await;
    let kid = |t: &serde_json::Value| {
        jsonwebtoken::decode_header(t["access_token"].as_str().expect("t"))
            .expect("h")
            .kid
            .expect("kid")
    };
    assert_eq!(kid(&h.token(&pinned, "").await), k1.kid);

    // A successor is scheduled. The pinned key cannot be retired or cut short while pinned
    // (review finding: that locked applications out, some of them beyond the retirer's power).
    let k2 = admin
        .generate_key(
            Alg::ES256,
            KeyWindow {
                not_before: Some(k1.not_after),
                not_after: None,
            },
        )
        .await
        .expect("successor");
    // A key made to take over now would end the pinned one early, too (review finding).
    let e = admin
        .generate_key(
            Alg::ES256,
            KeyWindow {
                not_before: None,
                not_after: None,
            },
        )
        .await
        .expect_err("cuts the pinned key");
    assert!(format!("{e:?}").contains(&pinned.id), "{e:?}");
    let e = admin.retire_key(&k1.kid).await.expect_err("pinned");
    assert!(format!("{e:?}").contains(&pinned.id), "{e:?}");
    let shorter = KeyWindow {
        not_before: None,
        not_after: Some(k1.not_after.plus(-86_400)),
    };
    let e = admin
        .schedule_key(&k1.kid, shorter)
        .await
        .expect_err("pinned");
    assert!(format!("{e:?}").contains("pinned"), "{e:?}");
    // Its window ends: the successor signs for everyone else, never for the pinned application.
    h.clock.advance(k1.not_after.0 - h.clock.now().0 + 1);
    assert_eq!(kid(&h.token(&rotating, "").await), k2.kid);
    let refused = || async {
        h.post(
            "/token",
            Some(&pinned.basic()),
            "grant_type=client_credentials",
        )
        .await
        .status
    };
    assert_eq!(refused().await, http::StatusCode::INTERNAL_SERVER_ERROR);
    // Nor once the key's record is gone (review finding: it fell back to the successor).
    h.provider
        .store
        .apply(&[tessera_core::store::Change::Delete(
            tessera_core::store::Table::Keys,
            k1.kid.clone(),
        )])
        .await
        .expect("delete");
    h.provider.sync().await.expect("reload");
    assert!(h.provider.keys().by_kid(&k1.kid).is_none());
    assert_eq!(refused().await, http::StatusCode::INTERNAL_SERVER_ERROR);
    // Pinned to the new key, it signs again.
    admin
        .update_client(
            &pinned.id,
            &tessera_core::admin::ClientPatch {
                signing_kid: Some(Some(k2.kid.clone())),
                ..Default::default()
            },
        )
        .await
        .expect("re-pinned");
    assert_eq!(kid(&h.token(&pinned, "").await), k2.kid);

    // Refused: no such key, a key whose window ended, a key of another algorithm; a pinned
    // application's other JWTs signed with another algorithm (review finding).
    // (The clock moved past every first key's window: the RS256 key signing now.)
    let rsa = h
        .provider
        .keys()
        .signer(Alg::RS256, h.clock.now())
        .expect("an RS256 key")
        .clone();
    let mut userinfo = tessera_core::admin::ClientSpec {
        redirect_uris: vec!["https://rp.example.com/cb".into()],
        signing_alg: Some(tessera_core::model::JwsAlg::Key(Alg::ES256)),
        id_token_alg: Some(tessera_core::model::JwsAlg::Key(Alg::ES256)),
        signing_kid: Some(k2.kid.clone()),
        ..tessera_core::admin::ClientSpec::new("web", tessera_core::model::ClientType::Web)
    };
    userinfo.protection.userinfo_signed_response_alg =
        Some(tessera_core::model::JwsAlg::Key(Alg::RS256));
    let e = admin
        .create_client(&userinfo)
        .await
        .expect_err("RS256 userinfo");
    assert!(
        format!("{e:?}").contains("userinfo_signed_response_alg"),
        "{e:?}"
    );
    let mut web = tessera_core::admin::ClientSpec {
        redirect_uris: vec!["https://rp.example.com/cb".into()],
        signing_alg: Some(tessera_core::model::JwsAlg::Key(Alg::ES256)),
        signing_kid: Some(k2.kid.clone()),
        ..tessera_core::admin::ClientSpec::new("web", tessera_core::model::ClientType::Web)
    };
    let e = admin
        .create_client(&web)
        .await
        .expect_err("RS256 ID tokens");
    assert!(format!("{e:?}").contains("id_token_alg"), "{e:?}");
    web.id_token_alg = Some(tessera_core::model::JwsAlg::Key(Alg::ES256));
    admin
        .create_client(&web)
        .await
        .expect("both algorithms are the key's");
    for (field, s) in [
        ("signing_kid", spec("x", Some("no-such-kid"))),
        ("signing_kid", spec("x", Some(&k1.kid))),
        ("signing_alg", spec("x", Some(&rsa.kid))),
    ] {
        let e = admin.create_client(&s).await.expect_err(field);
        assert!(format!("{e:?}").contains(field), "{field}: {e:?}");
    }
}

//! Application policies: OAuth 2.1 (seed 001 "OAuth Policy") and the FAPI 2.0 Security Profile,
//! refused at configuration time when other settings contradict them, and enforced on requests.

use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::{Caller, ClientPatch, ClientSpec};
use tessera_core::model::{
    Alg, AuthMethod, ClientType, ConsentMode, GrantType, JwsAlg, OAuthPolicy, SecurityProfile,
};
use tessera_core::secret::b64url;

use crate::flow::{enc, jwt_claims, pkce, redirect_params, sign_in, Browser, RP};
use crate::support::{now, Harness, TestClient, ISSUER};

/// A change to a spec, to see it refused.
type Tweak = Box<dyn Fn(&mut ClientSpec)>;

/// An RSA key the application signs its assertions with, RS256 or PS256.
struct RsaKey {
    pair: RsaKeyPair,
    jwk: Value,
}

fn rsa_key() -> RsaKey {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa");
    let c = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let jwk =
        json!({"kty": "RSA", "kid": "app-rsa", "use": "sig", "n": b64url(&c.n), "e": b64url(&c.e)});
    RsaKey { pair, jwk }
}

impl RsaKey {
    fn sign(&self, alg: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "kid": "app-rsa", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let padding = if alg == "PS256" {
            &RSA_PSS_SHA256
        } else {
            &RSA_PKCS1_SHA256
        };
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                padding,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("sign");
        format!("{input}.{}", b64url(&sig))
    }

    /// A client assertion (RFC 7523 §2.2) for `c` at `aud`.
    fn assertion(&self, alg: &str, c: &TestClient, aud: &str, jti: &str) -> Vec<(String, String)> {
        let claims = json!({"iss": c.id, "sub": c.id, "aud": aud, "exp": now() + 60, "jti": jti});
        vec![
            (
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion".into(), self.sign(alg, &claims)),
        ]
    }
}

fn form(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn oauth_2_1_refuses_what_it_removed() {
    // The server would accept PKCE plain; an OAuth 2.1 application still does not.
    let h = Harness::with_settings(ISSUER, |s| s.pkce_plain = true).await;
    h.user("alice").await;
    let admin = h.provider.admin(Caller::local());
    let c = h
        .web_app(|s| {
            s.oauth_policy = Some(OAuthPolicy::V2_1);
            s.consent = Some(ConsentMode::AutoAccept);
        })
        .await;
    let app = admin.application(&c.id).await.expect("app");
    assert!(
        app.browser.pkce_required,
        "PKCE by default, even confidential"
    );

    let code_request = |method: &str, challenge: &str| {
        format!(
            "/authorize?{}",
            enc(&[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", RP),
                ("scope", "openid"),
                ("state", "s"),
                ("code_challenge", challenge),
                ("code_challenge_method", method),
            ])
        )
    };
    let p = redirect_params(
        &Browser::new(&h)
            .get(&code_request("plain", &"a".repeat(43)))
            .await,
    );
    assert_eq!(p["error"], "invalid_request", "plain refused: {p:?}");
    let (_, challenge) = pkce();
    let p = sign_in(
        &Browser::new(&h),
        &code_request("S256", &challenge),
        "alice",
    )
    .await;
    assert!(p.contains_key("code"), "{p:?}");

    // Settings that contradict the policy are refused, naming the setting.
    for (field, tweak) in [
        (
            "pkce_required",
            Box::new(|s: &mut ClientSpec| s.pkce_required = Some(false)) as Tweak,
        ),
        (
            "response_types",
            Box::new(|s: &mut ClientSpec| {
                s.response_types = Some(vec!["code".into(), "code id_token".into()])
            }),
        ),
        (
            "grant_types",
            Box::new(|s: &mut ClientSpec| {
                s.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::Password])
            }),
        ),
    ] {
        let mut spec = ClientSpec {
            redirect_uris: vec![RP.into()],
            oauth_policy: Some(OAuthPolicy::V2_1),
            ..ClientSpec::new("strict", ClientType::Web)
        };
        tweak(&mut spec);
        let e = format!("{:?}", admin.create_client(&spec).await.expect_err(field));
        assert!(e.contains(field) && e.contains("OAuth 2.1"), "{field}: {e}");
    }
    // A code asked for with plain PKCE before the application moved to 2.1 is not redeemed
    // after (review finding).
    let moving = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.pkce_required = Some(true);
        })
        .await;
    let verifier = "p".repeat(43);
    let path = format!(
        "/authorize?{}",
        enc(&[
            ("response_type", "code"),
            ("client_id", &moving.id),
            ("redirect_uri", RP),
            ("scope", "openid"),
            ("code_challenge", &verifier),
            ("code_challenge_method", "plain"),
        ])
    );
    let p = sign_in(&Browser::new(&h), &path, "alice").await;
    admin
        .update_client(
            &moving.id,
            &ClientPatch {
                oauth_policy: Some(OAuthPolicy::V2_1),
                ..ClientPatch::default()
            },
        )
        .await
        .expect("moved to 2.1");
    let t = h.exchange(&moving, &p["code"], Some(&verifier)).await;
    assert_eq!(t.error(), "invalid_grant", "{}", t.text);
    // Nor one asked for without PKCE at all (second review finding).
    let lax = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let path = format!(
        "/authorize?{}",
        enc(&[
            ("response_type", "code"),
            ("client_id", &lax.id),
            ("redirect_uri", RP),
            ("scope", "openid"),
        ])
    );
    let p = sign_in(&Browser::new(&h), &path, "alice").await;
    admin
        .update_client(
            &lax.id,
            &ClientPatch {
                oauth_policy: Some(OAuthPolicy::V2_1),
                pkce_required: Some(true),
                ..ClientPatch::default()
            },
        )
        .await
        .expect("moved to 2.1");
    let t = h.exchange(&lax, &p["code"], None).await;
    assert_eq!(t.error(), "invalid_grant", "{}", t.text);

    // An existing OAuth 2.0 application with implicit cannot move to 2.1 without dropping it.
    let legacy = h
        .web_app(|s| s.response_types = Some(vec!["code".into(), "id_token token".into()]))
        .await;
    let e = admin
        .update_client(
            &legacy.id,
            &ClientPatch {
                oauth_policy: Some(OAuthPolicy::V2_1),
                ..ClientPatch::default()
            },
        )
        .await
        .expect_err("contradicts");
    assert!(format!("{e:?}").contains("OAuth 2.1"), "{e:?}");
}

/// FAPI 2.0: a plain authorization request is refused; PAR with private_key_jwt (PS256) signs
/// the user in; RS256 assertions are refused; the code is redeemed only with a DPoP proof, for
/// DPoP-bound tokens; the application's tokens are PS256.
#[tokio::test]
async fn a_fapi_2_application_takes_only_what_the_profile_allows() {
    let h = Harness::new().await;
    h.user("alice").await;
    let key = rsa_key();
    let c = h
        .web_app(|s| {
            s.profile = Some(SecurityProfile::Fapi2);
            s.consent = Some(ConsentMode::AutoAccept);
            s.jwks = Some(json!({"keys": [key.jwk.clone()]}));
        })
        .await;
    let admin = h.provider.admin(Caller::local());
    let app = admin.application(&c.id).await.expect("app");
    assert_eq!(app.auth_method, AuthMethod::PrivateKeyJwt);
    assert!(app.browser.require_pushed_authorization_requests);
    assert_eq!(app.browser.id_token_alg, JwsAlg::Key(Alg::PS256));
    assert_eq!(app.signing_alg, JwsAlg::Key(Alg::PS256));
    assert!(app.browser.code_ttl <= 60);
    assert!(app.dpop_bound_access_tokens);

    // A plain authorization request: refused (the issue's test).
    let (verifier, challenge) = pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", RP),
        ("scope", "openid"),
        ("state", "fapi"),
        ("nonce", "n"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let p = redirect_params(
        &Browser::new(&h)
            .get(&format!("/authorize?{}", enc(&params)))
            .await,
    );
    assert_eq!(p["error"], "invalid_request", "{p:?}");

    // Pushed with an RS256 assertion: refused; with PS256 from the same key: accepted.
    let mut pushed: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let par = format!("{ISSUER}/par");
    let with = |alg: &str, jti: &str| {
        let mut f = pushed.clone();
        f.extend(key.assertion(alg, &c, &par, jti));
        form(&f)
    };
    let r = h.post("/par", None, &with("RS256", "a1")).await;
    assert_eq!(r.error(), "invalid_client", "RS256: {}", r.text);
    let r = h.post("/par", None, &with("PS256", "a2")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uri = r.json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    let p = sign_in(
        &Browser::new(&h),
        &crate::flow::authorize_by(&c, "request_uri", &uri, ""),
        "alice",
    )
    .await;
    assert_eq!(p["iss"], ISSUER, "iss in the response (RFC 9207)");
    pushed = vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), p["code"].clone()),
        ("redirect_uri".into(), RP.into()),
        ("code_verifier".into(), verifier),
    ];
    let tok = format!("{ISSUER}/token");
    let mut f = pushed.clone();
    f.extend(key.assertion("PS256", &c, &tok, "a3"));
    let dpop = crate::dpop::DpopKey::new();
    let t = crate::dpop::post_dpop(
        &h,
        "/token",
        None,
        &form(&f),
        &[&dpop.proof("POST", "/token", None, None)],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["token_type"], "DPoP");
    let id_token = t.json["id_token"].as_str().expect("id_token");
    let header: Value = serde_json::from_slice(
        &tessera_core::secret::b64url_decode(id_token.split('.').next().expect("h")).expect("b64"),
    )
    .expect("json");
    assert_eq!(header["alg"], "PS256");
    assert_eq!(jwt_claims(id_token)["aud"], c.id.as_str());

    // Settings that contradict the profile are refused, naming the setting.
    let cases: Vec<(&str, Tweak)> = vec![
        (
            "auth_method",
            Box::new(|s| s.auth_method = Some(AuthMethod::ClientSecretBasic)),
        ),
        (
            "require_pushed_authorization_requests",
            Box::new(|s| s.require_pushed_authorization_requests = Some(false)),
        ),
        ("code_ttl", Box::new(|s| s.code_ttl = Some(120))),
        (
            "dpop_bound_access_tokens",
            Box::new(|s| s.dpop_bound_access_tokens = Some(false)),
        ),
        (
            "signing_alg",
            Box::new(|s| s.signing_alg = Some(JwsAlg::Key(Alg::RS256))),
        ),
        (
            "id_token_alg",
            Box::new(|s| s.id_token_alg = Some(JwsAlg::HS256)),
        ),
        (
            "profile",
            Box::new(|s| {
                s.client_type = ClientType::Spa;
                s.auth_method = None;
            }),
        ),
    ];
    for (field, tweak) in cases {
        let mut spec = ClientSpec {
            redirect_uris: vec![RP.into()],
            profile: Some(SecurityProfile::Fapi2),
            jwks: Some(json!({"keys": [key.jwk.clone()]})),
            ..ClientSpec::new("fapi", ClientType::Web)
        };
        tweak(&mut spec);
        let e = format!("{:?}", admin.create_client(&spec).await.expect_err(field));
        assert!(e.contains(field), "{field}: {e}");
    }
}

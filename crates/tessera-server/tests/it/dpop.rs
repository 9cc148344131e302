//! DPoP (RFC 9449): proofs at the token endpoint for every grant, bound access tokens
//! (`token_type` DPoP, `cnf.jkt` in JWTs and introspection), bound codes (`dpop_jkt`, also from
//! a proof at PAR) and public clients' refresh tokens, Tessera's own protected resources
//! (userinfo, the admin API), server nonces, and each way a proof can be bad.

use axum::body::Body;
use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use tessera_core::admin::{ClientPatch, ClientSpec};
use tessera_core::model::{ClientType, ConsentMode, GrantType, TokenFormat};
use tessera_core::secret::{b64url, sha256};

use crate::admin_api::{setup, V1};
use crate::flow::{code_request, enc, jwt_claims, sign_in, Browser, RP};
use crate::support::{now, Harness, Reply, TestClient, ISSUER};

/// A client's DPoP key (P-256) and the proofs it makes.
pub struct DpopKey {
    pem: String,
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub jkt: String,
}

impl DpopKey {
    pub fn new() -> DpopKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let raw = kp.public_key_raw();
        let (x, y) = (b64url(&raw[1..33]), b64url(&raw[33..65]));
        let canon = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        DpopKey {
            pem: kp.serialize_pem(),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            jkt: b64url(&sha256(canon.as_bytes())),
        }
    }

    /// A JWS of `header` and `claims` signed ES256 with this key, whatever they say.
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let key = EncodingKey::from_ec_pem(self.pem.as_bytes()).expect("pem");
        let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::ES256)
            .expect("sign");
        format!("{signing_input}.{sig}")
    }

    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    /// The claims of a fresh proof for `method` at `path` of Tessera.
    pub fn claims(method: &str, path: &str) -> Value {
        json!({"jti": b64url(&tessera_core::secret::random_bytes::<12>()), "htm": method,
            "htu": format!("{ISSUER}{path}"), "iat": now()})
    }

    /// A proof for `method` at `path`, naming `token` (`ath`) and `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let mut c = DpopKey::claims(method, path);
        if let Some(t) = token {
            c["ath"] = json!(b64url(&sha256(t.as_bytes())));
        }
        if let Some(n) = nonce {
            c["nonce"] = json!(n);
        }
        self.sign_raw(&self.header(), &c)
    }
}

/// A form POST to `path` with Basic `auth` (if any) and these `DPoP` headers.
pub async fn post_dpop(
    h: &Harness,
    path: &str,
    auth: Option<&str>,
    body: &str,
    proofs: &[&str],
) -> Reply {
    let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    for p in proofs {
        b = b.header("dpop", *p);
    }
    h.send(b.body(Body::from(body.to_owned())).expect("request"))
        .await
}

/// A request to a protected resource with `scheme token` and these `DPoP` headers.
async fn resource(h: &Harness, method: &str, path: &str, auth: &str, proofs: &[&str]) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth);
    for p in proofs {
        b = b.header("dpop", *p);
    }
    h.send(b.body(Body::empty()).expect("request")).await
}

/// A client_credentials request of `c` with these `DPoP` headers.
async fn client_credentials(h: &Harness, c: &TestClient, proofs: &[&str]) -> Reply {
    post_dpop(
        h,
        "/token",
        Some(&c.basic()),
        "grant_type=client_credentials",
        proofs,
    )
    .await
}

async fn m2m(h: &Harness, format: TokenFormat) -> TestClient {
    h.client_with(ClientSpec {
        token_format: Some(format),
        introspection_allowed: Some(true),
        ..ClientSpec::new("dpop m2m", ClientType::M2m)
    })
    .await
}

fn www_authenticate(r: &Reply) -> String {
    r.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn a_proof_binds_client_credentials_tokens_in_either_format() {
    let h = Harness::new().await;
    let key = DpopKey::new();
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = m2m(&h, format).await;
        let proof = key.proof("POST", "/token", None, None);
        let r = client_credentials(&h, &c, &[&proof]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["token_type"], "DPoP");
        let at = r.json["access_token"].as_str().unwrap();
        if format == TokenFormat::Jwt {
            assert_eq!(jwt_claims(at)["cnf"]["jkt"], key.jkt.as_str());
        }
        let i = h.introspect(&c, at).await;
        assert_eq!(i["active"], true);
        assert_eq!(i["cnf"]["jkt"], key.jkt.as_str(), "{i}");
        assert_eq!(i["token_type"], "DPoP");
        // Without a proof the same client gets a bearer token.
        let plain = h.token(&c, "").await;
        assert_eq!(plain["token_type"], "Bearer");
        let i = h
            .introspect(&c, plain["access_token"].as_str().unwrap())
            .await;
        assert!(i.get("cnf").is_none() && i["token_type"] == "Bearer", "{i}");
    }
    let d = h.get("/.well-known/openid-configuration").await.json;
    assert!(d["dpop_signing_alg_values_supported"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("ES256")) && !a.contains(&json!("HS256"))));
}

#[tokio::test]
async fn every_bad_proof_is_invalid_dpop_proof_and_nothing_is_issued() {
    let h = Harness::new().await;
    let c = m2m(&h, TokenFormat::Opaque).await;
    let key = DpopKey::new();
    let other = DpopKey::new();
    let good = || DpopKey::claims("POST", "/token");
    let with = |k: &str, v: Value| {
        let mut c = good();
        c[k] = v;
        c
    };
    let mut private = key.jwk.clone();
    private["d"] = json!("AAAA");
    h.drain_artifacts().await;
    let mut forged = key.proof("POST", "/token", None, None);
    forged.push_str("AAAA");
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htm",
            key.sign_raw(&key.header(), &with("htm", json!("GET"))),
        ),
        (
            "wrong htu",
            key.sign_raw(
                &key.header(),
                &with("htu", json!(format!("{ISSUER}/revoke"))),
            ),
        ),
        (
            "other host",
            key.sign_raw(
                &key.header(),
                &with("htu", json!("https://evil.example/token")),
            ),
        ),
        (
            "stale iat",
            key.sign_raw(&key.header(), &with("iat", json!(h.clock.now().0 - 400))),
        ),
        (
            "future iat",
            key.sign_raw(&key.header(), &with("iat", json!(h.clock.now().0 + 400))),
        ),
        (
            "no jti",
            key.sign_raw(&key.header(), &{
                let mut c = good();
                c.as_object_mut().unwrap().remove("jti");
                c
            }),
        ),
        (
            "typ JWT",
            key.sign_raw(
                &json!({"typ": "JWT", "alg": "ES256", "jwk": key.jwk}),
                &good(),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64url(
                    json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk})
                        .to_string()
                        .as_bytes()
                ),
                b64url(good().to_string().as_bytes())
            ),
        ),
        (
            "alg HS256",
            key.sign_raw(
                &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
                &good(),
            ),
        ),
        (
            "private key",
            key.sign_raw(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
                &good(),
            ),
        ),
        ("another key's jwk", key.sign_raw(&other.header(), &good())),
        (
            "crit",
            key.sign_raw(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk, "crit": ["exp"]}),
                &good(),
            ),
        ),
        ("forged signature", forged),
        ("not a JWT", "not-a-jwt".into()),
        (
            "iat 100 s ahead",
            key.sign_raw(&key.header(), &with("iat", json!(h.clock.now().0 + 100))),
        ),
        (
            "htu with userinfo",
            key.sign_raw(
                &key.header(),
                &with("htu", json!("http://me:pw@localhost:8080/token")),
            ),
        ),
        ("a P-256 key labelled P-384", {
            let mut jwk = key.jwk.clone();
            jwk["crv"] = json!("P-384");
            key.sign_raw(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}),
                &good(),
            )
        }),
        ("an Ed25519 key of small order", {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            let header = json!({"typ": "dpop+jwt", "alg": "EdDSA",
                "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(&identity)}});
            let mut sig = identity.to_vec();
            sig.extend([0u8; 32]);
            format!(
                "{}.{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(good().to_string().as_bytes()),
                b64url(&sig)
            )
        }),
    ];
    for (what, proof) in &cases {
        let r = client_credentials(&h, &c, &[proof]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.error(), "invalid_dpop_proof", "{what}: {}", r.text);
    }
    // Two DPoP headers (RFC 9449 §4.3 step 1).
    let (a, b) = (
        key.proof("POST", "/token", None, None),
        key.proof("POST", "/token", None, None),
    );
    let r = client_credentials(&h, &c, &[&a, &b]).await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    // A proof is accepted once.
    let once = key.proof("POST", "/token", None, None);
    let r = client_credentials(&h, &c, &[&once]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = client_credentials(&h, &c, &[&once]).await;
    assert_eq!(r.error(), "invalid_dpop_proof");
    assert!(r.json["error_description"]
        .as_str()
        .unwrap()
        .contains("used before"));
    // Only the one good request stored anything: its token and its proof's jti.
    assert_eq!(h.drain_artifacts().await, 2);
}

#[tokio::test]
async fn an_application_can_require_dpop_and_fapi_2_does() {
    let h = Harness::new().await;
    let c = h
        .client_with(ClientSpec {
            dpop_bound_access_tokens: Some(true),
            ..ClientSpec::new("bound only", ClientType::M2m)
        })
        .await;
    let r = h
        .post("/token", Some(&c.basic()), "grant_type=client_credentials")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    let key = DpopKey::new();
    let proof = key.proof("POST", "/token", None, None);
    let r = client_credentials(&h, &c, &[&proof]).await;
    assert_eq!(r.json["token_type"], "DPoP", "{}", r.text);
    let admin = h.provider.admin(tessera_core::admin::Caller::local());
    assert!(
        admin
            .application(&c.id)
            .await
            .unwrap()
            .dpop_bound_access_tokens
    );
    // Tokens from the authorization endpoint cannot be bound: no response type with token.
    let e = admin
        .create_client(&ClientSpec {
            dpop_bound_access_tokens: Some(true),
            redirect_uris: vec![RP.into()],
            response_types: Some(vec!["code".into(), "id_token token".into()]),
            ..ClientSpec::new("implicit", ClientType::Web)
        })
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("dpop_bound_access_tokens"),
        "{e:?}"
    );
    // FAPI 2.0 cannot be had without it.
    let e = admin
        .update_client(
            &c.id,
            &ClientPatch {
                dpop_bound_access_tokens: Some(false),
                profile: Some(Some(tessera_core::model::SecurityProfile::Fapi2)),
                auth_method: Some(tessera_core::model::AuthMethod::PrivateKeyJwt),
                jwks: Some(Some(json!({"keys": [key.jwk]}))),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("dpop_bound_access_tokens"),
        "{e:?}"
    );
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_only_with_a_proof_of_its_key() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&app, "openid profile", "");
    let code = sign_in(&b, &path, "alice").await["code"].clone();
    let key = DpopKey::new();
    let body = enc(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", RP),
        ("code_verifier", &verifier),
    ]);
    let r = post_dpop(
        &h,
        "/token",
        Some(&app.basic()),
        &body,
        &[&key.proof("POST", "/token", None, None)],
    )
    .await;
    assert_eq!(r.json["token_type"], "DPoP", "{}", r.text);
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let auth = format!("DPoP {at}");

    let ok = resource(
        &h,
        "GET",
        "/userinfo",
        &auth,
        &[&key.proof("GET", "/userinfo", Some(&at), None)],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(ok.json["sub"].is_string());
    // POST is a method of its own.
    let r = resource(
        &h,
        "POST",
        "/userinfo",
        &auth,
        &[&key.proof("POST", "/userinfo", Some(&at), None)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let refused: Vec<(&str, Reply)> = vec![
        (
            "as Bearer",
            resource(&h, "GET", "/userinfo", &format!("Bearer {at}"), &[]).await,
        ),
        (
            "as Bearer with a proof",
            resource(
                &h,
                "GET",
                "/userinfo",
                &format!("Bearer {at}"),
                &[&key.proof("GET", "/userinfo", Some(&at), None)],
            )
            .await,
        ),
        (
            "no proof",
            resource(&h, "GET", "/userinfo", &auth, &[]).await,
        ),
        (
            "another key",
            resource(
                &h,
                "GET",
                "/userinfo",
                &auth,
                &[&DpopKey::new().proof("GET", "/userinfo", Some(&at), None)],
            )
            .await,
        ),
        (
            "no ath",
            resource(
                &h,
                "GET",
                "/userinfo",
                &auth,
                &[&key.proof("GET", "/userinfo", None, None)],
            )
            .await,
        ),
        (
            "ath of another token",
            resource(
                &h,
                "GET",
                "/userinfo",
                &auth,
                &[&key.proof("GET", "/userinfo", Some("other"), None)],
            )
            .await,
        ),
        (
            "the token endpoint's htu",
            resource(
                &h,
                "GET",
                "/userinfo",
                &auth,
                &[&key.proof("GET", "/token", Some(&at), None)],
            )
            .await,
        ),
    ];
    for (what, r) in refused {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
        let challenge = www_authenticate(&r);
        // Presented as Bearer, the answer is a Bearer challenge; with DPoP, a DPoP one.
        let scheme = if what.starts_with("as Bearer") {
            "Bearer "
        } else {
            "DPoP "
        };
        assert!(challenge.starts_with(scheme), "{what}: {challenge}");
        assert!(
            challenge.contains("error=\"invalid_token\"")
                || challenge.contains("error=\"invalid_dpop_proof\""),
            "{what}: {challenge}"
        );
    }
    // A bearer token presented with the DPoP scheme is refused too.
    let (path, verifier) = code_request(&app, "openid", "");
    let code = sign_in(&b, &path, "alice").await["code"].clone();
    let plain = h.exchange(&app, &code, Some(&verifier)).await;
    let bearer = plain.json["access_token"].as_str().unwrap();
    let r = resource(
        &h,
        "GET",
        "/userinfo",
        &format!("DPoP {bearer}"),
        &[&key.proof("GET", "/userinfo", Some(bearer), None)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(www_authenticate(&r).contains("error=\"invalid_token\""));
    let r = h.get_with_bearer("/userinfo", bearer).await;
    assert_eq!(r.status, StatusCode::OK);
    // No token at all: both challenges.
    let r = h.get("/userinfo").await;
    let challenge = www_authenticate(&r);
    assert!(
        challenge.contains("Bearer") && challenge.contains("DPoP"),
        "{challenge}"
    );
}

/// A public application (spa) whose users consent automatically.
async fn spa(h: &Harness) -> TestClient {
    let created = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_client(&ClientSpec {
            redirect_uris: vec![RP.into()],
            consent: Some(ConsentMode::AutoAccept),
            grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
            ..ClientSpec::new("dpop spa", ClientType::Spa)
        })
        .await
        .expect("spa");
    TestClient {
        id: created.client.client_id,
        secret: String::new(),
    }
}

fn code_body(c: &TestClient, code: &str, verifier: &str) -> String {
    enc(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", RP),
        ("code_verifier", verifier),
        ("client_id", &c.id),
    ])
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_and_a_public_clients_refresh_tokens_stay_with_the_key() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = spa(&h).await;
    let b = Browser::new(&h);
    let key = DpopKey::new();
    let other = DpopKey::new();

    // A malformed dpop_jkt is refused at the authorization endpoint.
    let (path, _) = code_request(&app, "openid offline_access", "&dpop_jkt=short");
    let p = sign_in(&b, &path, "alice").await;
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("invalid_request"),
        "{p:?}"
    );

    let bound_code = || async {
        let (path, verifier) = code_request(&app, "openid", &format!("&dpop_jkt={}", key.jkt));
        (sign_in(&b, &path, "alice").await["code"].clone(), verifier)
    };
    // The code is redeemed only with a proof of that key: none, or another key's, is refused
    // without spending it (a thief cannot burn it to revoke the grant).
    let (code, verifier) = bound_code().await;
    for proofs in [vec![], vec![other.proof("POST", "/token", None, None)]] {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = post_dpop(
            &h,
            "/token",
            None,
            &code_body(&app, &code, &verifier),
            &refs,
        )
        .await;
        assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    }
    let r = post_dpop(
        &h,
        "/token",
        None,
        &code_body(&app, &code, &verifier),
        &[&key.proof("POST", "/token", None, None)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["token_type"], "DPoP");
    let rt = r.json["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    let refresh = |rt: String, proofs: Vec<String>| {
        let h = &h;
        let id = app.id.clone();
        async move {
            let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            post_dpop(
                h,
                "/token",
                None,
                &enc(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &id),
                ]),
                &refs,
            )
            .await
        }
    };
    // The public client's refresh token needs the same key; a refusal does not spend it.
    let r = refresh(rt.clone(), vec![]).await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    let r = refresh(rt.clone(), vec![other.proof("POST", "/token", None, None)]).await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    let r = refresh(rt.clone(), vec![key.proof("POST", "/token", None, None)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt.as_str()
    );
    // Its successor is bound too.
    let next = r.json["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh(
        next.clone(),
        vec![other.proof("POST", "/token", None, None)],
    )
    .await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    // The rotated token without its key is refused as such, not taken as reuse: the grant
    // lives on.
    let r = refresh(rt, vec![other.proof("POST", "/token", None, None)]).await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    let r = refresh(next, vec![key.proof("POST", "/token", None, None)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_proof_at_par_binds_the_code() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let b = Browser::new(&h);
    let key = DpopKey::new();
    let (verifier, challenge) = crate::flow::pkce();
    let push = |proofs: Vec<String>, extra: Vec<(&'static str, String)>| {
        let (h, app, challenge) = (&h, &app, challenge.clone());
        async move {
            let mut pairs: Vec<(&str, String)> = vec![
                ("response_type", "code".into()),
                ("redirect_uri", RP.into()),
                ("scope", "openid".into()),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256".into()),
            ];
            pairs.extend(extra);
            let body = enc(&pairs
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>());
            let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            post_dpop(h, "/par", Some(&app.basic()), &body, &refs).await
        }
    };
    // A proof for another endpoint, or a dpop_jkt that is not its key's, is refused.
    let r = push(vec![key.proof("POST", "/token", None, None)], vec![]).await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
    let r = push(
        vec![key.proof("POST", "/par", None, None)],
        vec![("dpop_jkt", DpopKey::new().jkt)],
    )
    .await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);

    // An empty dpop_jkt counts as omitted: the proof's key binds.
    let r = push(
        vec![key.proof("POST", "/par", None, None)],
        vec![("dpop_jkt", String::new())],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = push(vec![key.proof("POST", "/par", None, None)], vec![]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uri = r.json["request_uri"].as_str().unwrap();
    let p = sign_in(
        &b,
        &crate::flow::authorize_by(&app, "request_uri", uri, ""),
        "alice",
    )
    .await;
    let body = enc(&[
        ("grant_type", "authorization_code"),
        ("code", &p["code"]),
        ("redirect_uri", RP),
        ("code_verifier", &verifier),
    ]);
    // Without a proof the code is refused (and spent), so it was bound at the push.
    let r = h.post("/token", Some(&app.basic()), &body).await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.text);
}

#[tokio::test]
async fn with_nonces_required_a_proof_needs_a_fresh_server_nonce() {
    let h = Harness::with_settings(ISSUER, |s| s.dpop_require_nonce = true).await;
    let c = m2m(&h, TokenFormat::Jwt).await;
    let key = DpopKey::new();
    let r = client_credentials(&h, &c, &[&key.proof("POST", "/token", None, None)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "use_dpop_nonce", "{}", r.text);
    let nonce = r.header("dpop-nonce").to_owned();
    assert!(nonce.len() >= 20, "{nonce:?}");
    let r = client_credentials(&h, &c, &[&key.proof("POST", "/token", None, Some(&nonce))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.header("dpop-nonce"),
        nonce,
        "the answer hands out the current nonce"
    );
    // A made-up nonce is refused like a missing one.
    let r = client_credentials(
        &h,
        &c,
        &[&key.proof("POST", "/token", None, Some("made-up"))],
    )
    .await;
    assert_eq!(r.error(), "use_dpop_nonce");
    // The nonce is still good in the next window, not after.
    h.clock.advance(tessera_core::dpop::NONCE_WINDOW);
    let proof = {
        // The proof's iat follows the server's clock.
        let mut c = DpopKey::claims("POST", "/token");
        c["iat"] = json!(h.clock.now().0);
        c["nonce"] = json!(nonce);
        key.sign_raw(&key.header(), &c)
    };
    let r = client_credentials(&h, &c, &[&proof]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_ne!(r.header("dpop-nonce"), nonce, "the nonce rotated");
    h.clock.advance(tessera_core::dpop::NONCE_WINDOW);
    let mut late = DpopKey::claims("POST", "/token");
    late["iat"] = json!(h.clock.now().0);
    late["nonce"] = json!(nonce);
    let r = client_credentials(&h, &c, &[&key.sign_raw(&key.header(), &late)]).await;
    assert_eq!(r.error(), "use_dpop_nonce", "{}", r.text);
}

#[tokio::test]
async fn the_admin_api_takes_dpop_bound_tokens_with_their_proofs() {
    let h = setup().await;
    let c = h
        .client_with(ClientSpec {
            scopes: vec!["config:read".into()],
            apis: vec![h.provider.admin_api()],
            ..ClientSpec::new("bound automation", ClientType::M2m)
        })
        .await;
    let key = DpopKey::new();
    let r = client_credentials(&h, &c, &[&key.proof("POST", "/token", None, None)]).await;
    let at = r.json["access_token"].as_str().expect("token").to_owned();
    let path = format!("{V1}/applications");
    let none = h.get(&path).await;
    let challenge = www_authenticate(&none);
    assert!(
        none.status == StatusCode::UNAUTHORIZED
            && challenge.contains("Bearer")
            && challenge.contains("DPoP")
            && !challenge.contains("error="),
        "{challenge}"
    );
    let ok = resource(
        &h,
        "GET",
        &path,
        &format!("DPoP {at}"),
        &[&key.proof("GET", &path, Some(&at), None)],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let refused = [
        resource(&h, "GET", &path, &format!("Bearer {at}"), &[]).await,
        resource(&h, "GET", &path, &format!("DPoP {at}"), &[]).await,
        resource(
            &h,
            "GET",
            &path,
            &format!("DPoP {at}"),
            &[&key.proof("GET", &format!("{V1}/users"), Some(&at), None)],
        )
        .await,
        resource(
            &h,
            "GET",
            &path,
            &format!("DPoP {at}"),
            &[&DpopKey::new().proof("GET", &path, Some(&at), None)],
        )
        .await,
    ];
    for r in refused {
        crate::admin_api::problem(&r, 401);
        assert!(
            www_authenticate(&r).starts_with("DPoP ")
                || www_authenticate(&r).starts_with("Bearer "),
            "{}",
            www_authenticate(&r)
        );
    }
}

#[tokio::test]
async fn a_bound_token_is_exchanged_only_with_its_key() {
    let h = Harness::new().await;
    let c = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::ClientCredentials, GrantType::TokenExchange]),
            impersonation_allowed: Some(true),
            ..ClientSpec::new("exchanger", ClientType::M2m)
        })
        .await;
    let key = DpopKey::new();
    let r = client_credentials(&h, &c, &[&key.proof("POST", "/token", None, None)]).await;
    let at = r.json["access_token"].as_str().expect("token").to_owned();
    let body = enc(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", &at),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ]);
    for proofs in [
        vec![],
        vec![DpopKey::new().proof("POST", "/token", None, None)],
    ] {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = post_dpop(&h, "/token", Some(&c.basic()), &body, &refs).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.text.contains("DPoP-bound"), "{}", r.text);
    }
    let r = post_dpop(
        &h,
        "/token",
        Some(&c.basic()),
        &body,
        &[&key.proof("POST", "/token", None, None)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["token_type"], "DPoP");
}

/// A retry within an application's grace window gets the very answer of the first refresh,
/// `token_type` included: the binding is the token's, whatever the retry sends.
#[tokio::test]
async fn a_grace_window_retry_reports_the_binding_of_its_token() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.refresh_grace_secs = Some(30);
        })
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&app, "openid", "");
    let code = sign_in(&b, &path, "alice").await["code"].clone();
    let rt = h.exchange(&app, &code, Some(&verifier)).await.json["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let key = DpopKey::new();
    let body = enc(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]);
    let first = post_dpop(
        &h,
        "/token",
        Some(&app.basic()),
        &body,
        &[&key.proof("POST", "/token", None, None)],
    )
    .await;
    assert_eq!(first.json["token_type"], "DPoP", "{}", first.text);
    let retry = h.post("/token", Some(&app.basic()), &body).await;
    assert_eq!(
        retry.json["access_token"], first.json["access_token"],
        "{}",
        retry.text
    );
    assert_eq!(retry.json["token_type"], "DPoP");
}

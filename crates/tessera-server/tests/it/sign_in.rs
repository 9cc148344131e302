//! Browser sign-in through `/authorize`, `/login` and `/consent`: the pages, consent, SSO, the
//! errors that must not redirect, and the ones that must.

use http::StatusCode;
use tessera_core::audit::AuditQuery;
use tessera_core::model::{ArtifactKind, ConsentMode};

use crate::flow::{code_request, enc, hidden, redirect_params, sign_in, Browser, PASSWORD, RP};
use crate::support::{Harness, ISSUER};

#[tokio::test]
async fn code_flow_with_login_and_consent() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&app, "openid profile email", "");
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    // The login page: labelled inputs with autocomplete hints, no framing.
    assert!(page
        .text
        .contains("<label for=\"username\">Username</label>"));
    assert!(page.text.contains("autocomplete=\"username\""));
    assert!(page.text.contains("autocomplete=\"current-password\""));
    assert!(page
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(page.header("set-cookie").contains("HttpOnly"));
    assert!(page.header("set-cookie").contains("SameSite=Lax"));

    let consent = b.login(&page, "alice", PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text);
    let session_cookie = consent
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tessera_session="))
        .expect("session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(
        !session_cookie.contains("Secure"),
        "http issuer: no Secure attribute"
    );
    // Each scope by display name and description.
    assert!(
        consent.text.contains("Your email address"),
        "{}",
        consent.text
    );
    assert!(consent.text.contains("Your profile"));

    let done = b.consent(&consent, true).await;
    let p = redirect_params(&done);
    assert!(done.header("location").starts_with(RP));
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["iss"], ISSUER, "RFC 9207");
    assert!(p.contains_key("session_state"));
    let tokens = h.exchange(&app, &p["code"], Some(&verifier)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.json);
    assert!(tokens.json["id_token"].is_string());
    assert!(tokens.json["refresh_token"].is_string());

    // Consent is remembered: the same scopes again go straight back.
    let (path, _) = code_request(&app, "openid email", "");
    let again = b.get(&path).await;
    assert!(redirect_params(&again).contains_key("code"));
    // A new scope asks again.
    let (path, _) = code_request(&app, "openid email phone", "");
    let more = b.get(&path).await;
    assert_eq!(more.status, StatusCode::OK);
    assert!(more.text.contains("Your phone number"));
}

#[tokio::test]
async fn second_application_signs_in_without_a_password() {
    let h = Harness::new().await;
    h.user("bob").await;
    let first = h.web_app(|_| {}).await;
    let second = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&first, "openid", "");
    sign_in(&b, &path, "bob").await;
    let (path, _) = code_request(&second, "openid", "");
    let r = b.get(&path).await;
    let p = redirect_params(&r);
    assert!(
        p.contains_key("code"),
        "SSO: no login page, and auto-accept: no consent page"
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_and_blocked_user_get_one_message() {
    let h = Harness::new().await;
    h.user("carol").await;
    h.user("dave").await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_user(
            "dave",
            &tessera_core::admin::UserPatch {
                blocked: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    let page = b.get(&path).await;
    for (user, pass) in [
        ("carol", "wrong password"),
        ("nobody", PASSWORD),
        ("dave", PASSWORD),
    ] {
        let r = b.login(&page, user, pass).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(
            r.text.contains("The username or password is incorrect."),
            "{user}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account() {
    let h = Harness::new().await;
    h.user("erin").await;
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    let page = b.get(&path).await;
    for _ in 0..5 {
        assert_eq!(
            b.login(&page, "erin", "nope nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = b.login(&page, "erin", PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert_eq!(r.header("retry-after"), "900");
    // Retrying while paused adds nothing to the audit log: one event per paused key and window.
    for _ in 0..3 {
        let again = b.login(&page, "erin", PASSWORD).await;
        assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(throttled_events(&h).await, 1, "one event for the pause");
    let (_, metrics) = h.get_text("/metrics").await;
    for outcome in ["failed", "throttled"] {
        assert!(
            metrics.contains(&format!("tessera_sign_ins_total{{outcome=\"{outcome}\"}}")),
            "{outcome} sign-ins are counted"
        );
    }
    h.clock.advance(901);
    let page = b.get(&path).await;
    let r = b.login(&page, "erin", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "the window is over: {}", r.text);
    // A new pause in a new window is news again (another browser: this one is signed in).
    let b = Browser::new(&h);
    let page = b.get(&path).await;
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = b.login(&page, "erin", "nope nope").await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled_events(&h).await, 2, "one event per window");
}

async fn throttled_events(h: &Harness) -> usize {
    let query = AuditQuery {
        action: Some("sign_in.throttled".into()),
        limit: 100,
        ..AuditQuery::default()
    };
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .audit_events(&query)
        .await
        .expect("audit")
        .len()
}

#[tokio::test]
async fn login_without_csrf_token_or_cookie_is_refused() {
    let h = Harness::new().await;
    h.user("frank").await;
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    let page = b.get(&path).await;
    let interaction = hidden(&page.text, "interaction");
    let no_csrf = enc(&[
        ("interaction", &interaction),
        ("username", "frank"),
        ("password", PASSWORD),
    ]);
    let r = b.post("/login", &no_csrf).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("CSRF"), "{}", r.text);
    // A forged post from another site carries the token it cannot read, and no cookie.
    let csrf = hidden(&page.text, "csrf");
    b.forget("tessera_interaction");
    let forged = enc(&[
        ("interaction", &interaction),
        ("csrf", &csrf),
        ("username", "frank"),
        ("password", PASSWORD),
    ]);
    assert_eq!(
        b.post("/login", &forged).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// The sessions of `user` in force.
async fn sessions_of(h: &Harness, user: &str) -> usize {
    h.provider
        .store
        .user_artifacts(user)
        .await
        .expect("artifacts")
        .iter()
        .filter(|a| a.kind == ArtifactKind::Session && a.revoked_at.is_none())
        .count()
}

#[tokio::test]
async fn a_login_form_posted_twice_signs_in_once_and_its_replay_changes_nothing() {
    let h = Harness::new().await;
    let grace = h.user("grace").await;
    let mallory = h.user("mallory").await;
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    let page = b.get(&path).await;
    // Two posts of one form at once (a double click): one signs in, the other is refused.
    let (one, two) = tokio::join!(
        b.login(&page, "grace", PASSWORD),
        b.login(&page, "grace", PASSWORD)
    );
    let mut statuses = [one.status, two.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{} {}",
        one.text,
        two.text
    );
    let refused = if one.status == StatusCode::OK {
        &two
    } else {
        &one
    };
    assert!(
        refused.text.contains("already completed"),
        "{}",
        refused.text
    );
    assert_eq!(sessions_of(&h, &grace).await, 1);
    // The used form again, with another user's password, in the browser signed in as grace:
    // refused, and grace's session neither ends nor becomes mallory's.
    let replay = b.login(&page, "mallory", PASSWORD).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text);
    assert_eq!(sessions_of(&h, &grace).await, 1);
    assert_eq!(sessions_of(&h, &mallory).await, 0);
    let (path, _) = code_request(&app, "openid", "");
    let consent = b.get(&path).await;
    assert!(
        consent.text.contains("id=\"scopes\""),
        "still signed in: {}",
        consent.text
    );
}

#[tokio::test]
async fn unknown_client_or_redirect_uri_shows_a_page_and_never_redirects() {
    let h = Harness::new().await;
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let cases = [
        enc(&[
            ("response_type", "code"),
            ("client_id", "nope"),
            ("redirect_uri", RP),
        ]),
        enc(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", "https://evil.example/cb"),
        ]),
        enc(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", "https://rp.example.com/cb/extra"),
        ]),
        enc(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("scope", "openid"),
        ]),
    ];
    for q in cases {
        let r = b.get(&format!("/authorize?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.header("location"), "", "{q}");
        assert!(r.text.contains("invalid_request"), "{}", r.text);
    }
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_to_the_client() {
    let h = Harness::new().await;
    let app = h
        .web_app(|s| {
            s.response_types = Some(vec![
                "code".into(),
                "code id_token".into(),
                "id_token token".into(),
            ])
        })
        .await;
    let b = Browser::new(&h);
    let base = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("client_id", app.id.as_str()),
            ("redirect_uri", RP),
            ("state", "s"),
        ];
        pairs.extend_from_slice(extra);
        format!("/authorize?{}", enc(&pairs))
    };
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("response_type", "id_token token"), ("scope", "openid")],
            "invalid_request",
        ),
        (&[("response_type", "token")], "unauthorized_client"),
        (&[("response_type", "bogus")], "unsupported_response_type"),
        (
            &[("response_type", "code"), ("scope", "openid admin")],
            "invalid_scope",
        ),
        (
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none"),
            ],
            "login_required",
        ),
        (
            &[
                ("response_type", "code"),
                ("code_challenge", "abc"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, want) in cases {
        let r = b.get(&base(extra)).await;
        let p = redirect_params(&r);
        assert_eq!(p["error"], want, "{extra:?}: {p:?}");
        assert_eq!(p["state"], "s");
        assert_eq!(p["iss"], ISSUER);
    }
    // Implicit without nonce: the error goes back in the fragment.
    let r = b
        .get(&base(&[
            ("response_type", "id_token token"),
            ("scope", "openid"),
        ]))
        .await;
    assert!(r.header("location").contains('#'));
}

#[tokio::test]
async fn public_clients_must_use_pkce_and_native_loopback_matches_any_port() {
    let h = Harness::new().await;
    h.user("gina").await;
    let native = h
        .web_app(|s| {
            s.client_type = tessera_core::model::ClientType::Native;
            s.redirect_uris = vec![
                "http://127.0.0.1/callback".into(),
                "com.example.app:/cb".into(),
            ];
            s.post_logout_redirect_uris = vec![];
        })
        .await;
    let b = Browser::new(&h);
    let no_pkce = enc(&[
        ("response_type", "code"),
        ("client_id", &native.id),
        ("redirect_uri", "http://127.0.0.1:51234/callback"),
        ("scope", "openid"),
    ]);
    let p = redirect_params(&b.get(&format!("/authorize?{no_pkce}")).await);
    assert_eq!(p["error"], "invalid_request");
    assert!(p["error_description"].contains("code_challenge"));
    let (verifier, challenge) = crate::flow::pkce();
    let q = enc(&[
        ("response_type", "code"),
        ("client_id", &native.id),
        ("redirect_uri", "http://127.0.0.1:51234/callback"),
        ("scope", "openid"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let page = b.get(&format!("/authorize?{q}")).await;
    let consent = b.login(&page, "gina", PASSWORD).await;
    let done = b.consent(&consent, true).await;
    assert!(done
        .header("location")
        .starts_with("http://127.0.0.1:51234/callback?"));
    let code = redirect_params(&done)["code"].clone();
    let body = enc(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "http://127.0.0.1:51234/callback"),
        ("client_id", &native.id),
        ("code_verifier", &verifier),
    ]);
    let r = h.post("/token", None, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(r.json["id_token"].is_string());
}

#[tokio::test]
async fn deny_answers_access_denied_and_groups_restrict_applications() {
    let h = Harness::new().await;
    h.user("hank").await;
    let app = h.web_app(|_| {}).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    let page = b.get(&path).await;
    let consent = b.login(&page, "hank", PASSWORD).await;
    let p = redirect_params(&b.consent(&consent, false).await);
    assert_eq!(p["error"], "access_denied");

    let admins_only = h
        .web_app(|s| s.allowed_groups = vec!["admins".into()])
        .await;
    let (path, _) = code_request(&admins_only, "openid", "");
    let p = redirect_params(&b.get(&path).await);
    assert_eq!(p["error"], "access_denied", "hank is staff, not admins");
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_the_password_again() {
    let h = Harness::new().await;
    h.user("ivy").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&app, "openid", "");
    let p = sign_in(&b, &path, "ivy").await;
    let first = crate::flow::jwt_claims(
        h.exchange(&app, &p["code"], Some(&verifier)).await.json["id_token"]
            .as_str()
            .unwrap(),
    );
    for extra in ["&prompt=login", "&max_age=0", "&max_age=1"] {
        h.clock.advance(1);
        let (path, verifier) = code_request(&app, "openid", extra);
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{extra}: a login page");
        let r = b.login(&page, "ivy", PASSWORD).await;
        let p = redirect_params(&r);
        let again = crate::flow::jwt_claims(
            h.exchange(&app, &p["code"], Some(&verifier)).await.json["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(
            again["sid"], first["sid"],
            "{extra}: signing in again keeps the session"
        );
        assert!(
            again["auth_time"].as_i64() > first["auth_time"].as_i64(),
            "{extra}: a new auth_time"
        );
    }
    let (path, _) = code_request(&app, "openid", "&prompt=none");
    assert!(
        redirect_params(&b.get(&path).await).contains_key("code"),
        "a session satisfies prompt=none"
    );
}

#[tokio::test]
async fn form_post_hybrid_and_implicit_responses() {
    let h = Harness::new().await;
    h.user("jo").await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.response_types = Some(vec![
                "code".into(),
                "code id_token".into(),
                "id_token token".into(),
                "id_token".into(),
            ]);
        })
        .await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    sign_in(&b, &path, "jo").await;

    let q = enc(&[
        ("response_type", "code"),
        ("client_id", &app.id),
        ("redirect_uri", RP),
        ("scope", "openid"),
        ("response_mode", "form_post"),
        ("state", "fp"),
    ]);
    let r = b.get(&format!("/authorize?{q}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains(&format!("action=\"{RP}\""))
            || r.text
                .contains("action=\"https:&#x2f;&#x2f;rp.example.com&#x2f;cb\""),
        "{}",
        r.text
    );
    assert!(r.text.contains("name=\"code\""));
    assert!(r
        .header("content-security-policy")
        .contains("script-src 'nonce-"));

    let q = enc(&[
        ("response_type", "code id_token"),
        ("client_id", &app.id),
        ("redirect_uri", RP),
        ("scope", "openid email"),
        ("nonce", "hy"),
    ]);
    let p = redirect_params(&b.get(&format!("/authorize?{q}")).await);
    let claims = crate::flow::jwt_claims(&p["id_token"]);
    assert_eq!(claims["nonce"], "hy");
    assert_eq!(
        claims["c_hash"],
        tessera_core::id_token::half_hash(
            tessera_core::model::JwsAlg::Key(tessera_core::model::Alg::RS256),
            &p["code"]
        )
    );

    let q = enc(&[
        ("response_type", "id_token token"),
        ("client_id", &app.id),
        ("redirect_uri", RP),
        ("scope", "openid email"),
        ("nonce", "im"),
    ]);
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(
        r.header("location").contains('#'),
        "tokens travel in the fragment"
    );
    let p = redirect_params(&r);
    let claims = crate::flow::jwt_claims(&p["id_token"]);
    assert_eq!(
        claims["at_hash"],
        tessera_core::id_token::half_hash(
            tessera_core::model::JwsAlg::Key(tessera_core::model::Alg::RS256),
            &p["access_token"]
        )
    );
    assert!(
        claims.get("email").is_none(),
        "with an access token, claims come from userinfo"
    );

    let q = enc(&[
        ("response_type", "id_token"),
        ("client_id", &app.id),
        ("redirect_uri", RP),
        ("scope", "openid email"),
        ("nonce", "only"),
    ]);
    let p = redirect_params(&b.get(&format!("/authorize?{q}")).await);
    assert_eq!(
        crate::flow::jwt_claims(&p["id_token"])["email"],
        "jo@example.com",
        "OIDC Core §5.4"
    );
}

/// The property-test twin of the `authorize_request` fuzz target, through HTTP: whatever follows a
/// registered application's client_id and redirect_uri, `/authorize` answers a page (login,
/// consent or error) or a redirect to that very redirect_uri, never a server error.
#[test]
fn no_authorization_request_makes_the_server_fail_or_redirect_elsewhere() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (h, app) = rt.block_on(async {
        let h = Harness::new().await;
        let app = h.web_app(|_| {}).await;
        (h, app)
    });
    let name = prop::sample::select(vec![
        "response_type",
        "response_mode",
        "scope",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "code_challenge",
        "code_challenge_method",
        "claims",
        "id_token_hint",
        "login_hint",
        "resource",
        "request",
        "request_uri",
        "redirect_uri",
        "client_id",
        "ui_locales",
    ]);
    let value = prop_oneof![
        "[ -~]{0,60}",
        Just("code".to_owned()),
        Just("code id_token token".to_owned()),
        Just("openid profile email offline_access".to_owned()),
        Just("form_post".to_owned()),
        Just("none login".to_owned()),
        Just("{\"userinfo\":{\"email\":null}}".to_owned()),
        Just("-1".to_owned()),
        Just("S256".to_owned()),
        Just("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
    ];
    let pairs = proptest::collection::vec((name, value), 0..8);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    runner
        .run(&pairs, |pairs| {
            let mut all = vec![("client_id", app.id.clone()), ("redirect_uri", RP.into())];
            all.extend(pairs.iter().map(|(n, v)| (*n, v.clone())));
            let query = enc(&all
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect::<Vec<_>>());
            let r = rt.block_on(h.get(&format!("/authorize?{query}")));
            prop_assert!(
                !r.status.is_server_error(),
                "{} for {query}: {}",
                r.status,
                r.text
            );
            if r.status.is_redirection() {
                let to = r.header("location");
                prop_assert!(to.starts_with(RP), "redirected to {to} for {query}");
            } else if let Some(at) = r.text.find("action=\"") {
                // A form goes to Tessera's own pages or (form_post) to the registered redirect_uri.
                let rest = &r.text[at + 8..];
                let action = rest[..rest.find('"').unwrap_or(0)].replace("&#x2f;", "/");
                prop_assert!(
                    ["/login", "/consent", "/logout"].contains(&action.as_str()) || action == RP,
                    "a form posting to {action} for {query}"
                );
            }
            Ok(())
        })
        .expect("property");
}

/// RFC 8252 §7.3, RFC 9700 §4.1.3: a native app's loopback redirect URI matches the registered
/// one exactly, the port aside; other spellings of the same address or path are other URIs, shown
/// as an error page, never redirected to.
#[tokio::test]
async fn loopback_redirect_uris_match_exactly_but_for_the_port() {
    let h = Harness::new().await;
    let native = h
        .web_app(|s| {
            s.client_type = tessera_core::model::ClientType::Native;
            s.redirect_uris = vec!["http://127.0.0.1/cb".into()];
            s.post_logout_redirect_uris = vec![];
        })
        .await;
    let b = Browser::new(&h);
    let (_, challenge) = crate::flow::pkce();
    let ask = |redirect: &str| {
        let q = enc(&[
            ("response_type", "code"),
            ("client_id", &native.id),
            ("redirect_uri", redirect),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        format!("/authorize?{q}")
    };
    for spelled in [
        "http://0x7f000001:1234/cb",
        "http://127.1:1234/cb",
        "http://2130706433:1234/cb",
        "http://127.0.0.1:1234/./cb",
        "http://127.0.0.1:1234/x/../cb",
        "http://127.0.0.1:1234/cb/",
    ] {
        let r = b.get(&ask(spelled)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{spelled}");
        assert_eq!(r.header("location"), "", "{spelled}");
        assert!(!r.text.contains(spelled), "not echoed: {spelled}");
    }
    let r = b.get(&ask("http://127.0.0.1:1234/cb")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("name=\"password\""));
}

/// OIDC Core §5.5.1.1: an essential `acr` Tessera cannot meet is a failed authentication (the
/// Unmet Authentication Requirements error), before any sign-in; a voluntary one (`acr_values`,
/// §3.1.2.1) is not an error and the ID token says what was done.
#[tokio::test]
async fn an_essential_acr_that_cannot_be_met_fails_the_request() {
    let h = Harness::new().await;
    h.user("ivy").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let b = Browser::new(&h);
    for claims in [
        r#"{"id_token":{"acr":{"essential":true,"values":["urn:mace:incommon:iap:silver"]}}}"#,
        r#"{"id_token":{"acr":{"essential":true,"value":"2"}}}"#,
        r#"{"userinfo":{"acr":{"essential":true,"value":"2"}}}"#,
    ] {
        let (path, _) = code_request(&app, "openid", &format!("&{}", enc(&[("claims", claims)])));
        let r = b.get(&path).await;
        let p = redirect_params(&r);
        assert_eq!(
            p.get("error").map(String::as_str),
            Some("unmet_authentication_requirements"),
            "{claims}: {}",
            r.text
        );
        assert_eq!(p["state"], "st-1");
        assert!(!p.contains_key("code"));
    }
    // Malformed: invalid_request, not a silent pass.
    for claims in [
        r#"{"id_token":{"acr":{"essential":true,"value":["urn:gold"]}}}"#,
        r#"{"id_token":{"acr":{"essential":true,"values":"urn:gold"}}}"#,
        r#"{"id_token":{"acr":{"essential":"yes","values":["0"]}}}"#,
    ] {
        let (path, _) = code_request(&app, "openid", &format!("&{}", enc(&[("claims", claims)])));
        let p = redirect_params(&b.get(&path).await);
        assert_eq!(
            p.get("error").map(String::as_str),
            Some("invalid_request"),
            "{claims}"
        );
    }
    // What Tessera can meet, essential or not, and voluntary acr_values: a code as usual.
    for extra in [
        format!(
            "&{}",
            enc(&[(
                "claims",
                r#"{"id_token":{"acr":{"essential":true,"values":["0","2"]}}}"#
            )])
        ),
        "&acr_values=1%202".to_owned(),
    ] {
        let (path, verifier) = code_request(&app, "openid", &extra);
        let p = sign_in(&b, &path, "ivy").await;
        let t = h.exchange(&app, &p["code"], Some(&verifier)).await;
        assert_eq!(t.status, StatusCode::OK, "{extra}: {}", t.text);
        let id = crate::flow::jwt_claims(t.json["id_token"].as_str().unwrap());
        assert_eq!(id["acr"], "0", "{extra}");
    }
}

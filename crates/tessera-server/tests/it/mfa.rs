//! Multi-factor sign-in through `app()` with a fixed clock: authentication schemes, TOTP
//! enrolment and use (RFC 6238 windows, replay), recovery codes, passkeys with a software
//! authenticator (second factor and passwordless, each bad answer refused), step-up with
//! `acr_values` and the `claims` parameter, `prompt=none`, `max_age`, and acr/amr/auth_time in
//! ID tokens and introspection.

use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::ClientSpec;
use tessera_core::admin::{Caller, SchemeSpec};
use tessera_core::audit::AuditQuery;
use tessera_core::factor::soft_authenticator::{Response, SoftAuthenticator};
use tessera_core::factor::{totp, Method};
use tessera_core::model::{ClientType, ConsentMode, GrantType, TokenFormat};
use tessera_core::secret::b64url_decode;

use crate::admin_api::{automation, call, problem, setup};
use crate::flow::{code_request, enc, hidden, jwt_claims, redirect_params, Browser, PASSWORD};
use crate::support::{Harness, Reply, TestClient, ISSUER};

pub(crate) const MFA: &str = "urn:example:mfa";
const RP_ID: &str = "localhost";

fn methods(sets: &[&[Method]]) -> Vec<Vec<Method>> {
    sets.iter().map(|s| s.to_vec()).collect()
}

/// A scheme `name` yielding `acr`: password with TOTP or a passkey, or a passkey alone.
pub(crate) async fn scheme(h: &Harness, name: &str, acr: &str, enrolment: bool) {
    use Method::*;
    h.provider
        .admin(Caller::local())
        .create_scheme(&SchemeSpec {
            name: name.into(),
            methods: methods(&[&[Password, Totp], &[Password, Passkey], &[Passkey]]),
            acr: acr.into(),
            factor_lifetime: Some(3_600),
            enrolment: Some(enrolment),
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
}

async fn app(h: &Harness, scheme: Option<&str>) -> TestClient {
    h.web_app(|s| {
        s.consent = Some(ConsentMode::AutoAccept);
        s.authentication_scheme = scheme.map(str::to_owned);
        s.introspection_allowed = Some(true);
        s.token_format = Some(TokenFormat::Opaque);
    })
    .await
}

/// RFC 4648 base32 (the key the enrolment page shows, spaces allowed).
fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buf, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = alphabet.iter().position(|a| *a == c).expect("base32") as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// The text of the element with id `id`.
fn element(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).expect(id);
    let open = html[start..].find('>').expect(">") + start + 1;
    let close = html[open..].find('<').expect("<") + open;
    html[open..close].to_owned()
}

fn attr(html: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let start = html
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + key.len();
    let end = html[start..].find('"').expect("quote") + start;
    html[start..end]
        .replace("&#x2D;", "-")
        .replace("&#x5F;", "_")
}

pub(crate) fn code_now(h: &Harness, secret: &[u8]) -> String {
    totp::code_at(secret, totp::step_of(h.provider.now()))
}

pub(crate) async fn post_step(
    b: &Browser<'_>,
    page: &Reply,
    path: &str,
    fields: &[(&str, &str)],
) -> Reply {
    let interaction = hidden(&page.text, "interaction");
    let csrf = hidden(&page.text, "csrf");
    let mut pairs = vec![
        ("interaction", interaction.as_str()),
        ("csrf", csrf.as_str()),
    ];
    pairs.extend_from_slice(fields);
    b.post(path, &enc(&pairs)).await
}

/// Posts a software authenticator's assertion from the page `page`.
async fn post_passkey(b: &Browser<'_>, page: &Reply, a: &Response) -> Reply {
    let fields = [
        ("credential_id", a.credential_id.as_str()),
        ("client_data_json", a.client_data_json.as_str()),
        ("authenticator_data", a.data.as_str()),
        ("signature", a.signature.as_str()),
        ("user_handle", a.user_handle.as_str()),
    ];
    post_step(b, page, "/login/passkey", &fields).await
}

/// Signs `user` in again from the login page `login`: the password, then a fresh code of
/// `secret` (the next step's, so never one already spent); returns where that leads.
async fn sign_in_again(
    h: &Harness,
    b: &Browser<'_>,
    login: &Reply,
    user: &str,
    secret: &[u8],
) -> Reply {
    let factor = b.login(login, user, PASSWORD).await;
    assert!(factor.text.contains("Verify it is you"), "{}", factor.text);
    h.clock.advance(30);
    let code = code_now(h, secret);
    let done = post_step(
        b,
        &factor,
        "/login/code",
        &[("kind", "totp"), ("code", &code)],
    )
    .await;
    follow(b, done).await
}

/// Redeems the code of a finished sign-in; returns the ID token's claims and the token response.
async fn redeem(h: &Harness, app: &TestClient, done: &Reply, verifier: &str) -> (Value, Value) {
    let p = redirect_params(done);
    let t = h.exchange(app, &p["code"], Some(verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let id = jwt_claims(t.json["id_token"].as_str().expect("id token"));
    (id, t.json.clone())
}

async fn events(h: &Harness, action: &str) -> Vec<Value> {
    let q = AuditQuery {
        action: Some(action.into()),
        limit: 100,
        ..AuditQuery::default()
    };
    h.provider
        .store
        .list_events(&q)
        .await
        .expect("events")
        .into_iter()
        .map(|e| serde_json::to_value(e).expect("event"))
        .collect()
}

/// Enrols TOTP from the enrolment page `page`; returns the secret and the recovery codes.
pub(crate) async fn enrol_totp(
    h: &Harness,
    b: &Browser<'_>,
    page: &Reply,
) -> (Vec<u8>, Vec<String>, Reply) {
    assert!(
        page.text.contains("Set up a second factor"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("<svg"),
        "the QR code is drawn in the page"
    );
    let secret = base32_decode(&element(&page.text, "totp-secret"));
    assert_eq!(secret.len(), 20);
    assert!(
        page.text.contains("href=\"otpauth://totp/"),
        "{}",
        page.text
    );
    // A wrong code: the page again, one message, nothing stored.
    let wrong = post_step(
        b,
        page,
        "/login/enrol",
        &[("method", "totp"), ("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    assert!(wrong.text.contains("That did not work"));
    let code = code_now(h, &secret);
    let codes_page = post_step(
        b,
        page,
        "/login/enrol",
        &[("method", "totp"), ("code", &code)],
    )
    .await;
    assert_eq!(codes_page.status, StatusCode::OK, "{}", codes_page.text);
    let list = &codes_page.text[codes_page
        .text
        .find("id=\"recovery-codes\"")
        .expect("codes")..];
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").expect("end")].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", codes_page.text);
    let done = post_step(b, &codes_page, "/login/continue", &[]).await;
    (secret, codes, done)
}

#[tokio::test]
async fn totp_step_up_enrolment_replay_and_recovery_codes() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    let uid = h.user("alice").await;
    let plain = app(&h, None).await;
    let strict = app(&h, Some("mfa")).await;

    // Discovery lists every scheme's acr.
    let d = h.get("/.well-known/openid-configuration").await;
    assert_eq!(d.json["acr_values_supported"], json!(["0", MFA]));

    // A password is enough for the plain application: acr "0", amr pwd.
    let b = Browser::new(&h);
    let (path, v) = code_request(&plain, "openid", "");
    let done = b.login(&b.get(&path).await, "alice", PASSWORD).await;
    let (id, _) = redeem(&h, &plain, &done, &v).await;
    assert_eq!(id["acr"], "0");
    assert_eq!(id["amr"], json!(["pwd"]));
    let first_auth = id["auth_time"].as_i64().expect("auth_time");

    // prompt=none below the level: interaction_required, not a page.
    let (path, _) = code_request(&plain, "openid", &format!("&prompt=none&acr_values={MFA}"));
    let r = b.get(&path).await;
    assert_eq!(redirect_params(&r)["error"], "interaction_required");

    // Step-up by acr_values: only the missing factor is asked; alice has none, so she sets one up.
    h.clock.advance(40);
    let (path, v) = code_request(&plain, "openid", &format!("&acr_values={MFA}"));
    let page = b.get(&path).await;
    assert!(
        !page.text.contains("name=\"password\""),
        "no password again"
    );
    let (secret, codes, done) = enrol_totp(&h, &b, &page).await;
    let (id, tokens) = redeem(&h, &plain, &done, &v).await;
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(
        id["auth_time"].as_i64().expect("auth_time") > first_auth,
        "a factor was added"
    );
    // Introspection tells a resource server the level (RFC 9470 §6.1 with RFC 7662).
    let at = tokens["access_token"].as_str().expect("access token");
    let intro = h.introspect(&plain, at).await;
    assert_eq!(intro["acr"], MFA);
    assert_eq!(intro["auth_time"], id["auth_time"]);
    assert_eq!(events(&h, "factor.enrolled").await.len(), 1);
    assert_eq!(events(&h, "recovery_codes.generated").await.len(), 1);

    // The session now satisfies the strict application: no page at all.
    let (path, _) = code_request(&strict, "openid", "&prompt=none");
    assert!(redirect_params(&b.get(&path).await).contains_key("code"));

    // Another browser: password, then the code; the code just used is refused (replay).
    let b2 = Browser::new(&h);
    let (path, v) = code_request(&strict, "openid", "");
    let factor = b2.login(&b2.get(&path).await, "alice", PASSWORD).await;
    assert!(factor.text.contains("Verify it is you"), "{}", factor.text);
    let used = code_now(&h, &secret);
    let replay = post_step(
        &b2,
        &factor,
        "/login/code",
        &[("kind", "totp"), ("code", &used)],
    )
    .await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a code counts once"
    );
    let failed = events(&h, "sign_in.factor_failed").await;
    assert_eq!(failed[0]["detail"]["reason"], "wrong_code");
    h.clock.advance(30);
    let fresh = code_now(&h, &secret);
    let done = post_step(
        &b2,
        &factor,
        "/login/code",
        &[("kind", "totp"), ("code", &fresh)],
    )
    .await;
    let (id, _) = redeem(&h, &strict, &done, &v).await;
    assert_eq!(id["acr"], MFA);

    // A third browser: a recovery code instead, once only.
    let b3 = Browser::new(&h);
    let (path, v) = code_request(&strict, "openid", "");
    let factor = b3.login(&b3.get(&path).await, "alice", PASSWORD).await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    let done = post_step(
        &b3,
        &factor,
        "/login/code",
        &[("kind", "recovery"), ("code", &typed)],
    )
    .await;
    let (id, _) = redeem(&h, &strict, &done, &v).await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    let b4 = Browser::new(&h);
    let (path, _) = code_request(&strict, "openid", "");
    let factor = b4.login(&b4.get(&path).await, "alice", PASSWORD).await;
    let again = post_step(
        &b4,
        &factor,
        "/login/code",
        &[("kind", "recovery"), ("code", &codes[0])],
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let user = h
        .provider
        .store
        .get_user(&uid)
        .await
        .expect("get")
        .expect("user");
    assert_eq!(user.factors.recovery_left(), 9);

    // max_age re-asks every factor the scheme needs, not just the password.
    h.clock.advance(120);
    let (path, _) = code_request(&strict, "openid", "&max_age=60");
    let page = b2.get(&path).await;
    assert!(page.text.contains("name=\"password\""), "{}", page.text);
    let factor = b2.login(&page, "alice", PASSWORD).await;
    assert!(factor.text.contains("Verify it is you"), "{}", factor.text);

    // The password grant cannot skip the second factor.
    let ropc = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::Password]),
            response_types: Some(vec![]),
            authentication_scheme: Some("mfa".into()),
            ..ClientSpec::new("password grant", ClientType::Web)
        })
        .await;
    let r = h
        .post(
            "/token",
            Some(&ropc.basic()),
            &enc(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
}

#[tokio::test]
async fn essential_and_voluntary_levels_a_user_cannot_reach() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, false).await;
    h.user("bob").await;
    let plain = app(&h, None).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&plain, "openid", "");
    b.login(&b.get(&path).await, "bob", PASSWORD).await;
    // Voluntary: bob holds no second factor and may not enrol; the application's level will do.
    let (path, v) = code_request(&plain, "openid", &format!("&acr_values={MFA}"));
    let (id, _) = redeem(&h, &plain, &b.get(&path).await, &v).await;
    assert_eq!(id["acr"], "0");
    // Essential (OIDC Core §5.5.1.1): a failed authentication.
    let claims = json!({"id_token": {"acr": {"essential": true, "value": MFA}}}).to_string();
    let (path, _) = code_request(
        &plain,
        "openid",
        &format!("&claims={}", enc(&[("x", &claims)])[2..].to_owned()),
    );
    let r = b.get(&path).await;
    assert_eq!(
        redirect_params(&r)["error"],
        "unmet_authentication_requirements"
    );
    // An application whose own scheme bob cannot meet: a clear page, not a loop.
    let strict = app(&h, Some("mfa")).await;
    let (path, _) = code_request(&strict, "openid", "");
    let r = b.get(&path).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("needs a second factor"), "{}", r.text);
}

#[tokio::test]
async fn passkeys_second_factor_and_passwordless_with_bad_answers_refused() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    let uid = h.user("carol").await;
    let strict = app(&h, Some("mfa")).await;
    let b = Browser::new(&h);
    let (path, v) = code_request(&strict, "openid", "");
    let login = b.get(&path).await;
    // A passkey alone satisfies the scheme: the login page offers it (discoverable, no list).
    assert!(
        login.text.contains("Sign in with a passkey"),
        "{}",
        login.text
    );
    assert!(login
        .header("content-security-policy")
        .contains("script-src 'self'"));
    let enrol = b.login(&login, "carol", PASSWORD).await;
    let challenge = attr(
        &enrol.text[enrol.text.find("data-webauthn=\"create\"").expect("create")..],
        "data-challenge",
    );
    let handle = attr(&enrol.text, "data-user-handle");
    assert_eq!(b64url_decode(&handle).expect("handle"), uid.as_bytes());
    let mut auth = SoftAuthenticator::new(uid.as_bytes()).expect("authenticator");
    // Registered for another origin: refused, nothing stored.
    let evil = auth.register(RP_ID, "https://evil.example", &challenge);
    let r = post_step(
        &b,
        &enrol,
        "/login/enrol",
        &[
            ("method", "passkey"),
            ("client_data_json", &evil.client_data_json),
            ("attestation_object", &evil.data),
            ("name", "Laptop"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        events(&h, "sign_in.factor_failed").await[0]["detail"]["reason"],
        "origin"
    );
    let reg = auth.register(RP_ID, ISSUER, &challenge);
    let codes = post_step(
        &b,
        &enrol,
        "/login/enrol",
        &[
            ("method", "passkey"),
            ("client_data_json", &reg.client_data_json),
            ("attestation_object", &reg.data),
            ("name", "Laptop"),
        ],
    )
    .await;
    assert!(codes.text.contains("recovery-codes"), "{}", codes.text);
    let done = post_step(&b, &codes, "/login/continue", &[]).await;
    let (id, _) = redeem(&h, &strict, &done, &v).await;
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], json!(["pwd", "hwk", "user", "pin", "mfa"]));

    // Passwordless in a new browser: the credential's user handle names carol.
    let b2 = Browser::new(&h);
    let (path, v) = code_request(&strict, "openid", "");
    let login = b2.get(&path).await;
    let challenge = attr(
        &login.text[login.text.find("data-webauthn=\"get\"").expect("get")..],
        "data-challenge",
    );
    // Another relying party id: refused.
    let wrong_rp = auth.assert("evil.example", ISSUER, &challenge);
    let r = post_passkey(&b2, &login, &wrong_rp).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // A tampered signature: refused.
    let mut bad = auth.assert(RP_ID, ISSUER, &challenge);
    let mut sig = b64url_decode(&bad.signature).expect("signature");
    sig[10] ^= 1;
    bad.signature = tessera_core::secret::b64url(&sig);
    let r = post_passkey(&b2, &login, &bad).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // An unknown credential: refused.
    let mut stranger = SoftAuthenticator::new(uid.as_bytes()).expect("authenticator");
    let r = post_passkey(&b2, &login, &stranger.assert(RP_ID, ISSUER, &challenge)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The real one: signed in with the passkey alone.
    let good = auth.assert(RP_ID, ISSUER, &challenge);
    let done = post_passkey(&b2, &login, &good).await;
    let (id, _) = redeem(&h, &strict, &done, &v).await;
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], json!(["hwk", "user", "pin", "mfa"]));
    let reasons: Vec<String> = events(&h, "sign_in.factor_failed")
        .await
        .iter()
        .map(|e| {
            e["detail"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for r in ["rp_id", "signature", "unknown_credential"] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }

    // A cloned authenticator (its counter behind the stored one) is refused.
    let b3 = Browser::new(&h);
    let (path, _) = code_request(&strict, "openid", "");
    let login = b3.get(&path).await;
    let challenge = attr(
        &login.text[login.text.find("data-webauthn=\"get\"").expect("get")..],
        "data-challenge",
    );
    auth.sign_count -= 2;
    let clone = auth.assert(RP_ID, ISSUER, &challenge);
    let r = post_passkey(&b3, &login, &clone).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let last = events(&h, "sign_in.factor_failed").await;
    assert_eq!(last[0]["detail"]["reason"], "counter_regression");
}

#[tokio::test]
async fn administrators_list_and_remove_factors_and_require_enrolment() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    let dave = h.user("dave").await;
    let plain = app(&h, None).await;
    let admin = automation(&h, &["administrator"]).await;
    let users_write = automation(&h, &["users:write"]).await;
    let config_write = automation(&h, &["config:write"]).await;

    // Required enrolment: the next sign-in asks for a second factor even on a password app.
    let r = call(
        &h,
        "PUT",
        &format!("/users/{dave}/enrolment"),
        &users_write,
        Some(json!({"required": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let b = Browser::new(&h);
    let (path, v) = code_request(&plain, "openid", "");
    let page = b.login(&b.get(&path).await, "dave", PASSWORD).await;
    let (_, _, done) = enrol_totp(&h, &b, &page).await;
    redeem(&h, &plain, &done, &v).await;
    let r = call(
        &h,
        "GET",
        &format!("/users/{dave}/factors"),
        &users_write,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["enrolment_required"], false);
    let kinds: Vec<&str> = r.json["factors"]
        .as_array()
        .expect("factors")
        .iter()
        .map(|f| f["id"].as_str().expect("id"))
        .collect();
    assert_eq!(kinds, ["totp", "recovery_codes"]);
    assert!(!r.text.contains("secret"), "{}", r.text);

    // Removing the last second factor takes the recovery codes with it.
    let r = call(
        &h,
        "DELETE",
        &format!("/users/{dave}/factors/totp"),
        &users_write,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(
        &h,
        "GET",
        &format!("/users/{dave}/factors"),
        &users_write,
        None,
    )
    .await;
    assert_eq!(r.json["factors"], json!([]));
    problem(
        &call(
            &h,
            "DELETE",
            &format!("/users/{dave}/factors/totp"),
            &users_write,
            None,
        )
        .await,
        404,
    );
    assert_eq!(events(&h, "factor.removed").await.len(), 1);

    // An administrator's factors are protected: users:write may not remove them.
    let root = h.user("root").await;
    h.provider
        .admin(Caller::local())
        .set_membership(tessera_core::admin::ADMIN_GROUP, &root, true)
        .await
        .expect("admin");
    problem(
        &call(
            &h,
            "PUT",
            &format!("/users/{root}/enrolment"),
            &users_write,
            Some(json!({"required": true})),
        )
        .await,
        403,
    );
    problem(
        &call(
            &h,
            "DELETE",
            &format!("/users/{root}/factors/totp"),
            &users_write,
            None,
        )
        .await,
        403,
    );
    let r = call(
        &h,
        "PUT",
        &format!("/users/{root}/enrolment"),
        &admin,
        Some(json!({"required": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Schemes over the API; the one the Portal signs in with needs administrator to change.
    let spec = json!({"name": "strong", "methods": [["passkey"]], "acr": "urn:example:strong"});
    let r = call(&h, "POST", "/schemes", &config_write, Some(spec.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    problem(
        &call(
            &h,
            "POST",
            "/schemes",
            &config_write,
            Some(json!({"name": "otp-only", "methods": [["totp"]], "acr": "x"})),
        )
        .await,
        422,
    );
    problem(
        &call(
            &h,
            "POST",
            "/schemes",
            &config_write,
            Some(json!({"name": "dup", "methods": [["passkey"]], "acr": MFA})),
        )
        .await,
        409,
    );
    problem(
        &call(
            &h,
            "POST",
            "/schemes",
            &config_write,
            Some(json!({"name": "password", "methods": [["passkey"]], "acr": "y"})),
        )
        .await,
        422,
    );
    let list = call(&h, "GET", "/schemes", &config_write, None).await;
    let names: Vec<&str> = list.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["mfa", "password", "strong"]);
    let portal = tessera_core::admin::PORTAL_CLIENT;
    let r = call(
        &h,
        "PATCH",
        &format!("/applications/{portal}"),
        &admin,
        Some(json!({"authentication_scheme": "strong"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let weaker = json!({"name": "strong", "methods": [["password"]], "acr": "urn:example:strong"});
    problem(
        &call(
            &h,
            "PUT",
            "/schemes/strong",
            &config_write,
            Some(weaker.clone()),
        )
        .await,
        403,
    );
    problem(
        &call(&h, "DELETE", "/schemes/strong", &admin, None).await,
        409,
    );
    let r = call(&h, "PUT", "/schemes/strong", &admin, Some(weaker)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    problem(
        &call(
            &h,
            "PATCH",
            &format!("/applications/{}", plain.id),
            &config_write,
            Some(json!({"authentication_scheme": "nope"})),
        )
        .await,
        422,
    );

    // An apply file may not give a scheme the acr of a stored one, or the built-in "0".
    for acr in [MFA, "0"] {
        let spec: tessera_core::admin::Spec = serde_json::from_value(
            json!({"schemes": [{"name": "other", "methods": [["passkey"]], "acr": acr}]}),
        )
        .expect("spec");
        let planned = h.provider.admin(Caller::local()).plan(&spec, false).await;
        assert!(planned.is_err(), "acr {acr}");
    }

    // A user's factors go with the user.
    let r = call(&h, "DELETE", &format!("/users/{dave}"), &admin, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

/// Follows the account page's redirects in `b` until a page (or a stop at `/authorize`'s pages).
pub(crate) async fn follow(b: &Browser<'_>, mut r: Reply) -> Reply {
    for _ in 0..10 {
        if r.status != StatusCode::SEE_OTHER {
            return r;
        }
        let loc = r.header("location").replace(ISSUER, "");
        r = b.get(&loc).await;
    }
    r
}

#[tokio::test]
async fn the_account_page_manages_ones_own_factors_after_a_recent_sign_in() {
    let h = setup().await;
    let uid = h.user("erin").await;
    let plain = app(&h, None).await;
    let b = Browser::new(&h);
    // Not signed in: through Tessera's own sign-in, as the account page's client.
    let r = b.get("/account").await;
    assert_eq!(r.header("location"), "/account/login");
    let login = follow(&b, r).await;
    assert!(
        login.text.contains("Sign in to Your account"),
        "{}",
        login.text
    );
    let page = follow(&b, b.login(&login, "erin", PASSWORD).await).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Signed in as <strong>erin</strong>"));
    let csrf = hidden(&page.text, "csrf");

    // A forged form (no CSRF token) changes nothing.
    let r = b
        .post("/account/factors/new", &enc(&[("kind", "totp")]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // An authenticator app: the key, then its first code; recovery codes come with it.
    let setup = b
        .post(
            "/account/factors/new",
            &enc(&[("csrf", &csrf), ("kind", "totp")]),
        )
        .await;
    assert!(setup.text.contains("<svg"), "{}", setup.text);
    let secret = base32_decode(&element(&setup.text, "totp-secret"));
    let state = hidden(&setup.text, "state");
    let wrong = b
        .post(
            "/account/factors/confirm",
            &enc(&[
                ("csrf", &csrf),
                ("kind", "totp"),
                ("state", &state),
                ("code", "000000"),
            ]),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        base32_decode(&element(&wrong.text, "totp-secret")),
        secret,
        "the same key again"
    );
    // A sealed setup not made for this session, does not verify.
    let forged = b
        .post(
            "/account/factors/confirm",
            &enc(&[
                ("csrf", &csrf),
                ("kind", "totp"),
                ("state", "AAAA"),
                ("code", &code_now(&h, &secret)),
            ]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let code = code_now(&h, &secret);
    let codes = b
        .post(
            "/account/factors/confirm",
            &enc(&[
                ("csrf", &csrf),
                ("kind", "totp"),
                ("state", &state),
                ("code", &code),
            ]),
        )
        .await;
    assert!(codes.text.contains("recovery-codes"), "{}", codes.text);
    let user = h
        .provider
        .store
        .get_user(&uid)
        .await
        .expect("get")
        .expect("user");
    assert!(user.factors.totp.is_some());
    assert_eq!(user.factors.recovery_left(), 10);

    // Eleven minutes on: changes need a fresh sign-in with every factor held (password + TOTP).
    h.clock.advance(660);
    let r = b
        .post(
            "/account/factors/remove",
            &enc(&[("csrf", &csrf), ("factor", "totp")]),
        )
        .await;
    assert_eq!(r.header("location"), "/account/login?fresh=1");
    let login = follow(&b, r).await;
    let page = sign_in_again(&h, &b, &login, "erin", &secret).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let csrf = hidden(&page.text, "csrf");
    let r = b.post("/account/codes", &enc(&[("csrf", &csrf)])).await;
    assert!(r.text.contains("recovery-codes"));
    // New codes signed erin out everywhere (a session that used an old one ends): she signs in
    // again, with the password and a new code.
    let r = b.get("/account").await;
    assert_eq!(r.header("location"), "/account/login");
    let page = sign_in_again(&h, &b, &follow(&b, r).await, "erin", &secret).await;
    let csrf = hidden(&page.text, "csrf");
    let r = b
        .post(
            "/account/factors/remove",
            &enc(&[("csrf", &csrf), ("factor", "totp")]),
        )
        .await;
    assert_eq!(r.header("location"), "/account?notice=removed");
    let user = h
        .provider
        .store
        .get_user(&uid)
        .await
        .expect("get")
        .expect("user");
    assert!(
        user.factors.is_empty(),
        "the codes went with the last second factor"
    );
    // Removing a factor signed erin out everywhere, this browser included; she signs in again.
    let r = b.get("/account").await;
    assert_eq!(r.header("location"), "/account/login");
    let login = follow(&b, r).await;
    let page = follow(&b, b.login(&login, "erin", PASSWORD).await).await;
    let csrf = hidden(&page.text, "csrf");

    // A password-only session from another application cannot change factors of a user who
    // holds a second factor.
    let setup = b
        .post(
            "/account/factors/new",
            &enc(&[("csrf", &csrf), ("kind", "totp")]),
        )
        .await;
    let secret = base32_decode(&element(&setup.text, "totp-secret"));
    let state = hidden(&setup.text, "state");
    let code = code_now(&h, &secret);
    b.post(
        "/account/factors/confirm",
        &enc(&[
            ("csrf", &csrf),
            ("kind", "totp"),
            ("state", &state),
            ("code", &code),
        ]),
    )
    .await;
    let thief = Browser::new(&h);
    let (path, _) = code_request(&plain, "openid", "");
    let done = thief.login(&thief.get(&path).await, "erin", PASSWORD).await;
    assert!(
        redirect_params(&done).contains_key("code"),
        "a password app"
    );
    let page = thief.get("/account").await;
    let csrf = hidden(&page.text, "csrf");
    let r = thief
        .post(
            "/account/factors/remove",
            &enc(&[("csrf", &csrf), ("factor", "totp")]),
        )
        .await;
    assert_eq!(r.header("location"), "/account/login?fresh=1");
    let r = thief.post("/account/codes", &enc(&[("csrf", &csrf)])).await;
    assert_eq!(r.header("location"), "/account/login?fresh=1");

    // The password: the current one first.
    let r = thief
        .post(
            "/account/password",
            &enc(&[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("password", "another long password"),
            ]),
        )
        .await;
    assert_eq!(
        r.header("location"),
        "/account/login?fresh=1",
        "not with a password alone"
    );

    // The owner signs in afresh with both factors; then the current password comes first.
    let r = b
        .post(
            "/account/password",
            &enc(&[
                ("csrf", &hidden(&b.get("/account").await.text, "csrf")),
                ("current_password", PASSWORD),
                ("password", "another long password"),
            ]),
        )
        .await;
    let login = follow(&b, r).await;
    let page = sign_in_again(&h, &b, &login, "erin", &secret).await;
    let csrf = hidden(&page.text, "csrf");
    let r = b
        .post(
            "/account/password",
            &enc(&[
                ("csrf", &csrf),
                ("current_password", "wrong"),
                ("password", "another long password"),
            ]),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
}

/// Knowing the password does not reset the count of wrong second factors: signing in again
/// with it between guesses still ends in a pause.
#[tokio::test]
async fn wrong_codes_pause_sign_in_whatever_the_password_clears() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    h.user("gina").await;
    let strict = app(&h, Some("mfa")).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&strict, "openid", "");
    let enrol = b.login(&b.get(&path).await, "gina", PASSWORD).await;
    enrol_totp(&h, &b, &enrol).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let thief = Browser::new(&h);
        let (path, _) = code_request(&strict, "openid", "");
        let factor = thief.login(&thief.get(&path).await, "gina", PASSWORD).await;
        assert!(factor.text.contains("Verify it is you"), "{}", factor.text);
        for _ in 0..2 {
            let r = post_step(
                &thief,
                &factor,
                "/login/code",
                &[("kind", "totp"), ("code", "123456")],
            )
            .await;
            statuses.push(r.status.as_u16());
        }
    }
    // Each attempt is counted before it is judged (the set-up's wrong code was cleared by its
    // right one): five wrong codes, then a pause.
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}

/// The attack review's findings, each refused: a password alone never adds a factor to an
/// account that holds one, guesses sent in parallel are counted before they are judged, a
/// removed factor ends the sessions that proved it, one recovery code is one factor, and a
/// password-only token cannot change the password of an account with a second factor.
#[tokio::test]
async fn a_password_alone_never_adds_or_passes_for_a_second_factor() {
    use futures_util::future::join_all;
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    h.provider
        .admin(Caller::local())
        .create_scheme(&SchemeSpec {
            name: "strong".into(),
            methods: methods(&[&[Method::Password, Method::Passkey], &[Method::Passkey]]),
            acr: "urn:example:strong".into(),
            enrolment: Some(true),
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
    let vid = h.user("victim").await;
    let plain = app(&h, None).await;
    let strict = app(&h, Some("mfa")).await;
    let owner = Browser::new(&h);
    let (path, _) = code_request(&strict, "openid", "");
    let enrol = owner
        .login(&owner.get(&path).await, "victim", PASSWORD)
        .await;
    let (secret, _, _) = enrol_totp(&h, &owner, &enrol).await;

    // A scheme the victim's factors do not cover (a passkey), asked with acr_values: the
    // password leads to the factor the victim holds, not to setting up the thief's passkey.
    let thief = Browser::new(&h);
    let (path, _) = code_request(&plain, "openid", "&acr_values=urn:example:strong");
    let page = thief
        .login(&thief.get(&path).await, "victim", PASSWORD)
        .await;
    assert!(page.text.contains("Verify it is you"), "{}", page.text);
    assert!(!page.text.contains("Set up a second factor"));
    let r = post_step(&thief, &page, "/login/enrol", &[("method", "passkey")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no enrolment is open");
    // Required enrolment is for users who hold no second factor.
    let users_write = automation(&h, &["users:write"]).await;
    let r = call(
        &h,
        "PUT",
        &format!("/users/{vid}/enrolment"),
        &users_write,
        Some(json!({"required": true})),
    )
    .await;
    problem(&r, 409);

    // Wrong codes sent all at once: each is counted before it is judged, so no more than the
    // limit (5) are ever judged.
    let replies = join_all((0..30).map(|_| {
        post_step(
            &thief,
            &page,
            "/login/code",
            &[("kind", "totp"), ("code", "123456")],
        )
    }))
    .await;
    let judged = replies
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let paused = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        judged <= 5 && judged + paused == 30,
        "{judged} judged, {paused} paused"
    );

    // Once the pause is over, the owner proves the app again (her proof is over ten minutes
    // old: a stolen session could not add a factor either), then adds a passkey.
    h.clock.advance(901);
    let (path, v) = code_request(&plain, "openid", "&acr_values=urn:example:strong");
    let page = owner.get(&path).await;
    assert!(page.text.contains("Verify it is you"), "{}", page.text);
    let code = code_now(&h, &secret);
    let enrol = post_step(
        &owner,
        &page,
        "/login/code",
        &[("kind", "totp"), ("code", &code)],
    )
    .await;
    assert!(
        enrol.text.contains("Set up a second factor"),
        "{}",
        enrol.text
    );
    let challenge = attr(
        &enrol.text[enrol.text.find("data-webauthn=\"create\"").expect("create")..],
        "data-challenge",
    );
    let auth = SoftAuthenticator::new(vid.as_bytes()).expect("authenticator");
    let reg = auth.register(RP_ID, ISSUER, &challenge);
    let done = post_step(
        &owner,
        &enrol,
        "/login/enrol",
        &[
            ("method", "passkey"),
            ("client_data_json", &reg.client_data_json),
            ("attestation_object", &reg.data),
            ("name", "Key"),
        ],
    )
    .await;
    let (id, _) = redeem(&h, &plain, &done, &v).await;
    assert_eq!(id["acr"], "urn:example:strong");

    // max_age=0 and prompt=login: only the password is proved again, and amr says only that.
    h.clock.advance(5);
    let (path, v) = code_request(&plain, "openid", "&max_age=0&prompt=login");
    let done = owner
        .login(&owner.get(&path).await, "victim", PASSWORD)
        .await;
    let (id, _) = redeem(&h, &plain, &done, &v).await;
    assert_eq!(id["amr"], json!(["pwd"]));

    // Removing a factor ends the sessions that proved it.
    let admin = automation(&h, &["administrator"]).await;
    let passkey = format!(
        "passkey:{}",
        tessera_core::secret::b64url(&auth.credential_id)
    );
    let r = call(
        &h,
        "DELETE",
        &format!("/users/{vid}/factors/{passkey}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (path, _) = code_request(&strict, "openid", "");
    assert!(
        owner.get(&path).await.text.contains("name=\"password\""),
        "signed out"
    );

    // A password-only token (users:self) cannot change the password of an account with a
    // second factor; the account page, after the factor, can.
    let selfie = crate::admin_api::self_service(&h).await;
    let own = crate::admin_api::own_token(&h, &selfie, "victim", &["users:self"]).await;
    let r = call(
        &h,
        "PUT",
        &format!("/users/{vid}/password"),
        &own,
        Some(json!({"password": "another long password", "current_password": PASSWORD})),
    )
    .await;
    problem(&r, 409);
}

/// `tessera apply` declares schemes and the applications that use them: created, then
/// unchanged the second time; an application naming a scheme the file does not declare (with
/// prune) is refused.
#[tokio::test]
async fn apply_files_declare_schemes_and_the_applications_using_them() {
    let h = setup().await;
    let admin = h.provider.admin(Caller::local());
    let spec: tessera_core::admin::Spec = serde_json::from_value(json!({
        "schemes": [{"name": "mfa", "methods": [["password", "totp"], ["passkey"]],
                     "acr": MFA, "factor_lifetime": 43200, "enrolment": false}],
        "clients": [{"name": "Declared", "type": "web", "redirect_uris": ["https://rp.example.com/cb"],
                     "authentication_scheme": "mfa"}]
    }))
    .expect("spec");
    let plan = admin.plan(&spec, false).await.expect("plan");
    admin.apply_plan(&plan).await.expect("apply");
    let scheme = admin.scheme("mfa").await.expect("scheme");
    assert_eq!(scheme.acr, MFA);
    assert!(!scheme.enrolment);
    assert_eq!(scheme.factor_lifetime, Some(43_200));
    let declared = admin
        .applications()
        .await
        .expect("apps")
        .into_iter()
        .find(|c| c.name == "Declared")
        .expect("declared app");
    assert_eq!(declared.browser.authentication_scheme, "mfa");
    let again = admin.plan(&spec, false).await.expect("plan");
    assert!(again.is_noop(), "{:?}", again.items);
    let orphan: tessera_core::admin::Spec = serde_json::from_value(json!({
        "clients": [{"name": "Orphan", "type": "web", "redirect_uris": ["https://rp.example.com/cb"],
                     "authentication_scheme": "mfa"}]
    }))
    .expect("spec");
    assert!(
        admin.plan(&orphan, true).await.is_err(),
        "mfa would be pruned"
    );
}

/// A set-up page opened before the user held a factor adds nothing once they hold one, and
/// passwordless answers naming someone's user handle do not lock their second factor.
#[tokio::test]
async fn a_stale_enrolment_page_and_a_named_user_handle_gain_nothing() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    let uid = h.user("ivan").await;
    let strict = app(&h, Some("mfa")).await;
    // The thief, with the password, opens the set-up page and waits.
    let thief = Browser::new(&h);
    let (path, _) = code_request(&strict, "openid", "");
    let stale = thief.login(&thief.get(&path).await, "ivan", PASSWORD).await;
    assert!(stale.text.contains("Set up a second factor"));
    // Ivan sets up his authenticator app.
    let owner = Browser::new(&h);
    let enrol = owner.login(&owner.get(&path).await, "ivan", PASSWORD).await;
    let (secret, _, _) = enrol_totp(&h, &owner, &enrol).await;
    // The thief's passkey on the old page: refused, nothing added.
    let challenge = attr(
        &stale.text[stale.text.find("data-webauthn=\"create\"").expect("create")..],
        "data-challenge",
    );
    let reg = SoftAuthenticator::new(uid.as_bytes())
        .expect("authenticator")
        .register(RP_ID, ISSUER, &challenge);
    let r = post_step(
        &thief,
        &stale,
        "/login/enrol",
        &[
            ("method", "passkey"),
            ("client_data_json", &reg.client_data_json),
            ("attestation_object", &reg.data),
            ("name", "Thief"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let failed = events(&h, "sign_in.factor_failed").await;
    assert_eq!(failed[0]["detail"]["reason"], "second_factor_not_proved");
    let user = h
        .provider
        .store
        .get_user(&uid)
        .await
        .expect("get")
        .expect("user");
    assert!(user.factors.passkeys.is_empty());

    // Six bogus passwordless answers naming ivan's user handle: his own code still works.
    for _ in 0..6 {
        let b = Browser::new(&h);
        let login = b.get(&path).await;
        let fake = [
            ("credential_id", "AAAA"),
            ("client_data_json", "e30"),
            ("authenticator_data", "AAAA"),
            ("signature", "AAAA"),
            ("user_handle", &tessera_core::secret::b64url(uid.as_bytes())),
        ];
        post_step(&b, &login, "/login/passkey", &fake).await;
    }
    h.clock.advance(30);
    let b = Browser::new(&h);
    let (path, v) = code_request(&strict, "openid", "");
    let factor = b.login(&b.get(&path).await, "ivan", PASSWORD).await;
    let code = code_now(&h, &secret);
    let done = post_step(
        &b,
        &factor,
        "/login/code",
        &[("kind", "totp"), ("code", &code)],
    )
    .await;
    let (id, _) = redeem(&h, &strict, &done, &v).await;
    assert_eq!(id["acr"], MFA);
}

/// amr names what counts for the request: a factor the application's scheme has aged out
/// (`factor_lifetime`) is not named, though the session once proved it.
#[tokio::test]
async fn amr_leaves_out_factors_a_scheme_aged_out() {
    let h = setup().await;
    scheme(&h, "mfa", MFA, true).await;
    h.provider
        .admin(Caller::local())
        .create_scheme(&SchemeSpec {
            name: "short".into(),
            methods: methods(&[&[Method::Password]]),
            acr: "urn:example:short".into(),
            factor_lifetime: Some(60),
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
    h.user("kim").await;
    let strict = app(&h, Some("mfa")).await;
    let short = app(&h, Some("short")).await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&strict, "openid", "");
    let enrol = b.login(&b.get(&path).await, "kim", PASSWORD).await;
    enrol_totp(&h, &b, &enrol).await;
    h.clock.advance(65);
    let (path, v) = code_request(&short, "openid", "");
    let done = b.login(&b.get(&path).await, "kim", PASSWORD).await;
    let (id, _) = redeem(&h, &short, &done, &v).await;
    assert_eq!(id["acr"], "urn:example:short");
    assert_eq!(id["amr"], json!(["pwd"]));
}

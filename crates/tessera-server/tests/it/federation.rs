//! Federation with a real upstream OpenID Provider: node-oidc-provider (`tests/peers`), driven
//! over plain HTTP as a browser would. Tessera signs users in there (code + PKCE, nonce, state,
//! RFC 9207 `iss`, client_secret_basic), verifies the ID token against the upstream's keys
//! (rotated in between), provisions users just in time with mapped claims and groups (never the
//! administrators'), records `fed` in `amr`, routes an email domain or `idp_hint` to the
//! upstream, refuses a replayed return, a blocked user and an email another account holds
//! unless the provider is trusted for it, and lists and unlinks identities.

use std::path::Path;

use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::{Caller, IdpSpec, SchemeSpec};
use tessera_core::factor::Method;
use tessera_core::federation::Mapping;
use tessera_core::model::ConsentMode;

use crate::flow::{code_request, enc, hidden, jwt_claims, redirect_params, Browser};
use crate::support::{Harness, Reply, TestClient, ISSUER};

/// The upstream OpenID Provider, stopped when dropped.
pub(crate) struct Peer {
    pub issuer: String,
    _child: tokio::process::Child,
}

fn peers_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers")
}

impl Peer {
    /// Starts `tests/peers/oidc-upstream.mjs` with `config` (installing it first if needed).
    pub(crate) async fn start(config: &Value) -> Peer {
        let dir = peers_dir();
        if !dir.join("node_modules/oidc-provider").exists() {
            let ok = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm (Node.js) is needed for the federation tests");
            assert!(ok.success(), "npm ci in tests/peers failed");
        }
        let (child, line) = crate::peers::started("the upstream peer", || {
            let mut node = tokio::process::Command::new("node");
            node.arg(dir.join("oidc-upstream.mjs"))
                .arg(config.to_string());
            node
        })
        .await;
        let ready: Value = serde_json::from_str(&line).expect("ready JSON");
        Peer {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            _child: child,
        }
    }
}

fn accounts() -> Value {
    json!({
        "alice": {"sub": "alice-sub", "email": "alice@corp.example", "email_verified": true,
                  "name": "Alice Upstream", "preferred_username": "alice",
                  "groups": ["staff", "tessera-admins"]},
        "bob": {"sub": "bob-sub", "email": "bob@corp.example", "email_verified": true,
                "name": "Bob", "preferred_username": "bob"},
    })
}

async fn peer() -> Peer {
    Peer::start(&json!({
        "port": 0,
        "clients": [{
            "client_id": "tessera", "client_secret": "upstream-secret",
            "redirect_uris": [format!("{ISSUER}/federation/corp/callback")],
            "token_endpoint_auth_method": "client_secret_basic",
        }],
        "accounts": accounts(),
    }))
    .await
}

fn corp(issuer: &str) -> IdpSpec {
    let mut mappings = tessera_core::federation::mapping::default_mappings(Default::default());
    mappings.push(Mapping {
        claim: "groups".into(),
        to: "groups".into(),
    });
    IdpSpec {
        name: "corp".into(),
        display_name: "Corp SSO".into(),
        issuer: Some(issuer.to_owned()),
        client_id: "tessera".into(),
        client_secret: Some("upstream-secret".into()),
        scopes: Some(vec![
            "openid".into(),
            "email".into(),
            "profile".into(),
            "groups".into(),
        ]),
        mappings: Some(mappings),
        domains: vec!["corp.example".into()],
        amr_map: [("pwd".to_owned(), "pwd".to_owned())].into_iter().collect(),
        ..IdpSpec::default()
    }
}

/// An upstream provider `corp`, a scheme letting users in with it or a password, and a
/// first-party application using the scheme.
async fn setup(peer: &Peer) -> (Harness, TestClient) {
    let h = Harness::new().await;
    let admin = h.provider.admin(Caller::local());
    admin.create_idp(&corp(&peer.issuer)).await.expect("idp");
    admin
        .create_scheme(&SchemeSpec {
            name: "corp".into(),
            methods: vec![vec![Method::Upstream], vec![Method::Password]],
            acr: "urn:example:corp".into(),
            identity_providers: vec!["corp".into()],
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
    let c = h
        .web_app(|s| {
            s.authentication_scheme = Some("corp".into());
            s.consent = Some(ConsentMode::AutoAccept);
        })
        .await;
    (h, c)
}

/// The user agent at the upstream: its own cookies (by name; the peer's names differ), no
/// redirects followed.
struct Agent {
    http: reqwest::Client,
    jar: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

fn upstream_agent() -> Agent {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Agent {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        jar: Default::default(),
    }
}

impl Agent {
    async fn send(&self, b: reqwest::RequestBuilder) -> (u16, String) {
        let (status, location, _) = self.fetch(b).await;
        (status, location)
    }

    /// The status, `Location` and body of a request with the agent's cookies.
    async fn fetch(&self, b: reqwest::RequestBuilder) -> (u16, String, String) {
        let cookie: Vec<String> = self
            .jar
            .lock()
            .expect("agent")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let r = b
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .expect("upstream");
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().expect("agent");
            let pair = v.split(';').next().expect("agent");
            if let Some((k, val)) = pair.split_once('=') {
                self.jar
                    .lock()
                    .expect("agent")
                    .insert(k.to_owned(), val.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("agent").to_owned())
            .unwrap_or_default();
        let body = r.text().await.unwrap_or_default();
        (status, location, body)
    }

    /// Confirms a logout at the upstream from its `end_session_endpoint` URL; where it sends
    /// the browser then.
    async fn log_out_at_upstream(&self, url: &str, issuer: &str) -> String {
        let (status, _, page) = self.fetch(self.http.get(url)).await;
        assert_eq!(status, 200, "{page}");
        let xsrf = page
            .split("name=\"xsrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the upstream's logout form")
            .to_owned();
        let form = [("xsrf", xsrf.as_str()), ("logout", "yes")];
        let (status, location, _) = self
            .fetch(
                self.http
                    .post(format!("{issuer}/session/end/confirm"))
                    .form(&form),
            )
            .await;
        assert_eq!(status, 303);
        location
    }
}

/// Signs `login` in at the upstream from its authorization URL; returns Tessera's callback
/// path and query.
async fn at_upstream(agent: &Agent, auth_url: &str, login: &str) -> String {
    let (status, interaction) = agent.send(agent.http.get(auth_url)).await;
    assert_eq!(status, 303);
    let form = [("login", login), ("password", "secret")];
    let (status, resume) = agent
        .send(agent.http.post(format!("{interaction}/login")).form(&form))
        .await;
    assert_eq!(status, 303);
    let (status, back) = agent.send(agent.http.get(resume)).await;
    assert_eq!(status, 303);
    back.strip_prefix(ISSUER)
        .expect("back at Tessera")
        .to_owned()
}

/// The login page's upstream button, pressed: the upstream's authorization URL.
async fn press_button(b: &Browser<'_>, page: &Reply) -> String {
    press(b, page, "Corp SSO", "corp").await
}

/// The sign-in page's button `label` for the provider `idp`, pressed: where the browser goes.
pub(crate) async fn press(b: &Browser<'_>, page: &Reply, label: &str, idp: &str) -> String {
    assert!(
        page.text.contains(&format!("Sign in with {label}")),
        "{}",
        page.text
    );
    let r = b
        .post(
            "/login/upstream",
            &enc(&[
                ("interaction", &hidden(&page.text, "interaction")),
                ("csrf", &hidden(&page.text, "csrf")),
                ("idp", idp),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    r.header("location").to_owned()
}

async fn tokens(h: &Harness, b: &Browser<'_>, c: &TestClient, r: &Reply, v: &str) -> Value {
    let p = redirect_params(r);
    assert!(p.contains_key("code"), "{p:?} / {}", r.text);
    let _ = b;
    let t = h.exchange(c, &p["code"], Some(v)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    t.json
}

#[tokio::test]
async fn users_sign_in_at_an_upstream_openid_provider() {
    let peer = peer().await;
    let (h, c) = setup(&peer).await;
    let b = Browser::new(&h);
    let agent = upstream_agent();

    // The login page offers the upstream beside the password.
    let (path, verifier) = code_request(&c, "openid email profile", "");
    let page = b.get(&path).await;
    assert!(page.text.contains("name=\"password\""));
    let auth = press_button(&b, &page).await;
    assert!(auth.starts_with(&peer.issuer), "{auth}");
    for p in [
        "code_challenge_method=S256",
        "nonce=",
        "state=",
        "client_id=tessera",
    ] {
        assert!(auth.contains(p), "{p} in {auth}");
    }
    let back = at_upstream(&agent, &auth, "alice").await;
    let done = b.get(&back).await;
    let t = tokens(&h, &b, &c, &done, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:example:corp");
    let amr: Vec<&str> = id["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(amr, ["fed", "pwd"], "fed, and the upstream's pwd mapped");
    // Just in time: one user, the upstream's groups without the administrators'.
    let admin = h.provider.admin(Caller::local());
    let alice = admin.user("alice").await.expect("provisioned");
    assert_eq!(alice.claims["email"], "alice@corp.example");
    assert_eq!(alice.claims["name"], "Alice Upstream");
    // Not trusted for email: the address came, its verification did not.
    assert_eq!(alice.claims["email_verified"], false);
    assert_eq!(alice.groups, ["staff"]);
    assert!(alice.password_hash.is_none());
    let links = admin.identities("alice").await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].subject, "alice-sub");

    // The return is single-use: replayed, it is refused.
    let again = b.get(&back).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text);

    // The upstream rotates its keys: the next ID token has a kid Tessera fetches anew; the
    // second sign-in finds the same user.
    let (status, _) = agent
        .send(agent.http.post(format!("{}/__rotate", peer.issuer)))
        .await;
    assert!((200..300).contains(&status));
    // An unknown kid refetches the upstream's keys, at most every ten seconds.
    h.clock.advance(11);
    let b2 = Browser::new(&h);
    let (path, verifier) = code_request(&c, "openid", "&prompt=login");
    let page = b2.get(&path).await;
    let auth = press_button(&b2, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "alice").await;
    let done = b2.get(&back).await;
    let t = tokens(&h, &b2, &c, &done, &verifier).await;
    let id2 = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id2["sub"], id["sub"]);
    assert_eq!(admin.users().await.unwrap().len(), 1);

    // A blocked user is blocked through every linked identity.
    admin
        .update_user(
            "alice",
            &tessera_core::admin::UserPatch {
                blocked: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b3 = Browser::new(&h);
    let (path, _) = code_request(&c, "openid", "");
    let page = b3.get(&path).await;
    let auth = press_button(&b3, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "alice").await;
    let refused = b3.get(&back).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text.contains("cannot sign in"), "{}", refused.text);

    // Alice has no password or passkey: her only identity stays linked.
    let last = admin.unlink_identity("alice", "corp", "alice-sub").await;
    assert!(
        matches!(last, Err(tessera_core::admin::AdminError::Conflict(_))),
        "{last:?}"
    );
    assert_eq!(admin.identities("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_email_another_account_holds_links_only_when_trusted() {
    let peer = peer().await;
    let (h, c) = setup(&peer).await;
    let admin = h.provider.admin(Caller::local());
    let local = admin
        .create_user(&tessera_core::admin::UserSpec {
            username: "bob".into(),
            password: Some(crate::flow::PASSWORD.into()),
            claims: json!({"email": "bob@corp.example"})
                .as_object()
                .cloned()
                .unwrap(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;

    // Not trusted for email: refused, and the local account is left alone.
    let b = Browser::new(&h);
    let (path, _) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "bob").await;
    let refused = b.get(&back).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text.contains("exists already"), "{}", refused.text);
    assert!(admin.identities(&local).await.unwrap().is_empty());

    // Trusted: the upstream's verified email links to the one account holding it.
    let mut trusted = corp(&peer.issuer);
    trusted.link_by_email = true;
    trusted.client_secret = None;
    admin.update_idp(&trusted).await.expect("trusted");
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&c, "openid email", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "bob").await;
    let done = b.get(&back).await;
    let t = tokens(&h, &b, &c, &done, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], local.as_str());
    let bob = admin.user("bob").await.unwrap();
    assert_eq!(
        bob.claims["email_verified"], true,
        "taken from a trusted upstream"
    );
    let links = admin.identities(&local).await.unwrap();
    assert_eq!(links.len(), 1);

    // An administrator is never linked by email.
    admin
        .update_user(
            "bob",
            &tessera_core::admin::UserPatch {
                groups: Some(vec!["tessera-admins".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    admin
        .unlink_identity("bob", "corp", "bob-sub")
        .await
        .unwrap();
    let b = Browser::new(&h);
    let (path, _) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "bob").await;
    let refused = b.get(&back).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert!(admin.identities(&local).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_email_domain_or_idp_hint_goes_straight_to_the_upstream() {
    let peer = peer().await;
    let (h, c) = setup(&peer).await;
    let b = Browser::new(&h);
    // login_hint with the provider's domain.
    let (path, _) = code_request(&c, "openid", "&login_hint=alice%40corp.example");
    let r = b.get(&path).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.header("location").starts_with(&peer.issuer));
    assert!(r
        .header("location")
        .contains("login_hint=alice%40corp.example"));
    // idp_hint and Keycloak's kc_idp_hint.
    for hint in ["idp_hint", "kc_idp_hint"] {
        let (path, _) = code_request(&c, "openid", &format!("&{hint}=corp"));
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{hint}");
        assert!(r.header("location").starts_with(&peer.issuer));
    }
    // An email typed on the login page.
    let (path, _) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let r = b.login(&page, "carol@corp.example", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.header("location").starts_with(&peer.issuer));
    // A hint for a provider the application's scheme does not name: the login page.
    let (path, _) = code_request(&c, "openid", "&idp_hint=elsewhere");
    assert_eq!(b.get(&path).await.status, StatusCode::OK);
}

#[tokio::test]
async fn identity_providers_are_a_power_over_users() {
    let peer = peer().await;
    let h = crate::admin_api::setup().await;
    let token = crate::admin_api::automation(&h, &["config:write"]).await;
    let r = crate::admin_api::call(
        &h,
        "POST",
        "/idps",
        &token,
        Some(serde_json::to_value(corp(&peer.issuer)).unwrap_or_default()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let token = crate::admin_api::automation(&h, &["config:write", "users:write"]).await;
    let mut spec = serde_json::to_value(corp(&peer.issuer)).unwrap();
    spec["client_secret"] = json!("upstream-secret");
    let r = crate::admin_api::call(&h, "POST", "/idps", &token, Some(spec)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = r.json;
    assert_eq!(v["has_client_secret"], true);
    assert!(v.get("client_secret").is_none() && v.get("secret_ciphertext").is_none());
    assert_eq!(
        v["redirect_uri"],
        format!("{ISSUER}/federation/corp/callback")
    );
    // Review regression: an application exchanging a provider's tokens speaks for the users
    // they name, with an actor token too: config:write alone may not make one.
    let config_only = crate::admin_api::automation(&h, &["config:write"]).await;
    let app = json!({"name": "delegating exchanger", "type": "m2m",
                     "grant_types": ["token_exchange"], "exchange_identity_providers": ["corp"]});
    let r =
        crate::admin_api::call(&h, "POST", "/applications", &config_only, Some(app.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = crate::admin_api::call(&h, "POST", "/applications", &token, Some(app)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Review regressions: a provider an administrator's identity is linked at is protected (whoever
/// repoints it signs in as them), and a stored secret never follows a provider to a new place.
#[tokio::test]
async fn an_administrators_provider_is_protected_and_its_secret_stays_home() {
    let peer = peer().await;
    let (h, c) = setup(&peer).await;
    let admin = h.provider.admin(Caller::local());
    admin.ensure_admin_api().await.expect("admin API");
    // Alice arrives from the upstream.
    let b = Browser::new(&h);
    let (path, _) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "alice").await;
    assert_eq!(b.get(&back).await.status, StatusCode::SEE_OTHER);

    let token =
        crate::admin_api::automation(&h, &["config:read", "config:write", "users:write"]).await;
    let put = |spec: Value| {
        let token = token.clone();
        let h = &h;
        async move { crate::admin_api::call(h, "PUT", "/idps/corp", &token, Some(spec)).await }
    };
    let mut spec = serde_json::to_value(corp(&peer.issuer)).expect("spec");
    spec.as_object_mut()
        .expect("object")
        .remove("client_secret");
    spec["display_name"] = json!("Corp");
    let r = put(spec.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Moved elsewhere without the secret: refused, the secret is not sent there.
    let mut moved = spec.clone();
    moved["token_endpoint"] = json!("https://collector.example.net/token");
    let r = put(moved.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("client_secret"), "{}", r.text);
    moved["client_secret"] = json!("upstream-secret");
    moved["token_endpoint"] = Value::Null;
    moved["issuer"] = json!("https://other-idp.example.net");
    assert_eq!(
        put(moved).await.status,
        StatusCode::OK,
        "knowing it is enough"
    );
    assert_eq!(
        put(spec.clone()).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut back_home = spec.clone();
    back_home["client_secret"] = json!("upstream-secret");
    assert_eq!(put(back_home).await.status, StatusCode::OK);

    // Alice becomes an administrator: her provider is now theirs to change, not config:write's.
    admin
        .update_user(
            "alice",
            &tessera_core::admin::UserPatch {
                groups: Some(vec!["tessera-admins".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("admin");
    spec["display_name"] = json!("Evil");
    let r = put(spec).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = crate::admin_api::call(&h, "DELETE", "/idps/corp", &token, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        admin.idp("corp").await.expect("idp").spec.display_name,
        "Corp"
    );
}

/// Review regressions: the account page offers only the providers a scheme names, and an
/// administrator links an identity only in a sign-in the Admin Portal's scheme accepts.
#[tokio::test]
async fn an_administrator_links_identities_only_as_the_portal_asks() {
    let peer = peer().await;
    let (h, _) = setup(&peer).await;
    let admin = h.provider.admin(Caller::local());
    admin.ensure_admin_api().await.expect("admin API");
    let mut lone = corp(&peer.issuer);
    lone.name = "lone".into();
    lone.display_name = "Lone IdP".into();
    lone.domains = vec![];
    admin.create_idp(&lone).await.expect("lone");
    admin
        .create_scheme(&SchemeSpec {
            name: "strong".into(),
            methods: vec![vec![Method::Password, Method::Totp]],
            acr: "urn:example:strong".into(),
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
    admin
        .update_client(
            tessera_core::admin::PORTAL_CLIENT,
            &tessera_core::admin::ClientPatch {
                authentication_scheme: Some("strong".into()),
                ..Default::default()
            },
        )
        .await
        .expect("portal scheme");
    h.user("dave").await;
    let root = h.user("root").await;
    admin
        .update_user(
            &root,
            &tessera_core::admin::UserPatch {
                groups: Some(vec!["tessera-admins".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("admin");

    let account = |name: &'static str| {
        let h = &h;
        async move {
            let b = Browser::new(h);
            let login = follow(&b, b.get("/account").await).await;
            let page = follow(&b, b.login(&login, name, crate::flow::PASSWORD).await).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            let csrf = hidden(&page.text, "csrf");
            (b, page, csrf)
        }
    };
    let (b, page, csrf) = account("dave").await;
    assert!(page.text.contains("Corp SSO"), "{}", page.text);
    assert!(!page.text.contains("Lone IdP"), "no scheme names it");
    let r = b
        .post(
            "/account/identities/link",
            &enc(&[("csrf", &csrf), ("idp", "lone")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = b
        .post(
            "/account/identities/link",
            &enc(&[("csrf", &csrf), ("idp", "corp")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.header("location").starts_with(&peer.issuer));

    // The administrator signed in with a password; the Portal asks for an app code too.
    let (b, _, csrf) = account("root").await;
    let r = b
        .post(
            "/account/identities/link",
            &enc(&[("csrf", &csrf), ("idp", "corp")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("Admin Portal"), "{}", r.text);
}

/// Follows redirects within Tessera until a page.
async fn follow(b: &Browser<'_>, mut r: Reply) -> Reply {
    for _ in 0..10 {
        if r.status != StatusCode::SEE_OTHER {
            return r;
        }
        let loc = r.header("location").replace(ISSUER, "");
        r = b.get(&loc).await;
    }
    r
}

/// Changes what the upstream says about `login`.
async fn upstream_account(peer: &Peer, login: &str, claims: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/__account?login={login}", peer.issuer))
        .json(&claims)
        .send()
        .await
        .expect("peer");
    assert!(r.status().is_success());
}

/// Signs `login` in at the upstream through the application; Tessera's answer.
async fn sign_in_as(h: &Harness, c: &TestClient, login: &str) -> (Reply, String) {
    let b = Browser::new(h);
    let (path, verifier) = code_request(c, "openid email", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, login).await;
    (b.get(&back).await, verifier)
}

/// Review regressions: a trusted provider links by email only to a user who owns the address
/// (not one an untrusted provider gave it unverified), later sign-ins never take another
/// account's address, and a just-in-time username is never another user's id.
#[tokio::test]
async fn email_links_only_to_an_owned_address_and_never_takes_one_later() {
    let peer = peer().await;
    let (h, c) = setup(&peer).await;
    let admin = h.provider.admin(Caller::local());
    // The squatter's account was made with the victim's address, unverified (as an untrusted
    // provider leaves it).
    let squatter = admin
        .create_user(&tessera_core::admin::UserSpec {
            username: "squatter".into(),
            claims: json!({"email": "victim@corp.example", "email_verified": false})
                .as_object()
                .cloned()
                .expect("claims"),
            ..Default::default()
        })
        .await
        .expect("squatter")
        .id;
    let mut trusted = corp(&peer.issuer);
    trusted.link_by_email = true;
    trusted.client_secret = None;
    admin.update_idp(&trusted).await.expect("trusted");
    upstream_account(
        &peer,
        "victim",
        json!({"sub": "victim-sub", "email": "victim@corp.example", "email_verified": true,
               "preferred_username": "victim"}),
    )
    .await;
    let (r, verifier) = sign_in_as(&h, &c, "victim").await;
    let t = tokens(&h, &Browser::new(&h), &c, &r, &verifier).await;
    let sub = jwt_claims(t["id_token"].as_str().expect("id token"))["sub"].clone();
    assert_ne!(sub, squatter.as_str(), "not linked to the squatter");
    assert!(admin
        .identities(&squatter)
        .await
        .expect("identities")
        .is_empty());

    // Later the upstream says the victim's address is the administrator's: not taken.
    let root = h.user("root").await;
    admin
        .update_user(
            &root,
            &tessera_core::admin::UserPatch {
                claims: json!({"email": "root@corp.example", "email_verified": true})
                    .as_object()
                    .cloned()
                    .expect("claims"),
                ..Default::default()
            },
        )
        .await
        .expect("root's email");
    upstream_account(
        &peer,
        "victim",
        json!({"sub": "victim-sub", "email": "ROOT@corp.example", "email_verified": true}),
    )
    .await;
    let (r, _) = sign_in_as(&h, &c, "victim").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let victim = admin.user("victim").await.expect("victim");
    assert_eq!(victim.claims["email"], "victim@corp.example");
    // A free address is taken.
    upstream_account(
        &peer,
        "victim",
        json!({"sub": "victim-sub", "email": "victim2@corp.example", "email_verified": true}),
    )
    .await;
    sign_in_as(&h, &c, "victim").await;
    let victim = admin.user("victim").await.expect("victim");
    assert_eq!(victim.claims["email"], "victim2@corp.example");

    // A username that is another user's id is not given.
    upstream_account(
        &peer,
        "mimic",
        json!({"sub": "mimic-sub", "preferred_username": root.clone()}),
    )
    .await;
    let (r, _) = sign_in_as(&h, &c, "mimic").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let mimic = admin
        .identities(&root)
        .await
        .expect("root has none")
        .is_empty();
    assert!(mimic);
    assert_eq!(
        admin.user(&root).await.expect("root").username,
        "root",
        "the id still names root"
    );
    let users = admin.users().await.expect("users");
    let made = users
        .iter()
        .find(|u| !["root", "victim", "squatter"].contains(&u.username.as_str()))
        .expect("the mimic was made");
    assert!(
        !made.username.eq_ignore_ascii_case(&root),
        "{}",
        made.username
    );
}

/// A receiver of back-channel logout tokens on loopback: the URI, and the tokens it got.
async fn logout_token_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let _ = tx.send(token);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/bcl"), rx)
}

/// Logout in both directions: Tessera's logout goes on to the upstream's end_session endpoint
/// with the upstream ID token and comes back to the application; the upstream's back-channel
/// logout token ends the Tessera session it opened (once: a replay, a forged token or an ID token
/// passed off as one is refused).
#[tokio::test]
async fn logout_goes_on_to_the_upstream_and_comes_back_from_it() {
    let (bcl, mut tokens_out) = logout_token_receiver().await;
    let peer = Peer::start(&json!({
        "port": 0,
        "clients": [{
            "client_id": "tessera", "client_secret": "upstream-secret",
            "redirect_uris": [format!("{ISSUER}/federation/corp/callback")],
            "post_logout_redirect_uris": [format!("{ISSUER}/federation/corp/logged-out")],
            "backchannel_logout_uri": bcl,
            "backchannel_logout_session_required": true,
        }],
        "accounts": accounts(),
    }))
    .await;
    let (h, c) = setup(&peer).await;
    let view = h
        .provider
        .admin(Caller::local())
        .idp("corp")
        .await
        .expect("view");
    assert_eq!(
        view.post_logout_redirect_uri,
        format!("{ISSUER}/federation/corp/logged-out")
    );
    assert_eq!(
        view.backchannel_logout_uri,
        format!("{ISSUER}/federation/corp/backchannel-logout")
    );

    // Signed in at the upstream; the application logs the user out with its ID token.
    let agent = upstream_agent();
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&agent, &auth, "alice").await;
    let t = tokens(&h, &b, &c, &b.get(&back).await, &verifier).await;
    let hint = t["id_token"].as_str().expect("id token");
    let out = b
        .get(&format!(
            "/logout?id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Frp.example.com%2Fbye&state=s1"
        ))
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    let upstream_logout = out
        .text
        .split("id=\"continue\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("continue link")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(
        upstream_logout.starts_with(&format!("{}/session/end", peer.issuer)),
        "{upstream_logout}"
    );
    assert!(upstream_logout.contains("id_token_hint="));
    let back = agent
        .log_out_at_upstream(&upstream_logout, &peer.issuer)
        .await;
    let back = back
        .strip_prefix(ISSUER)
        .unwrap_or_else(|| panic!("back at Tessera: {back}"));
    assert!(
        back.starts_with("/federation/corp/logged-out?state="),
        "{back}"
    );
    // The upstream told Tessera too (its session there ended): nothing is left to end.
    let told = tokio::time::timeout(std::time::Duration::from_secs(5), tokens_out.recv())
        .await
        .expect("a logout token")
        .expect("token");
    let r = h
        .send(
            http::Request::post("/federation/corp/backchannel-logout")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(enc(&[("logout_token", &told)])))
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = b.get(back).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.header("location"),
        "https://rp.example.com/bye?state=s1"
    );
    // Once only.
    let again = b.get(back).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.text.contains("signed out"), "{}", again.text);

    // Signed in again; this time the user logs out at the upstream.
    let agent = upstream_agent();
    let b = Browser::new(&h);
    let (path, _) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&agent, &auth, "alice").await;
    assert_eq!(b.get(&back).await.status, StatusCode::SEE_OTHER);
    let (path, _) = code_request(&c, "openid", "&prompt=none");
    let r = b.get(&path).await;
    assert!(redirect_params(&r).contains_key("code"), "signed in");
    agent
        .log_out_at_upstream(&format!("{}/session/end", peer.issuer), &peer.issuer)
        .await;
    let token = tokio::time::timeout(std::time::Duration::from_secs(5), tokens_out.recv())
        .await
        .expect("a logout token")
        .expect("token");
    let post = |token: String| {
        let h = &h;
        async move {
            h.send(
                http::Request::post("/federation/corp/backchannel-logout")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from(enc(&[("logout_token", &token)])))
                    .expect("request"),
            )
            .await
        }
    };
    // A forged one (the payload changed, the signature kept) is refused.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = jwt_claims(&token);
    claims["sub"] = json!("bob-sub");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.to_string()
        ),
        parts[2]
    );
    let r = post(forged).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_request");
    // An ID token is not a logout token.
    let r = post(t["id_token"].as_str().expect("id").to_owned()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = post(token.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = b.get(&path).await;
    assert_eq!(
        redirect_params(&r).get("error").map(String::as_str),
        Some("login_required"),
        "the session ended"
    );
    let replay = post(token).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text);
    assert!(replay.text.contains("used before"), "{}", replay.text);
}

/// Signs `login` in at the upstream as its own client `mobile` (as a mobile app would, with no
/// Tessera in between); the ID token it gets.
async fn mobile_id_token(peer: &Peer, login: &str, nonce: &str) -> String {
    mobile_tokens(peer, login, nonce).await["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned()
}

/// The mobile app's token answer at the upstream (ID token and access token).
async fn mobile_tokens(peer: &Peer, login: &str, nonce: &str) -> Value {
    use tessera_core::secret::{b64url, sha256};
    let verifier = b64url(&[7u8; 32]);
    let challenge = b64url(&sha256(verifier.as_bytes()));
    let redirect = format!("{ISSUER}/mobile-cb");
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", "mobile")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("redirect_uri", &redirect)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("nonce", nonce)
        .append_pair("state", "s-1")
        .finish();
    let agent = upstream_agent();
    let back = at_upstream(&agent, &format!("{}/auth?{q}", peer.issuer), login).await;
    let code = form_urlencoded::parse(back.split_once('?').expect("query").1.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let t: Value = agent
        .http
        .post(format!("{}/token", peer.issuer))
        .basic_auth("mobile", Some("mobile-secret"))
        .form(&form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    t
}

/// Seed 002's "Allowed IDPs": an application allowed the provider exchanges an ID token a mobile
/// app got there for a token of the user it names here (made just in time, in a grant of their
/// own); once only, not by an application not allowed it, and not for a blocked user.
#[tokio::test]
async fn an_upstream_id_token_is_exchanged_for_its_users_token() {
    use tessera_core::admin::ClientSpec;
    use tessera_core::model::{ClientType, GrantType};
    let peer = Peer::start(&json!({
        "port": 0,
        "clients": [
            {"client_id": "tessera", "client_secret": "upstream-secret",
             "redirect_uris": [format!("{ISSUER}/federation/corp/callback")]},
            {"client_id": "mobile", "client_secret": "mobile-secret",
             "redirect_uris": [format!("{ISSUER}/mobile-cb")],
             "id_token_signed_response_alg": "ES256"},
        ],
        "accounts": accounts(),
    }))
    .await;
    let (h, _) = setup(&peer).await;
    let admin = h.provider.admin(Caller::local());
    let exchanger = |name: &str, idps: Vec<String>| ClientSpec {
        grant_types: Some(vec![GrantType::TokenExchange]),
        impersonation_allowed: Some(true),
        exchange_identity_providers: idps,
        apis: vec![crate::support::API.into()],
        scopes: vec!["read:things".into()],
        ..ClientSpec::new(name, ClientType::M2m)
    };
    // Only an application with the token exchange grant names providers, and only real ones.
    let wrong = admin
        .create_client(&ClientSpec {
            grant_types: Some(vec![GrantType::ClientCredentials]),
            ..exchanger("no grant", vec!["corp".into()])
        })
        .await;
    assert!(wrong.is_err(), "{wrong:?}");
    assert!(admin
        .create_client(&exchanger("ghost", vec!["nowhere".into()]))
        .await
        .is_err());
    let app = h
        .client_with(exchanger("mobile backend", vec!["corp".into()]))
        .await;
    let other = h.client_with(exchanger("not allowed", vec![])).await;
    let body = |t: &str| {
        enc(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", t),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("resource", crate::support::API),
        ])
    };

    // Issued to the mobile app's own client there: refused until the provider accepts it.
    let token = mobile_id_token(&peer, "alice", "n-1").await;
    let r = h.post("/token", Some(&app.basic()), &body(&token)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("audience"), "{}", r.text);
    let mut spec = corp(&peer.issuer);
    spec.client_secret = None;
    spec.exchange_audiences = vec!["mobile".into()];
    admin.update_idp(&spec).await.expect("exchange audience");
    // Review regressions: refused before the ID token is judged, so nothing is made: a scope
    // the application may not ask for, a bad actor token.
    let mut with_scope = body(&token);
    with_scope.push_str("&scope=write%3Aeverything");
    let r = h.post("/token", Some(&app.basic()), &with_scope).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let mut with_actor = body(&token);
    with_actor.push_str(
        "&actor_token=garbage&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
    );
    let r = h.post("/token", Some(&app.basic()), &with_actor).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(admin.user("alice").await.is_err(), "no one was made");
    let r = h.post("/token", Some(&app.basic()), &body(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["scope"], "read:things");
    let claims = jwt_claims(r.json["access_token"].as_str().expect("at"));
    let alice = admin.user("alice").await.expect("made just in time");
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["aud"], crate::support::API);
    let grants = admin.user_grants(&alice.id).await.expect("grants");
    assert_eq!(grants.len(), 1, "{grants:?}");

    // Once only; also with the ECDSA signature's twin (r, n-s), which verifies too.
    let r = h.post("/token", Some(&app.basic()), &body(&token)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("already exchanged"), "{}", r.text);
    let twin = ecdsa_twin(&token);
    assert_ne!(twin, token);
    let r = h.post("/token", Some(&app.basic()), &body(&twin)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("already exchanged"), "{}", r.text);
    // Not by an application not allowed the provider.
    let fresh = mobile_id_token(&peer, "alice", "n-2").await;
    let r = h.post("/token", Some(&other.basic()), &body(&fresh)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Not for a blocked user.
    admin
        .update_user(
            "alice",
            &tessera_core::admin::UserPatch {
                blocked: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("block");
    let r = h.post("/token", Some(&app.basic()), &body(&fresh)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("Blocked"), "{}", r.text);
    // The mobile app's access token at the upstream, with subject_issuer naming the provider
    // (as Keycloak has it): its userinfo says whose it is. Unblocked bob this time.
    let t = mobile_tokens(&peer, "bob", "n-3").await;
    let at = t["access_token"].as_str().expect("access token");
    let by_access = |issuer: &str| {
        enc(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", at),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("subject_issuer", issuer),
            ("resource", crate::support::API),
        ])
    };
    let r = h
        .post("/token", Some(&other.basic()), &by_access("corp"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not allowed: {}", r.text);
    let r = h
        .post("/token", Some(&app.basic()), &by_access("corp"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bob = admin.user("bob").await.expect("made just in time");
    assert_eq!(
        jwt_claims(r.json["access_token"].as_str().expect("at"))["sub"],
        bob.id.as_str()
    );
    let r = h
        .post("/token", Some(&app.basic()), &by_access("corp"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "once: {}", r.text);

    // A provider an application exchanges tokens of is not deleted from under it.
    let deleted = admin.delete_idp("corp").await;
    assert!(deleted.is_err(), "{deleted:?}");
}

/// A scheme asking for a local authenticator app after the upstream: the first sign-in sets
/// one up, the next asks for its code; the ID token says fed, otp and mfa. And a user links the
/// upstream to their existing account from the account page, then signs in with it as themself.
#[tokio::test]
async fn upstream_then_a_local_code_and_linking_from_the_account_page() {
    let peer = peer().await;
    let (h, _) = setup(&peer).await;
    let admin = h.provider.admin(Caller::local());
    admin.ensure_admin_api().await.expect("the account page");
    admin
        .create_scheme(&SchemeSpec {
            name: "corp-mfa".into(),
            methods: vec![vec![Method::Upstream, Method::Totp]],
            acr: "urn:example:corp-mfa".into(),
            identity_providers: vec!["corp".into()],
            enrolment: Some(true),
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
    let strict = h
        .web_app(|s| {
            s.authentication_scheme = Some("corp-mfa".into());
            s.consent = Some(ConsentMode::AutoAccept);
        })
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&strict, "openid", "");
    let page = b.get(&path).await;
    assert!(!page.text.contains("name=\"password\""), "upstream only");
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "bob").await;
    let enrol = b.get(&back).await;
    let (secret, _, done) = crate::mfa::enrol_totp(&h, &b, &enrol).await;
    let t = tokens(&h, &b, &strict, &done, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().expect("id token"));
    assert_eq!(id["acr"], "urn:example:corp-mfa");
    assert_eq!(id["amr"], json!(["fed", "pwd", "otp", "mfa"]));
    // Next time: the upstream, then the code.
    h.clock.advance(31);
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&strict, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "bob").await;
    let ask = b.get(&back).await;
    assert!(ask.text.contains("name=\"code\""), "{}", ask.text);
    let code = crate::mfa::code_now(&h, &secret);
    let done = crate::mfa::post_step(&b, &ask, "/login/code", &[("code", &code)]).await;
    let t = tokens(&h, &b, &strict, &done, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().expect("id token"));
    assert!(id["amr"].as_array().expect("amr").contains(&json!("otp")));

    // Carol has a local account; she links the upstream on her account page.
    let carol = h.user("carol").await;
    let b = Browser::new(&h);
    let login = follow(&b, b.get("/account").await).await;
    let page = follow(&b, b.login(&login, "carol", crate::flow::PASSWORD).await).await;
    let csrf = hidden(&page.text, "csrf");
    let go = b
        .post(
            "/account/identities/link",
            &enc(&[("csrf", &csrf), ("idp", "corp")]),
        )
        .await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.text);
    let back = at_upstream(&upstream_agent(), go.header("location"), "alice").await;
    let linked = b.get(&back).await;
    assert_eq!(linked.header("location"), "/account?notice=linked");
    let ids = admin.identities(&carol).await.expect("identities");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].subject, "alice-sub");
    // Signing in at the upstream as alice-sub now reaches carol.
    let c = h
        .web_app(|s| {
            s.authentication_scheme = Some("corp".into());
            s.consent = Some(ConsentMode::AutoAccept);
        })
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&c, "openid", "");
    let page = b.get(&path).await;
    let auth = press_button(&b, &page).await;
    let back = at_upstream(&upstream_agent(), &auth, "alice").await;
    let t = tokens(&h, &b, &c, &b.get(&back).await, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().expect("id token"));
    assert_eq!(id["sub"], carol.as_str());
    // The same identity cannot be linked to another account.
    let dave = h.user("dave").await;
    let b = Browser::new(&h);
    let login = follow(&b, b.get("/account").await).await;
    let page = follow(&b, b.login(&login, "dave", crate::flow::PASSWORD).await).await;
    let csrf = hidden(&page.text, "csrf");
    let go = b
        .post(
            "/account/identities/link",
            &enc(&[("csrf", &csrf), ("idp", "corp")]),
        )
        .await;
    let back = at_upstream(&upstream_agent(), go.header("location"), "alice").await;
    let refused = b.get(&back).await;
    assert_eq!(refused.header("location"), "/account?notice=not_linked");
    assert!(admin.identities(&dave).await.expect("ids").is_empty());
}

/// The same ES256 JWT with the other valid signature: (r, n - s) for P-256's order n.
fn ecdsa_twin(jwt: &str) -> String {
    use base64::Engine;
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, sig) = jwt.rsplit_once('.').expect("a JWT");
    let mut raw = b64.decode(sig).expect("base64");
    assert_eq!(raw.len(), 64, "an ES256 signature");
    let s: Vec<u8> = raw[32..].to_vec();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        raw[32 + i] = u8::try_from(d).expect("a byte");
    }
    format!("{input}.{}", b64.encode(raw))
}

/// Another installation of Tessera as the upstream OpenID Provider: the `tessera` binary on its
/// own port, set up from its CLI. Discovery, its own sign-in page over real HTTP, its ES256 ID
/// token verified against its `/jwks`, and the user made here from its claims.
#[tokio::test]
async fn another_tessera_is_an_upstream_openid_provider() {
    use crate::process::{cli_env, free_port, json as json_out, Server};
    let _serial = crate::process::exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}");
    let here = "http://127.0.0.1:8080";
    let env = [("TESSERA_ISSUER", upstream.as_str())];
    cli_env(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "zoe",
            "--claim",
            "email=zoe@up.example",
            "--claim",
            "email_verified=true",
            "--claim",
            "name=Zoe Upstream",
        ],
        &[
            ("TESSERA_ISSUER", upstream.as_str()),
            ("TESSERA_NEW_PASSWORD", crate::flow::PASSWORD),
        ],
    );
    let callback = format!("{here}/federation/up/callback");
    let client = json_out(&cli_env(
        dir.path(),
        &[
            "client",
            "create",
            "--type",
            "web",
            "--name",
            "Downstream Tessera",
            "--redirect-uri",
            &callback,
            "--consent",
            "auto-accept",
            "--output",
            "json",
        ],
        &env,
    ));
    let server = Server::start_on(dir.path(), port, &env);
    server.wait_ready().await;

    let h = Harness::with_issuer(here).await;
    let admin = h.provider.admin(Caller::local());
    admin
        .create_idp(&IdpSpec {
            name: "up".into(),
            display_name: "Upstream Tessera".into(),
            issuer: Some(upstream.clone()),
            client_id: client["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: client["client_secret"].as_str().map(str::to_owned),
            // Tessera puts the scopes' claims in userinfo, not in the ID token.
            use_userinfo: true,
            ..IdpSpec::default()
        })
        .await
        .expect("idp");
    admin
        .create_scheme(&SchemeSpec {
            name: "up".into(),
            methods: vec![vec![Method::Upstream]],
            acr: "urn:example:up".into(),
            identity_providers: vec!["up".into()],
            ..SchemeSpec::default()
        })
        .await
        .expect("scheme");
    let c = h
        .web_app(|s| {
            s.authentication_scheme = Some("up".into());
            s.consent = Some(ConsentMode::AutoAccept);
        })
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&c, "openid email profile", "");
    let page = b.get(&path).await;
    let go = press(&b, &page, "Upstream Tessera", "up").await;
    // At the upstream Tessera: its sign-in page, then back with a code.
    let agent = upstream_agent();
    let (status, _, login) = agent.fetch(agent.http.get(&go)).await;
    assert_eq!(status, 200, "{login}");
    let form = [
        ("interaction", hidden(&login, "interaction")),
        ("csrf", hidden(&login, "csrf")),
        ("username", "zoe".to_owned()),
        ("password", crate::flow::PASSWORD.to_owned()),
    ];
    let (status, back, _) = agent
        .fetch(agent.http.post(format!("{upstream}/login")).form(&form))
        .await;
    assert_eq!(status, 303);
    let back = back.strip_prefix(here).expect("back here").to_owned();
    assert!(
        back.contains(&format!("iss={}", urlencoding(&upstream))),
        "{back}"
    );
    let done = b.get(&back).await;
    let t = tokens(&h, &b, &c, &done, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().expect("id token"));
    assert_eq!(id["acr"], "urn:example:up");
    assert_eq!(id["amr"][0], "fed");
    // No preferred_username from the upstream: the username is the email (from userinfo).
    let zoe = admin
        .user("zoe@up.example")
        .await
        .expect("made from the upstream's claims");
    assert_eq!(zoe.claims["name"], "Zoe Upstream");
    drop(server);
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

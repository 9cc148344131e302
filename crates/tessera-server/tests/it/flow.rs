//! Browser-flow support: a cookie-keeping browser over the in-process router, users and
//! browser applications, PKCE pairs, and readers for the pages' hidden fields and redirects.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tessera_core::admin::{ClientSpec, UserSpec};
use tessera_core::model::ClientType;
use tessera_core::secret::{b64url, random_bytes, sha256};

use crate::support::{Harness, Reply, TestClient};

pub const RP: &str = "https://rp.example.com/cb";
pub const PASSWORD: &str = "correct horse battery";

/// Cookies by name, as a browser keeps them for the issuer.
pub struct Browser<'a> {
    h: &'a Harness,
    cookies: Mutex<HashMap<String, String>>,
}

impl<'a> Browser<'a> {
    pub fn new(h: &'a Harness) -> Browser<'a> {
        Browser {
            h,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    pub async fn request(&self, method: Method, path: &str, form: Option<&str>) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        let cookie: Vec<String> = self
            .cookies
            .lock()
            .expect("cookies")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !cookie.is_empty() {
            b = b.header("cookie", cookie.join("; "));
        }
        if form.is_some() {
            b = b.header("content-type", "application/x-www-form-urlencoded");
        }
        let body = Body::from(form.unwrap_or("").to_owned());
        let reply = self.h.send(b.body(body).expect("request")).await;
        for v in reply.headers.get_all("set-cookie") {
            let v = v.to_str().expect("cookie");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').expect("cookie pair");
            let mut jar = self.cookies.lock().expect("cookies");
            if attrs.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_owned(), val.to_owned());
            }
        }
        reply
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, form: &str) -> Reply {
        self.request(Method::POST, path, Some(form)).await
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookies").get(name).cloned()
    }

    pub fn forget(&self, name: &str) {
        self.cookies.lock().expect("cookies").remove(name);
    }

    /// Submits the login page shown in `page`.
    pub async fn login(&self, page: &Reply, username: &str, password: &str) -> Reply {
        assert_eq!(
            page.status,
            StatusCode::OK,
            "expected the login page: {}",
            page.text
        );
        let form = enc(&[
            ("interaction", &hidden(&page.text, "interaction")),
            ("csrf", &hidden(&page.text, "csrf")),
            ("username", username),
            ("password", password),
        ]);
        self.post("/login", &form).await
    }

    /// Answers the consent page shown in `page`.
    pub async fn consent(&self, page: &Reply, allow: bool) -> Reply {
        assert!(
            page.text.contains("id=\"scopes\""),
            "expected the consent page: {}",
            page.text
        );
        let form = enc(&[
            ("interaction", &hidden(&page.text, "interaction")),
            ("csrf", &hidden(&page.text, "csrf")),
            ("decision", if allow { "allow" } else { "deny" }),
        ]);
        self.post("/consent", &form).await
    }
}

pub fn enc(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("end of value") + start;
    html[start..end]
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
}

/// The parameters of a redirect to the client (query or fragment).
pub fn redirect_params(r: &Reply) -> HashMap<String, String> {
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "expected a redirect: {} {}",
        r.status,
        r.text
    );
    let loc = r.header("location");
    let part = match loc.split_once('#') {
        Some((_, f)) => f,
        None => loc.split_once('?').map(|(_, q)| q).unwrap_or(""),
    };
    form_urlencoded::parse(part.as_bytes())
        .into_owned()
        .collect()
}

/// RFC 7636: a verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = b64url(&random_bytes::<32>());
    let challenge = b64url(&sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// The claims of a JWT, unverified (tests verify signatures where it matters).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&tessera_core::secret::b64url_decode(payload).expect("b64"))
        .expect("json")
}

impl Harness {
    /// The password grant (RFC 6749 §4.3) for `user` at `app`: the answer's status.
    pub async fn password_grant(&self, app: &TestClient, user: &str, pw: &str) -> StatusCode {
        self.post(
            "/token",
            Some(&app.basic()),
            &enc(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ]),
        )
        .await
        .status
    }

    pub async fn user(&self, username: &str) -> String {
        let spec = UserSpec {
            username: username.into(),
            password: Some(PASSWORD.into()),
            claims: json!({"name": format!("{username} Example"), "email": format!("{username}@example.com"),
                "email_verified": true, "phone_number": "+32 2 555 01 01",
                "address": {"locality": "Gent", "country": "BE"}})
            .as_object()
            .cloned()
            .expect("object"),
            attributes: json!({"department": "R&D"}).as_object().cloned().expect("object"),
            groups: vec!["staff".into()],
            ..UserSpec::default()
        };
        self.provider
            .admin(tessera_core::admin::Caller::local())
            .create_user(&spec)
            .await
            .expect("user")
            .id
    }

    /// A web application with `redirect_uris = [RP]`; `tweak` adjusts the spec.
    pub async fn web_app(&self, tweak: impl FnOnce(&mut ClientSpec)) -> TestClient {
        let mut spec = ClientSpec {
            redirect_uris: vec![RP.into()],
            post_logout_redirect_uris: vec!["https://rp.example.com/bye".into()],
            ..ClientSpec::new("Web App", ClientType::Web)
        };
        tweak(&mut spec);
        let created = self
            .provider
            .admin(tessera_core::admin::Caller::local())
            .create_client(&spec)
            .await
            .expect("web app");
        TestClient {
            id: created.client.client_id,
            secret: created.client_secret.unwrap_or_default(),
        }
    }

    /// Exchanges a code at the token endpoint with Basic authentication.
    pub async fn exchange(&self, c: &TestClient, code: &str, verifier: Option<&str>) -> Reply {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP),
        ];
        if let Some(v) = verifier {
            pairs.push(("code_verifier", v));
        }
        self.post("/token", Some(&c.basic()), &enc(&pairs)).await
    }
}

/// `/authorize` with `client_id` and the one parameter that carries the request: `request_uri`
/// (a pushed request) or `request` (a request object); `extra` is appended to the query.
pub fn authorize_by(c: &TestClient, carrier: &str, value: &str, extra: &str) -> String {
    format!(
        "/authorize?{}{extra}",
        enc(&[("client_id", &c.id), (carrier, value)])
    )
}

/// `/authorize` for the code flow with PKCE; returns the path and the verifier.
pub fn code_request(c: &TestClient, scope: &str, extra: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let q = enc(&[
        ("response_type", "code"),
        ("client_id", &c.id),
        ("redirect_uri", RP),
        ("scope", scope),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    (format!("/authorize?{q}{extra}"), verifier)
}

/// Signs `user` in (unless the browser's session does) and approves consent if asked; returns
/// the redirect's parameters.
pub async fn sign_in(b: &Browser<'_>, path: &str, user: &str) -> HashMap<String, String> {
    let mut r = b.get(path).await;
    if r.text.contains("name=\"password\"") {
        r = b.login(&r, user, PASSWORD).await;
    }
    if r.status == StatusCode::OK && r.text.contains("id=\"scopes\"") {
        r = b.consent(&r, true).await;
    }
    redirect_params(&r)
}

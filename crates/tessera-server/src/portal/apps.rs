//! Applications in the portal: the list with search, the "+ Set up app integration" wizard
//! (seed 000), the application's tabs (General, Security settings, App settings, Endpoints,
//! Credentials), enabling and disabling, deleting, and revoking the secret for a new one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::admin::{check_logo, etag, AdminError, ClientPatch, ClientSpec};
use tessera_core::model::{
    AuthMethod, Client, ClientType, ConsentMode, GrantType, JwsAlg, TokenFormat,
};
use tessera_core::settings::Lifetimes;

use super::{explain, message, refused, render, see_other, Chrome, ConfirmTpl, Form, Signed};
use crate::admin::auth::Need;
use crate::AppState;

const SECTION: &str = "applications";

/// The application types the wizard offers, with the line that explains each.
const TYPES: [(&str, &str, &str); 4] = [
    ("web", "Regular Web App", "A server-side web application that keeps a secret; users sign in with the authorization code flow."),
    ("m2m", "Machine to machine", "A service, script or daemon that calls your APIs as itself (client credentials); no users sign in."),
    ("spa", "Public: single-page app", "Runs in the browser and cannot keep a secret; users sign in with the authorization code flow and PKCE."),
    ("native", "Public: native app", "A mobile or desktop application; authorization code with PKCE, loopback or app-scheme redirect URIs."),
];

const AUTH_METHODS: [(&str, &str); 4] = [
    ("client_secret_basic", "Client secret in HTTP Basic (client_secret_basic)"),
    ("client_secret_post", "Client secret in the form body (client_secret_post)"),
    ("client_secret_jwt", "JWT signed with the client secret (client_secret_jwt)"),
    ("private_key_jwt", "JWT signed with the application's own key (private_key_jwt; add its key set with the API or CLI)"),
];

const ALGS: [(&str, &str); 4] = [
    ("RS256", "RS256 (RSA, the default)"),
    ("PS256", "PS256 (RSA-PSS)"),
    ("ES256", "ES256 (ECDSA P-256)"),
    ("EdDSA", "EdDSA (Ed25519)"),
];

const TABS: [(&str, &str); 5] = [
    ("general", "General"),
    ("security", "Security settings"),
    ("settings", "App settings"),
    ("endpoints", "Endpoints"),
    ("credentials", "Credentials"),
];

/// What could make its holder an administrator (an application of the admin API) needs the
/// `administrator` scope, as in the admin API.
fn guard(s: &AppState, signed: &Signed, apis: &[String]) -> Result<(), Response> {
    if apis.contains(&s.provider.admin_api()) {
        return signed.require(Need::Administrator, SECTION);
    }
    Ok(())
}

/// The stored application, if this session may change it.
pub(super) async fn changeable(
    s: &AppState,
    signed: &Signed,
    id: &str,
) -> Result<Client, Response> {
    signed.require(Need::ConfigWrite, SECTION)?;
    let c = signed
        .admin(&s.provider)
        .get_client(id)
        .await
        .map_err(|e| refused(signed.chrome(SECTION), &e))?;
    guard(s, signed, &c.apis)?;
    Ok(c)
}

fn type_label(t: ClientType) -> &'static str {
    match t {
        ClientType::Web => "Regular Web App",
        ClientType::M2m => "Machine to machine",
        ClientType::Spa => "Public: single-page app",
        ClientType::Native => "Public: native app",
    }
}

/// The notices a redirect may ask for, by key (never text from the URL).
fn notice(key: &str) -> Option<String> {
    let text = match key {
        "created" => "The application was created.",
        "saved" => "Saved.",
        "enabled" => "The application is enabled.",
        "disabled" => "The application is disabled: it gets no tokens.",
        "deleted" => "The application was deleted.",
        "logo" => "The logo was saved: it shows on the sign-in and consent pages.",
        "logo-removed" => "The logo was removed.",
        _ => return None,
    };
    Some(text.to_owned())
}

fn invalid(field: &str, message: &str) -> AdminError {
    AdminError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// A `serde` enum from a form's string value (`auto-accept`, `client_secret_post`, …).
fn choice<T: serde::de::DeserializeOwned>(field: &str, value: &str) -> Result<T, AdminError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| invalid(field, &format!("{value:?} is not one of the choices")))
}

fn alg(field: &str, value: &str) -> Result<JwsAlg, AdminError> {
    JwsAlg::parse(value).ok_or_else(|| invalid(field, &format!("{value:?} is not an algorithm")))
}

#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    notice: String,
}

pub struct Row {
    client_id: String,
    name: String,
    logo: Option<String>,
    kind: &'static str,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct ListTpl {
    chrome: Chrome,
    q: String,
    apps: Vec<Row>,
}

pub async fn list(State(s): State<AppState>, signed: Signed, Query(q): Query<Search>) -> Response {
    if let Err(r) = signed.require(Need::ConfigRead, SECTION) {
        return r;
    }
    let clients = match signed.admin(&s.provider).list_clients().await {
        Ok(c) => c,
        Err(e) => return refused(signed.chrome(SECTION), &e),
    };
    let needle = q.q.trim().to_lowercase();
    let mut apps: Vec<Row> = clients
        .into_iter()
        .filter(|c| {
            needle.is_empty()
                || c.name.to_lowercase().contains(&needle)
                || c.client_id.to_lowercase().contains(&needle)
        })
        .map(|c| Row {
            logo: s.provider.logo_uri(&c),
            kind: type_label(c.client_type),
            client_id: c.client_id,
            name: c.name,
            enabled: c.enabled,
        })
        .collect();
    apps.sort_by_key(|a| a.name.to_lowercase());
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(&q.notice);
    render(
        StatusCode::OK,
        &ListTpl {
            chrome,
            q: q.q.trim().to_owned(),
            apps,
        },
    )
}

/// What the wizard has been told so far.
#[derive(Default, Deserialize)]
pub struct Wizard {
    #[serde(default)]
    step: u8,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    subject_attribute: String,
    #[serde(default)]
    auth_method: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    allowed_groups: String,
    #[serde(default)]
    signing_alg: String,
    /// The logo chosen in step 1, carried to the submit: its checked type, and the image in
    /// standard base64 (a `data:` URL shows it in step 2).
    #[serde(default)]
    logo_type: String,
    #[serde(default)]
    logo_data: String,
}

#[derive(Template)]
#[template(path = "admin/wizard.html")]
struct WizardTpl<'a> {
    chrome: Chrome,
    step: u8,
    w: &'a Wizard,
    kind_label: &'static str,
    types: &'static [(&'static str, &'static str, &'static str)],
    auth_methods: &'static [(&'static str, &'static str)],
    algs: &'static [(&'static str, &'static str)],
    /// (identifier, name, checked)
    apis: Vec<(String, String, bool)>,
    /// (name, description, checked)
    scopes: Vec<(String, String, bool)>,
}

/// The wizard's page: step 1 (General and the type) until both are given, then step 2.
async fn wizard_page(
    s: &AppState,
    signed: &Signed,
    w: &Wizard,
    chosen: (&[String], &[String]),
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let kind = ClientType::parse(&w.kind);
    let mut chrome = signed.chrome(SECTION);
    chrome.error = error;
    let step = match kind {
        Some(_) if w.step == 2 && !w.name.trim().is_empty() => 2,
        _ => {
            if w.step == 2 && chrome.error.is_none() {
                chrome.error = Some("Give the application a name and choose its type.".into());
            }
            1
        }
    };
    let admin = signed.admin(&s.provider);
    let (apis, scopes) = match (admin.list_apis().await, admin.list_scopes().await) {
        (Ok(a), Ok(sc)) => (a, sc),
        (Err(e), _) | (_, Err(e)) => return refused(chrome, &e),
    };
    let apis = apis
        .into_iter()
        .map(|a| {
            let on = chosen.0.contains(&a.identifier);
            (a.identifier, a.name, on)
        })
        .collect();
    let scopes = scopes
        .into_iter()
        .map(|sc| {
            let on = chosen.1.contains(&sc.name);
            let text = if sc.display_name.is_empty() {
                sc.description
            } else {
                sc.display_name
            };
            (sc.name, text, on)
        })
        .collect();
    render(
        if step == 1 && w.step == 2 {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        },
        &WizardTpl {
            chrome,
            step,
            w,
            kind_label: kind.map_or("", type_label),
            types: &TYPES,
            auth_methods: &AUTH_METHODS,
            algs: &ALGS,
            apis,
            scopes,
        },
    )
}

pub async fn wizard(
    State(s): State<AppState>,
    signed: Signed,
    Query(mut w): Query<Wizard>,
) -> Response {
    if let Err(r) = signed.require(Need::ConfigWrite, SECTION) {
        return r;
    }
    if w.subject_attribute.is_empty() {
        w.subject_attribute = "id".into();
    }
    if w.signing_alg.is_empty() {
        w.signing_alg = "RS256".into();
    }
    if w.auth_method.is_empty() {
        w.auth_method = "client_secret_basic".into();
    }
    wizard_page(&s, &signed, &w, (&[], &[]), StatusCode::OK, None).await
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretTpl<'a> {
    chrome: Chrome,
    name: &'a str,
    heading: &'a str,
    client_id: &'a str,
    secret: &'a str,
}

/// A secret shown once: in the answer to the form itself, never in a URL or a later page.
fn secret_page(chrome: Chrome, c: &Client, heading: &str, secret: &str) -> Response {
    render(
        StatusCode::OK,
        &SecretTpl {
            chrome,
            name: &c.name,
            heading,
            client_id: &c.client_id,
            secret,
        },
    )
}

/// The wizard's answers as the use-case's spec.
fn spec_from(w: &Wizard, form: &Form) -> Result<ClientSpec, AdminError> {
    let kind = ClientType::parse(&w.kind).ok_or_else(|| invalid("type", "choose a type"))?;
    let mut spec = ClientSpec::new(&w.name, kind);
    spec.description = w.description.clone();
    spec.apis = form.all("apis");
    spec.scopes = form.all("scopes");
    spec.signing_alg = Some(alg("signing_alg", &w.signing_alg)?);
    if kind.is_confidential() {
        spec.auth_method = Some(choice("auth_method", &w.auth_method)?);
    }
    if kind != ClientType::M2m {
        spec.subject_attribute = Some(w.subject_attribute.trim().to_owned());
        spec.redirect_uris = form.lines("redirect_uris");
        if spec.redirect_uris.is_empty() {
            return Err(invalid("redirect_uris", "give at least one redirect URI"));
        }
        spec.allowed_groups = form.list("allowed_groups");
    }
    Ok(spec)
}

/// The wizard's forms: step 1 posts with `stage=next` (its logo is checked, then carried), step
/// 2 submits the whole integration.
pub async fn create(
    State(s): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = signed.require(Need::ConfigWrite, SECTION) {
        return r;
    }
    let (form, upload) = match Form::read(&headers, body, "logo").await {
        Ok(read) => read,
        Err(text) => {
            return message(
                signed.chrome(SECTION),
                StatusCode::BAD_REQUEST,
                "Not read",
                &text,
            )
        }
    };
    if let Err(r) = signed.check(&form) {
        return r;
    }
    if let Err(r) = guard(&s, &signed, &form.all("apis")) {
        return r;
    }
    let mut w = Wizard {
        step: 2,
        name: form.get("name").to_owned(),
        description: form.get("description").to_owned(),
        kind: form.get("type").to_owned(),
        subject_attribute: form.get("subject_attribute").to_owned(),
        auth_method: form.get("auth_method").to_owned(),
        redirect_uris: form.get("redirect_uris").to_owned(),
        allowed_groups: form.get("allowed_groups").to_owned(),
        signing_alg: form.get("signing_alg").to_owned(),
        logo_type: form.get("logo_type").to_owned(),
        logo_data: form.get("logo_data").to_owned(),
    };
    if let Some(u) = upload {
        match check_logo(u.content_type.as_deref(), &u.bytes) {
            Ok(t) => {
                w.logo_type = t.to_owned();
                w.logo_data = STANDARD.encode(&u.bytes);
            }
            Err(e) => {
                w.step = 1;
                let (status, text) = explain(&e);
                return wizard_page(&s, &signed, &w, (&[], &[]), status, Some(text)).await;
            }
        }
    }
    if form.get("stage") == "next" {
        if w.subject_attribute.is_empty() {
            w.subject_attribute = "id".into();
        }
        if w.signing_alg.is_empty() {
            w.signing_alg = "RS256".into();
        }
        if w.auth_method.is_empty() {
            w.auth_method = "client_secret_basic".into();
        }
        return wizard_page(&s, &signed, &w, (&[], &[]), StatusCode::OK, None).await;
    }
    let admin = signed.admin(&s.provider);
    // The logo is checked before anything is created.
    let logo = match w.logo_data.as_str() {
        "" => Ok(None),
        data => STANDARD
            .decode(data)
            .map_err(|_| invalid("logo", "was not carried intact; choose it again"))
            .and_then(|bytes| check_logo(None, &bytes).map(|_| Some(bytes))),
    };
    let created = match logo.and_then(|l| Ok((l, spec_from(&w, &form)?))) {
        Ok((logo, spec)) => admin.create_client(&spec).await.map(|c| (c, logo)),
        Err(e) => Err(e),
    };
    match created {
        Ok((c, logo)) => {
            let mut chrome = signed.chrome(SECTION);
            if let Some(bytes) = &logo {
                if let Err(e) = admin.set_logo(&c.client.client_id, None, bytes).await {
                    chrome.error = Some(format!(
                        "The application was created, but its logo was not saved: {}",
                        explain(&e).1
                    ));
                }
            }
            match &c.client_secret {
                Some(secret) => secret_page(chrome, &c.client, "Your client secret", secret),
                None if chrome.error.is_some() => message(
                    chrome,
                    StatusCode::OK,
                    "Created",
                    "Add the logo on the application's General tab.",
                ),
                None => see_other(&format!(
                    "/admin/applications/{}?notice=created",
                    c.client.client_id
                )),
            }
        }
        Err(e) => {
            let (status, text) = explain(&e);
            let chosen = (form.all("apis"), form.all("scopes"));
            wizard_page(&s, &signed, &w, (&chosen.0, &chosen.1), status, Some(text)).await
        }
    }
}

/// An application's settings as the tabs show them (strings, so a refused form shows what was typed).
struct AppView {
    client_id: String,
    name: String,
    description: String,
    kind_label: &'static str,
    enabled: bool,
    /// Users sign in to it (not machine to machine).
    browser: bool,
    confidential: bool,
    code_ttl: String,
    access_token_ttl: String,
    refresh_token_ttl: String,
    id_token_ttl: String,
    signing_alg: String,
    id_token_alg: String,
    token_format: String,
    refresh_enabled: bool,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    allowed_origins: String,
    consent: String,
    subject_attribute: String,
    allowed_groups: String,
    auth_method: String,
}

impl AppView {
    fn of(c: &Client) -> AppView {
        let b = &c.browser;
        AppView {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            kind_label: type_label(c.client_type),
            enabled: c.enabled,
            browser: c.client_type != ClientType::M2m,
            confidential: c.client_type.is_confidential(),
            code_ttl: b.code_ttl.to_string(),
            access_token_ttl: c.access_token_ttl.to_string(),
            refresh_token_ttl: b.refresh_token_ttl.to_string(),
            id_token_ttl: b.id_token_ttl.to_string(),
            signing_alg: c.signing_alg.as_str().into(),
            id_token_alg: b.id_token_alg.as_str().into(),
            token_format: c.token_format.as_str().into(),
            refresh_enabled: c.grant_types.contains(&GrantType::RefreshToken),
            redirect_uris: b.redirect_uris.join("\n"),
            post_logout_redirect_uris: b.post_logout_redirect_uris.join("\n"),
            allowed_origins: b.allowed_origins.join("\n"),
            consent: match b.consent {
                ConsentMode::Explicit => "explicit".into(),
                ConsentMode::AutoAccept => "auto-accept".into(),
            },
            subject_attribute: b.subject_attribute.clone(),
            allowed_groups: b.allowed_groups.join(", "),
            auth_method: c.auth_method.as_str().into(),
        }
    }

    /// What the refused form said, over the stored values.
    fn overlay(&mut self, form: &Form) {
        let fields: [(&str, &mut String); 16] = [
            ("name", &mut self.name),
            ("description", &mut self.description),
            ("code_ttl", &mut self.code_ttl),
            ("access_token_ttl", &mut self.access_token_ttl),
            ("refresh_token_ttl", &mut self.refresh_token_ttl),
            ("id_token_ttl", &mut self.id_token_ttl),
            ("signing_alg", &mut self.signing_alg),
            ("id_token_alg", &mut self.id_token_alg),
            ("token_format", &mut self.token_format),
            ("redirect_uris", &mut self.redirect_uris),
            (
                "post_logout_redirect_uris",
                &mut self.post_logout_redirect_uris,
            ),
            ("allowed_origins", &mut self.allowed_origins),
            ("consent", &mut self.consent),
            ("subject_attribute", &mut self.subject_attribute),
            ("allowed_groups", &mut self.allowed_groups),
            ("auth_method", &mut self.auth_method),
        ];
        for (name, slot) in fields {
            if form.has(name) {
                *slot = form.get(name).to_owned();
            }
        }
        if form.get("tab") == "security" {
            self.refresh_enabled = form.checked("refresh_enabled");
        }
    }
}

#[derive(Template)]
#[template(path = "admin/app.html")]
struct AppTpl<'a> {
    chrome: Chrome,
    v: AppView,
    tab: &'a str,
    etag: String,
    tabs: &'static [(&'static str, &'static str)],
    algs: &'static [(&'static str, &'static str)],
    auth_methods: &'static [(&'static str, &'static str)],
    apis: Vec<(String, String, bool)>,
    scopes: Vec<(String, String, bool)>,
    /// (id, label, URL)
    endpoints: Vec<(&'static str, &'static str, String)>,
    logo_uri: Option<String>,
    /// The lifetimes an application set up now would get.
    defaults: Lifetimes,
}

#[derive(Deserialize)]
pub struct TabQuery {
    #[serde(default)]
    tab: String,
    #[serde(default)]
    notice: String,
}

/// The application's page on one tab; `refused` carries a refused form and why.
pub(super) async fn app_page(
    s: &AppState,
    signed: &Signed,
    c: &Client,
    tab: &str,
    refused_form: Option<(&Form, StatusCode, String)>,
    notice_key: &str,
) -> Response {
    let admin = signed.admin(&s.provider);
    let (apis, scopes) = match (admin.list_apis().await, admin.list_scopes().await) {
        (Ok(a), Ok(sc)) => (a, sc),
        (Err(e), _) | (_, Err(e)) => return refused(signed.chrome(SECTION), &e),
    };
    let (chosen_apis, chosen_scopes) = match &refused_form {
        Some((f, ..)) if f.get("tab") == "settings" => (f.all("apis"), f.all("scopes")),
        _ => (c.apis.clone(), c.scopes.clone()),
    };
    let mut v = AppView::of(c);
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(notice_key);
    let mut status = StatusCode::OK;
    if let Some((form, st, text)) = &refused_form {
        v.overlay(form);
        chrome.error = Some(text.clone());
        status = *st;
    }
    let tab = TABS.iter().find(|t| t.0 == tab).map_or("general", |t| t.0);
    let p = &s.provider;
    let endpoints = [
        ("authorization", "Authorization", "/authorize"),
        ("token", "Token", "/token"),
        ("introspection", "Introspection", "/introspect"),
        ("revocation", "Revocation", "/revoke"),
        ("userinfo", "Userinfo", "/userinfo"),
        ("jwks", "JWKS", "/jwks"),
        ("end-session", "End session", "/logout"),
        (
            "well-known",
            "Well-known configuration",
            "/.well-known/openid-configuration",
        ),
    ]
    .into_iter()
    .map(|(id, label, path)| (id, label, p.settings.endpoint(path)))
    .collect();
    render(
        status,
        &AppTpl {
            chrome,
            v,
            tab,
            etag: etag(c),
            tabs: &TABS,
            algs: &ALGS,
            auth_methods: &AUTH_METHODS,
            apis: apis
                .into_iter()
                .map(|a| {
                    let on = chosen_apis.contains(&a.identifier);
                    (a.identifier, a.name, on)
                })
                .collect(),
            scopes: scopes
                .into_iter()
                .map(|sc| {
                    let on = chosen_scopes.contains(&sc.name);
                    (sc.name, sc.display_name, on)
                })
                .collect(),
            endpoints,
            logo_uri: p.logo_uri(c),
            defaults: p.default_lifetimes(),
        },
    )
}

pub async fn show(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<TabQuery>,
) -> Response {
    if let Err(r) = signed.require(Need::ConfigRead, SECTION) {
        return r;
    }
    match signed.admin(&s.provider).get_client(&id).await {
        Ok(c) => app_page(&s, &signed, &c, &q.tab, None, &q.notice).await,
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

/// The change a tab's form asks for.
fn patch_from(c: &Client, form: &Form) -> Result<ClientPatch, AdminError> {
    let browser = c.client_type != ClientType::M2m;
    let mut p = ClientPatch::default();
    match form.get("tab") {
        "general" => {
            p.name = Some(form.get("name").to_owned());
            p.description = Some(form.get("description").to_owned());
        }
        "security" => {
            p.access_token_ttl = Some(form.seconds("access_token_ttl")?);
            p.signing_alg = Some(alg("signing_alg", form.get("signing_alg"))?);
            p.token_format = Some(choice::<TokenFormat>(
                "token_format",
                form.get("token_format"),
            )?);
            if browser {
                p.code_ttl = Some(form.seconds("code_ttl")?);
                p.refresh_token_ttl = Some(form.seconds("refresh_token_ttl")?);
                p.id_token_ttl = Some(form.seconds("id_token_ttl")?);
                p.id_token_alg = Some(alg("id_token_alg", form.get("id_token_alg"))?);
                let mut grants: Vec<GrantType> = c
                    .grant_types
                    .iter()
                    .copied()
                    .filter(|g| *g != GrantType::RefreshToken)
                    .collect();
                if form.checked("refresh_enabled") {
                    grants.push(GrantType::RefreshToken);
                }
                p.grant_types = Some(grants);
                p.redirect_uris = Some(form.lines("redirect_uris"));
                p.post_logout_redirect_uris = Some(form.lines("post_logout_redirect_uris"));
                p.allowed_origins = Some(form.lines("allowed_origins"));
            }
        }
        "settings" => {
            if browser {
                p.consent = Some(choice::<ConsentMode>("consent", form.get("consent"))?);
                p.subject_attribute = Some(form.get("subject_attribute").to_owned());
                p.allowed_groups = Some(form.list("allowed_groups"));
            }
            if c.client_type.is_confidential() {
                p.auth_method = Some(choice::<AuthMethod>(
                    "auth_method",
                    form.get("auth_method"),
                )?);
            }
            p.apis = Some(form.all("apis"));
            p.scopes = Some(form.all("scopes"));
        }
        other => return Err(invalid("tab", &format!("{other:?} has no form"))),
    }
    Ok(p)
}

pub async fn save(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let c = match changeable(&s, &signed, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = guard(&s, &signed, &form.all("apis")) {
        return r;
    }
    let admin = signed.admin(&s.provider);
    let tab = form.get("tab").to_owned();
    // The copy the form was made from: a change by someone else since then is not overwritten.
    let saved = match patch_from(&c, &form) {
        Ok(patch) => {
            admin
                .if_match(Some(form.get("etag")))
                .update_client(&id, &patch)
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => see_other(&format!("/admin/applications/{id}?tab={tab}&notice=saved")),
        Err(AdminError::PreconditionFailed) => {
            // Show their change (read again), not the stale form.
            let (status, text) = explain(&AdminError::PreconditionFailed);
            let fresh = Form::parse(format!("tab={tab}").as_bytes());
            match signed.admin(&s.provider).get_client(&id).await {
                Ok(now) => {
                    app_page(&s, &signed, &now, &tab, Some((&fresh, status, text)), "").await
                }
                Err(e) => refused(signed.chrome(SECTION), &e),
            }
        }
        Err(e) => {
            let (status, text) = explain(&e);
            app_page(&s, &signed, &c, &tab, Some((&form, status, text)), "").await
        }
    }
}

pub async fn enable(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = changeable(&s, &signed, &id).await {
        return r;
    }
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let on = form.get("enabled") == "true";
    let patch = ClientPatch {
        enabled: Some(on),
        ..ClientPatch::default()
    };
    match signed.admin(&s.provider).update_client(&id, &patch).await {
        Ok(_) => {
            let key = if on { "enabled" } else { "disabled" };
            see_other(&format!("/admin/applications/{id}?notice={key}"))
        }
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn confirm_rotate(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let c = match changeable(&s, &signed, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let text = format!(
        "The current secret of {} stops working at once: the application gets no tokens until it uses the new secret, which is shown once.",
        c.name
    );
    let action = format!("/admin/applications/{id}/rotate");
    let back = format!("/admin/applications/{id}?tab=credentials");
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Revoke the client secret?",
            message: &text,
            action: &action,
            fields: Vec::new(),
            button: "Revoke and generate a new secret",
            back: &back,
        },
    )
}

pub async fn rotate(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = changeable(&s, &signed, &id).await {
        return r;
    }
    if let Err(r) = signed.check(&Form::parse(&body)) {
        return r;
    }
    let admin = signed.admin(&s.provider);
    let rotated = admin.rotate_client_secret(&id).await;
    match (rotated, admin.get_client(&id).await) {
        (Ok(secret), Ok(c)) => secret_page(
            signed.chrome(SECTION),
            &c,
            "Your new client secret",
            &secret,
        ),
        (Err(e), _) | (_, Err(e)) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn confirm_delete(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let c = match changeable(&s, &signed, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let text = format!(
        "{} ({}) will be deleted: it gets no more tokens and its tokens stop working. This cannot be undone.",
        c.name, c.client_id
    );
    let action = format!("/admin/applications/{id}/delete");
    let back = format!("/admin/applications/{id}");
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Delete the application?",
            message: &text,
            action: &action,
            fields: Vec::new(),
            button: "Delete application",
            back: &back,
        },
    )
}

pub async fn delete(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = changeable(&s, &signed, &id).await {
        return r;
    }
    if let Err(r) = signed.check(&Form::parse(&body)) {
        return r;
    }
    match signed.admin(&s.provider).delete_client(&id).await {
        Ok(()) => see_other("/admin/applications?notice=deleted"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

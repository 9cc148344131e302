//! The "+ Set up app integration" wizard (seed 000): step 1 General (name, description, logo)
//! and the application type, each type explained in one line; step 2 the subject attribute,
//! APIs and scopes, client authentication, redirect URIs, authorization policy and signing
//! algorithm; on Submit the client secret, shown once.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::admin::{check_logo, sniff, AdminError, ClientSpec, Operation};
use tessera_core::model::ClientType;

use super::apps::{alg, choice, invalid, secret_page, type_label, ALGS, AUTH_METHODS, SECTION};
use super::{explain, message, refused, render, see_other, Chrome, Form, Signed};
use crate::AppState;

/// The application types the wizard offers, with the line that explains each.
const TYPES: [(&str, &str, &str); 4] = [
    ("web", "Regular Web App", "A server-side web application that keeps a secret; users sign in with the authorization code flow."),
    ("m2m", "Machine to machine", "A service, script or daemon that calls your APIs as itself (client credentials); no users sign in."),
    ("spa", "Public: single-page app", "Runs in the browser and cannot keep a secret; users sign in with the authorization code flow and PKCE."),
    ("native", "Public: native app", "A mobile or desktop application; authorization code with PKCE, loopback or app-scheme redirect URIs."),
];

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
    let (apis, scopes) = match (admin.apis().await, admin.scopes().await) {
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
    Query(w): Query<Wizard>,
) -> Response {
    // The wizard is for those who may set up an application.
    if let Err(r) = signed.allowed(&s.provider, Operation::CreateApplication, SECTION) {
        return r;
    }
    // A link opens step 1 (name, description and type filled in, as the Back link does); step 2
    // is reached only by posting step 1, with its CSRF token and its logo checked.
    let w = Wizard {
        step: 1,
        name: w.name,
        description: w.description,
        kind: w.kind,
        ..Wizard::default()
    };
    wizard_page(&s, &signed, &w, (&[], &[]), StatusCode::OK, None).await
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
    let (form, upload) = match signed.upload_form(&headers, body, "logo").await {
        Ok(read) => read,
        Err(r) => return r,
    };
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
        logo_type: String::new(),
        logo_data: form.get("logo_data").to_owned(),
    };
    // The carried logo's type comes from its bytes again, never from the form.
    if let Some(t) = STANDARD.decode(&w.logo_data).ok().and_then(|b| sniff(&b)) {
        w.logo_type = t.to_owned();
    }
    // A browser names the type after the file's extension: the bytes alone decide.
    if let Some(u) = upload {
        match check_logo(None, &u) {
            Ok(t) => {
                w.logo_type = t.to_owned();
                w.logo_data = STANDARD.encode(&u);
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

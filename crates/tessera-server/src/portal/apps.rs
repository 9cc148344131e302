//! Applications in the portal: the list with search, the application's tabs (General, Security
//! settings, App settings, Endpoints, Credentials), enabling and disabling, deleting, and revoking
//! the secret for a new one. Setting one up is [`super::wizard`]'s.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::{etag, AdminError, ClientPatch, Operation, ProtectionPatch};
use tessera_core::model::{
    AuthMethod, BackchannelMode, Client, ClientType, ConsentMode, ContentEncryption, Encryption,
    GrantType, JwsAlg, KeyManagement, OAuthPolicy, ResponseProtection, SecurityProfile,
    TokenFormat,
};
use tessera_core::settings::Lifetimes;

use super::{explain, refused, render, see_other, Chrome, ConfirmTpl, Form, Signed};
use crate::AppState;

pub(super) const SECTION: &str = "applications";

pub(super) const AUTH_METHODS: [(&str, &str); 6] = [
    ("client_secret_basic", "Client secret in HTTP Basic (client_secret_basic)"),
    ("client_secret_post", "Client secret in the form body (client_secret_post)"),
    ("client_secret_jwt", "JWT signed with the client secret (client_secret_jwt)"),
    ("private_key_jwt", "JWT signed with the application's own key (private_key_jwt; add its key set with the API or CLI)"),
    ("tls_client_auth", "Client certificate from a trusted CA, by subject (tls_client_auth, RFC 8705)"),
    ("self_signed_tls_client_auth", "Self-signed client certificate whose key is in the application's key set (self_signed_tls_client_auth)"),
];

pub(super) const ALGS: [(&str, &str); 4] = [
    ("RS256", "RS256 (RSA, the default)"),
    ("PS256", "PS256 (RSA-PSS)"),
    ("ES256", "ES256 (ECDSA P-256)"),
    ("EdDSA", "EdDSA (Ed25519)"),
];

const TABS: [(&str, &str); 6] = [
    ("general", "General"),
    ("security", "Security settings"),
    ("settings", "App settings"),
    ("endpoints", "Endpoints"),
    ("credentials", "Credentials"),
    ("usage", "Usage"),
];

/// The stored application, if this session may perform `op` on it (core decides).
pub(super) async fn changeable(
    s: &AppState,
    signed: &Signed,
    id: &str,
    op: Operation,
) -> Result<Client, Response> {
    let admin = signed.admin(&s.provider);
    admin
        .application(id)
        .await
        .and_then(|c| admin.may_on_application(op, &c).map(|()| c))
        .map_err(|e| refused(signed.chrome(SECTION), &e))
}

pub(super) fn type_label(t: ClientType) -> &'static str {
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

pub(super) fn invalid(field: &str, message: &str) -> AdminError {
    AdminError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// A `serde` enum from a form's string value (`auto-accept`, `client_secret_post`, …).
pub(super) fn choice<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &str,
) -> Result<T, AdminError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| invalid(field, &format!("{value:?} is not one of the choices")))
}

pub(super) fn alg(field: &str, value: &str) -> Result<JwsAlg, AdminError> {
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
    let clients = match signed.admin(&s.provider).applications().await {
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
pub(super) fn secret_page(chrome: Chrome, c: &Client, heading: &str, secret: &str) -> Response {
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
    /// The pinned signing key's kid, or "".
    signing_kid: String,
    token_format: String,
    refresh_enabled: bool,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    allowed_origins: String,
    request_uris: String,
    consent: String,
    require_par: bool,
    require_signed: bool,
    /// Every token request must carry a DPoP proof.
    dpop_bound: bool,
    /// tls_client_auth: the certificate's subject DN and DNS name, or "".
    tls_subject_dn: String,
    tls_san_dns: String,
    /// Access tokens bound to the client certificate.
    mtls_bound: bool,
    /// The device authorization grant (RFC 8628) and CIBA, with CIBA's delivery.
    device_grant: bool,
    ciba_grant: bool,
    /// `poll` or `ping`.
    backchannel_mode: String,
    backchannel_endpoint: String,
    /// `2.0` or `2.1`.
    oauth_policy: String,
    /// `fapi2` or "".
    profile: String,
    jwks_uri: String,
    /// The application's keys are given inline (API or apply file), not by URL.
    inline_jwks: bool,
    /// Signed responses: (form field, label, algorithm or "").
    signed_responses: Vec<(&'static str, &'static str, String)>,
    /// Encrypted responses: (form field prefix, label, alg or "", enc).
    encrypted_responses: Vec<(&'static str, &'static str, String, String)>,
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
            signing_kid: c.signing_kid.clone().unwrap_or_default(),
            token_format: c.token_format.as_str().into(),
            refresh_enabled: c.grant_types.contains(&GrantType::RefreshToken),
            redirect_uris: b.redirect_uris.join("\n"),
            post_logout_redirect_uris: b.post_logout_redirect_uris.join("\n"),
            allowed_origins: b.allowed_origins.join("\n"),
            request_uris: b.request_uris.join("\n"),
            consent: match b.consent {
                ConsentMode::Explicit => "explicit".into(),
                ConsentMode::AutoAccept => "auto-accept".into(),
            },
            require_par: b.require_pushed_authorization_requests,
            require_signed: b.require_signed_request_object,
            dpop_bound: c.dpop_bound_access_tokens,
            tls_subject_dn: c
                .mtls
                .tls_client_auth_subject_dn
                .clone()
                .unwrap_or_default(),
            tls_san_dns: c.mtls.tls_client_auth_san_dns.clone().unwrap_or_default(),
            mtls_bound: c.mtls.tls_client_certificate_bound_access_tokens,
            device_grant: c.grant_types.contains(&GrantType::DeviceCode),
            ciba_grant: c.grant_types.contains(&GrantType::Ciba),
            backchannel_mode: match c.backchannel.backchannel_token_delivery_mode {
                Some(BackchannelMode::Ping) => "ping".into(),
                _ => "poll".into(),
            },
            backchannel_endpoint: c
                .backchannel
                .backchannel_client_notification_endpoint
                .clone()
                .unwrap_or_default(),
            oauth_policy: match c.oauth_policy {
                OAuthPolicy::V2_0 => "2.0".into(),
                OAuthPolicy::V2_1 => "2.1".into(),
            },
            profile: match c.profile {
                Some(SecurityProfile::Fapi2) => "fapi2".into(),
                None => String::new(),
            },
            jwks_uri: c.federation.jwks_uri.clone().unwrap_or_default(),
            inline_jwks: c.federation.jwks.is_some(),
            signed_responses: signed_responses(&c.protection),
            encrypted_responses: encrypted_responses(&c.protection),
            subject_attribute: b.subject_attribute.clone(),
            allowed_groups: b.allowed_groups.join(", "),
            auth_method: c.auth_method.as_str().into(),
        }
    }

    /// What the refused form said, over the stored values.
    fn overlay(&mut self, form: &Form) {
        let fields: [(&str, &mut String); 20] = [
            ("signing_kid", &mut self.signing_kid),
            ("oauth_policy", &mut self.oauth_policy),
            ("profile", &mut self.profile),
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
            ("request_uris", &mut self.request_uris),
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
            self.jwks_uri = form.get("jwks_uri").to_owned();
            for (field, _, value) in &mut self.signed_responses {
                *value = form.get(field).to_owned();
            }
            for (prefix, _, alg, enc) in &mut self.encrypted_responses {
                *alg = form
                    .get(&format!("{prefix}_encrypted_response_alg"))
                    .to_owned();
                *enc = form
                    .get(&format!("{prefix}_encrypted_response_enc"))
                    .to_owned();
            }
        }
        if form.get("tab") == "settings" {
            self.require_par = form.checked("require_par");
            self.require_signed = form.checked("require_signed");
            self.dpop_bound = form.checked("dpop_bound");
            self.mtls_bound = form.checked("mtls_bound");
            self.device_grant = form.checked("device_grant");
            self.ciba_grant = form.checked("ciba_grant");
            self.backchannel_mode = form.get("backchannel_mode").to_owned();
            self.backchannel_endpoint = form.get("backchannel_endpoint").to_owned();
            self.tls_subject_dn = form.get("tls_client_auth_subject_dn").to_owned();
            self.tls_san_dns = form.get("tls_client_auth_san_dns").to_owned();
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
    /// Signing keys an application may be pinned to: (kid, label).
    signing_keys: Vec<(String, String)>,
    enc_algs: &'static [KeyManagement],
    enc_encs: &'static [ContentEncryption],
    auth_methods: &'static [(&'static str, &'static str)],
    apis: Vec<(String, String, bool)>,
    scopes: Vec<(String, String, bool)>,
    /// Authentication schemes: name, label, chosen.
    schemes: Vec<(String, String, bool)>,
    /// (id, label, URL)
    endpoints: Vec<(&'static str, &'static str, String)>,
    logo_uri: Option<String>,
    /// The lifetimes an application set up now would get.
    defaults: Lifetimes,
    /// The Usage tab's last hour and day.
    panels: Vec<super::charts::Panel>,
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
    let (apis, scopes) = match (admin.apis().await, admin.scopes().await) {
        (Ok(a), Ok(sc)) => (a, sc),
        (Err(e), _) | (_, Err(e)) => return refused(signed.chrome(SECTION), &e),
    };
    let schemes = match admin.schemes().await {
        Ok(x) => x,
        Err(e) => return refused(signed.chrome(SECTION), &e),
    };
    let chosen_scheme = match &refused_form {
        Some((f, ..)) if f.get("tab") == "settings" => f.get("authentication_scheme").to_owned(),
        _ => c.browser.authentication_scheme.clone(),
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
    let panels = if tab == "usage" {
        match super::dashboard::panels(&admin, Some(&c.client_id)).await {
            Ok(p) => p,
            Err(e) => return refused(signed.chrome(SECTION), &e),
        }
    } else {
        Vec::new()
    };
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
            signing_keys: p
                .keys()
                .all()
                // The key it is pinned to stays a choice even after its window ended, so saving
                // the tab unchanged does not unpin it.
                .filter(|k| k.not_after > p.now() || c.signing_kid.as_deref() == Some(&k.kid))
                .map(|k| {
                    let until = time::OffsetDateTime::from_unix_timestamp(k.not_after.0)
                        .map(|t| t.date().to_string())
                        .unwrap_or_default();
                    let state = if k.not_after > p.now() {
                        format!("signs until {until}")
                    } else {
                        format!("ended {until}: pin another key")
                    };
                    (
                        k.kid.clone(),
                        format!("{} key {} ({state})", k.alg.as_str(), k.kid),
                    )
                })
                .chain(
                    c.signing_kid
                        .as_ref()
                        .filter(|kid| p.keys().by_kid(kid).is_none())
                        .map(|kid| (kid.clone(), format!("key {kid} (removed: pin another key)"))),
                )
                .collect(),
            enc_algs: &KeyManagement::ALL,
            enc_encs: &ContentEncryption::ALL,
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
            schemes: schemes
                .into_iter()
                .map(|x| {
                    let label = format!("{} (acr {})", x.name, x.acr);
                    let on = x.name == chosen_scheme;
                    (x.name, label, on)
                })
                .collect(),
            endpoints,
            logo_uri: p.logo_uri(c),
            defaults: p.default_lifetimes(),
            panels,
        },
    )
}

pub async fn show(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<TabQuery>,
) -> Response {
    match signed.admin(&s.provider).application(&id).await {
        Ok(c) => app_page(&s, &signed, &c, &q.tab, None, &q.notice).await,
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

/// The signing choices of the Security tab: `userinfo_signed_response_alg` and JARM's.
fn signed_responses(p: &ResponseProtection) -> Vec<(&'static str, &'static str, String)> {
    let name = |a: Option<JwsAlg>| a.map(|a| a.as_str().to_owned()).unwrap_or_default();
    vec![
        (
            "userinfo_signed_response_alg",
            "Userinfo as a signed JWT",
            name(p.userinfo_signed_response_alg),
        ),
        (
            "authorization_signed_response_alg",
            "Authorization responses (JARM) signed with",
            name(p.authorization_signed_response_alg),
        ),
    ]
}

/// The encryption choices of the Security tab, one per response.
fn encrypted_responses(
    p: &ResponseProtection,
) -> Vec<(&'static str, &'static str, String, String)> {
    let pair = |e: Option<Encryption>| match e {
        Some(e) => (e.alg.as_str().to_owned(), e.enc.as_str().to_owned()),
        None => (
            String::new(),
            ContentEncryption::A128CbcHs256.as_str().to_owned(),
        ),
    };
    [
        ("id_token", "ID tokens", p.id_token()),
        ("userinfo", "Userinfo responses", p.userinfo()),
        (
            "introspection",
            "JWT introspection responses",
            p.introspection(),
        ),
        (
            "authorization",
            "Authorization responses (JARM)",
            p.authorization(),
        ),
    ]
    .into_iter()
    .map(|(prefix, label, e)| {
        let (alg, enc) = pair(e);
        (prefix, label, alg, enc)
    })
    .collect()
}

/// The Security tab's signing and encryption fields as a patch: "" is none.
fn protection_from(form: &Form) -> Result<ProtectionPatch, AdminError> {
    let signed = |field: &'static str| -> Result<Option<Option<JwsAlg>>, AdminError> {
        match form.get(field) {
            "" => Ok(Some(None)),
            v => alg(field, v).map(|a| Some(Some(a))),
        }
    };
    type Pair = (
        Option<Option<KeyManagement>>,
        Option<Option<ContentEncryption>>,
    );
    let encrypted = |prefix: &str, field: &'static str| -> Result<Pair, AdminError> {
        let a = form.get(&format!("{prefix}_encrypted_response_alg"));
        if a.is_empty() {
            return Ok((Some(None), Some(None)));
        }
        let alg = KeyManagement::parse(a)
            .ok_or_else(|| invalid(field, &format!("{a:?} is not a key management algorithm")))?;
        let e = form.get(&format!("{prefix}_encrypted_response_enc"));
        let enc = ContentEncryption::parse(e)
            .ok_or_else(|| invalid(field, &format!("{e:?} is not a content encryption")))?;
        Ok((Some(Some(alg)), Some(Some(enc))))
    };
    let (ia, ie) = encrypted("id_token", "id_token_encrypted_response_alg")?;
    let (ua, ue) = encrypted("userinfo", "userinfo_encrypted_response_alg")?;
    let (na, ne) = encrypted("introspection", "introspection_encrypted_response_alg")?;
    let (aa, ae) = encrypted("authorization", "authorization_encrypted_response_alg")?;
    Ok(ProtectionPatch {
        id_token_encrypted_response_alg: ia,
        id_token_encrypted_response_enc: ie,
        userinfo_signed_response_alg: signed("userinfo_signed_response_alg")?,
        userinfo_encrypted_response_alg: ua,
        userinfo_encrypted_response_enc: ue,
        introspection_encrypted_response_alg: na,
        introspection_encrypted_response_enc: ne,
        authorization_signed_response_alg: signed("authorization_signed_response_alg")?,
        authorization_encrypted_response_alg: aa,
        authorization_encrypted_response_enc: ae,
    })
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
            // Keys given inline stay; a URL is set or cleared here.
            let uri = form.get("jwks_uri").trim();
            if form.has("jwks_uri") && (c.federation.jwks.is_none() || !uri.is_empty()) {
                p.jwks_uri = Some((!uri.is_empty()).then(|| uri.to_owned()));
            }
            if form.has("id_token_encrypted_response_alg") {
                p.protection = protection_from(form)?;
            }
            if form.has("signing_kid") {
                let kid = form.get("signing_kid");
                p.signing_kid = Some((!kid.is_empty()).then(|| kid.to_owned()));
            }
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
                if form.has("request_uris") {
                    p.request_uris = Some(form.lines("request_uris"));
                }
            }
        }
        "settings" => {
            if browser {
                p.consent = Some(choice::<ConsentMode>("consent", form.get("consent"))?);
                p.require_pushed_authorization_requests = Some(form.checked("require_par"));
                p.require_signed_request_object = Some(form.checked("require_signed"));
                p.subject_attribute = Some(form.get("subject_attribute").to_owned());
                p.allowed_groups = Some(form.list("allowed_groups"));
                p.authentication_scheme = Some(form.get("authentication_scheme").to_owned());
            }
            if c.client_type.is_confidential() {
                p.auth_method = Some(choice::<AuthMethod>(
                    "auth_method",
                    form.get("auth_method"),
                )?);
            }
            p.apis = Some(form.all("apis"));
            p.scopes = Some(form.all("scopes"));
            p.dpop_bound_access_tokens = Some(form.checked("dpop_bound"));
            p.mtls.tls_client_certificate_bound_access_tokens = Some(form.checked("mtls_bound"));
            // The decoupled grants: the device flow (RFC 8628) and CIBA, with CIBA's delivery.
            let mut grants: Vec<GrantType> = c
                .grant_types
                .iter()
                .copied()
                .filter(|g| !matches!(g, GrantType::DeviceCode | GrantType::Ciba))
                .collect();
            if form.checked("device_grant") {
                grants.push(GrantType::DeviceCode);
            }
            if form.checked("ciba_grant") {
                grants.push(GrantType::Ciba);
            }
            p.grant_types = Some(grants);
            if form.has("backchannel_mode") {
                p.backchannel_token_delivery_mode =
                    Some(Some(match form.get("backchannel_mode") {
                        "ping" => BackchannelMode::Ping,
                        _ => BackchannelMode::Poll,
                    }));
                let endpoint = form.get("backchannel_endpoint").trim();
                p.backchannel_client_notification_endpoint =
                    Some((!endpoint.is_empty()).then(|| endpoint.to_owned()));
            }
            if c.client_type.is_confidential() {
                let field = |name: &str| {
                    let v = form.get(name).trim();
                    Some((!v.is_empty()).then(|| v.to_owned()))
                };
                p.mtls.tls_client_auth_subject_dn = field("tls_client_auth_subject_dn");
                p.mtls.tls_client_auth_san_dns = field("tls_client_auth_san_dns");
            }
            if form.has("oauth_policy") {
                p.oauth_policy = Some(choice::<OAuthPolicy>(
                    "oauth_policy",
                    form.get("oauth_policy"),
                )?);
                p.profile = Some(match form.get("profile") {
                    "" => None,
                    v => Some(choice::<SecurityProfile>("profile", v)?),
                });
            }
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
    let c = match changeable(&s, &signed, &id, Operation::ChangeApplication).await {
        Ok(c) => c,
        Err(r) => return r,
    };
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
            match signed.admin(&s.provider).application(&id).await {
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
    let c = match changeable(&s, &signed, &id, Operation::RotateSecret).await {
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
    if let Err(r) = signed.check(&Form::parse(&body)) {
        return r;
    }
    match signed.admin(&s.provider).rotate_client_secret(&id).await {
        Ok((c, secret)) => secret_page(
            signed.chrome(SECTION),
            &c,
            "Your new client secret",
            &secret,
        ),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn confirm_delete(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let c = match changeable(&s, &signed, &id, Operation::DeleteApplication).await {
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
    if let Err(r) = signed.check(&Form::parse(&body)) {
        return r;
    }
    match signed.admin(&s.provider).delete_client(&id).await {
        Ok(()) => see_other("/admin/applications?notice=deleted"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

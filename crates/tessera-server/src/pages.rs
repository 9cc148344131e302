//! Server-rendered pages (askama): login, consent, errors, form_post responses, logout, and the
//! check_session iframe. Every page is sent with a CSP that forbids framing (`frame-ancestors
//! 'none'`, the clickjacking defence) except the iframe, which relying parties frame by design.

use askama::Template;
use axum::body::Body;
use axum::response::Response;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::{HeaderValue, StatusCode};
use tessera_core::authorize::{
    CodesPage, ConsentPage, EnrolPage, FactorPage, LoginPage, PasskeyCreation, PasskeyRequest,
    ScopeLine, TotpSetup,
};
use tessera_core::Error;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTpl<'a> {
    client_name: &'a str,
    logo_uri: &'a Option<String>,
    interaction: &'a str,
    csrf: &'a str,
    login_hint: &'a str,
    error: &'a Option<String>,
    passkey: &'a Option<PasskeyRequest>,
    password: bool,
    idps: &'a [tessera_core::authorize::IdpButton],
}

#[derive(Template)]
#[template(path = "factor.html")]
struct FactorTpl<'a> {
    client_name: &'a str,
    logo_uri: &'a Option<String>,
    interaction: &'a str,
    csrf: &'a str,
    username: &'a str,
    totp: bool,
    passkey: &'a Option<PasskeyRequest>,
    recovery: bool,
    recovery_open: bool,
    error: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolTpl<'a> {
    client_name: &'a str,
    logo_uri: &'a Option<String>,
    interaction: &'a str,
    csrf: &'a str,
    username: &'a str,
    totp: &'a Option<TotpSetup>,
    /// The QR code of the TOTP URI, as an SVG element.
    qr_svg: String,
    passkey: &'a Option<PasskeyCreation>,
    algorithms: String,
    error: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "codes.html")]
struct CodesTpl<'a> {
    client_name: &'a str,
    interaction: &'a str,
    csrf: &'a str,
    codes: &'a [String],
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentTpl<'a> {
    client_name: &'a str,
    logo_uri: &'a Option<String>,
    username: &'a str,
    interaction: &'a str,
    csrf: &'a str,
    scopes: &'a [ScopeLine],
    device_code: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DeviceTpl<'a> {
    user_code: &'a str,
    error: Option<&'a str>,
    result: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTpl<'a> {
    code: &'a str,
    description: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostTpl<'a> {
    action: &'a str,
    params: &'a [(String, String)],
    nonce: &'a str,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct LogoutConfirmTpl<'a> {
    username: &'a str,
    csrf: &'a str,
    params: &'a [(String, String)],
}

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutTpl<'a> {
    frontchannel: &'a [String],
    redirect: &'a Option<String>,
    nonce: &'a str,
}

#[derive(Template)]
#[template(path = "check_session.html")]
struct CheckSessionTpl<'a> {
    nonce: &'a str,
}

/// How a page may be embedded and which scripts and frames it may run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Policy<'a> {
    /// No script, never framed.
    Plain,
    /// The sign-in pages that offer passkeys: the WebAuthn script file only, never framed.
    SignIn,
    /// One inline script with this nonce; never framed; may frame `frames` (front-channel logout).
    Script { nonce: &'a str, frames: &'a str },
    /// The check_session iframe: a script, framed by any relying party.
    Framed { nonce: &'a str },
    /// The Admin Portal: its own script file only, forms post to itself only, never framed.
    Portal,
}

fn csp(p: Policy<'_>) -> String {
    let base = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'";
    match p {
        Policy::Plain => format!("{base}; frame-ancestors 'none'"),
        Policy::SignIn => format!("{base}; script-src 'self'; frame-ancestors 'none'"),
        Policy::Script { nonce, frames } => {
            let frames = if frames.is_empty() {
                String::new()
            } else {
                format!("; frame-src {frames}")
            };
            format!("{base}; script-src 'nonce-{nonce}'{frames}; frame-ancestors 'none'")
        }
        Policy::Framed { nonce } => format!("{base}; script-src 'nonce-{nonce}'"),
        Policy::Portal => {
            format!("{base}; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
        }
    }
}

pub(crate) fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    policy: Policy<'_>,
) -> Response {
    let (status, body) = match body {
        Ok(b) => (status, b),
        Err(e) => {
            tracing::error!(error = %e, "page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            )
        }
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The portal's forms carry their Origin, which it checks; a same-origin referrer allows that.
    let referrer = match policy {
        Policy::Portal => "same-origin",
        _ => "no-referrer",
    };
    h.insert(REFERRER_POLICY, HeaderValue::from_static(referrer));
    if !matches!(policy, Policy::Framed { .. }) {
        h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if let Ok(v) = HeaderValue::from_str(&csp(policy)) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    res
}

fn nonce() -> String {
    tessera_core::secret::b64url(&tessera_core::secret::random_bytes::<16>())
}

pub fn login(page: &LoginPage, status: StatusCode) -> Response {
    let body = LoginTpl {
        client_name: &page.client_name,
        logo_uri: &page.logo_uri,
        interaction: &page.interaction,
        csrf: &page.csrf,
        login_hint: page.login_hint.as_deref().unwrap_or(""),
        error: &page.error,
        passkey: &page.passkey,
        password: page.password,
        idps: &page.idps,
    }
    .render();
    html(status, body, Policy::SignIn)
}

pub fn factor(page: &FactorPage, status: StatusCode) -> Response {
    let body = FactorTpl {
        client_name: &page.client_name,
        logo_uri: &page.logo_uri,
        interaction: &page.interaction,
        csrf: &page.csrf,
        username: &page.username,
        totp: page.totp,
        passkey: &page.passkey,
        recovery: page.recovery,
        recovery_open: page.recovery_open,
        error: &page.error,
    }
    .render();
    html(status, body, Policy::SignIn)
}

/// The QR code of `text` as an SVG element inside the page (rendered here: the page needs no
/// script for it), without the XML prolog a document of its own would have.
pub(crate) fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    svg.find("<svg")
        .map(|i| svg[i..].to_owned())
        .unwrap_or_default()
}

pub fn enrol(page: &EnrolPage, status: StatusCode) -> Response {
    let body = EnrolTpl {
        client_name: &page.client_name,
        logo_uri: &page.logo_uri,
        interaction: &page.interaction,
        csrf: &page.csrf,
        username: &page.username,
        totp: &page.totp,
        qr_svg: page
            .totp
            .as_ref()
            .map(|t| qr_svg(&t.uri))
            .unwrap_or_default(),
        passkey: &page.passkey,
        algorithms: page
            .passkey
            .as_ref()
            .map(PasskeyCreation::algorithm_list)
            .unwrap_or_default(),
        error: &page.error,
    }
    .render();
    html(status, body, Policy::SignIn)
}

pub fn codes(page: &CodesPage) -> Response {
    let body = CodesTpl {
        client_name: &page.client_name,
        interaction: &page.interaction,
        csrf: &page.csrf,
        codes: &page.codes,
    }
    .render();
    html(StatusCode::OK, body, Policy::Plain)
}

pub fn consent(page: &ConsentPage) -> Response {
    let body = ConsentTpl {
        client_name: &page.client_name,
        logo_uri: &page.logo_uri,
        username: &page.username,
        interaction: &page.interaction,
        csrf: &page.csrf,
        scopes: &page.scopes,
        device_code: &page.device_code,
    }
    .render();
    html(StatusCode::OK, body, Policy::Plain)
}

/// RFC 8628 §3.3: the user-code form (prefilled from `verification_uri_complete`), with an error
/// when a code was refused, or the result once the user decided.
pub fn device(status: StatusCode, user_code: &str, error: Option<&str>, result: &str) -> Response {
    let body = DeviceTpl {
        user_code,
        error,
        result,
    }
    .render();
    html(status, body, Policy::Plain)
}

/// An error shown to the user, never redirected (OIDC Core §3.1.2.6 before the redirect URI is trusted).
pub fn error(e: &Error) -> Response {
    let status = match e.code.http_status() {
        401 | 403 => StatusCode::BAD_REQUEST,
        s => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
    };
    if e.code.http_status() >= 500 {
        tracing::error!(error = %e, "browser request failed");
    }
    let body = ErrorTpl {
        code: e.code.as_str(),
        description: &e.description,
    }
    .render();
    html(status, body, Policy::Plain)
}

/// OAuth 2.0 Form Post Response Mode §2: an auto-submitting form to the redirect URI.
pub fn form_post(action: &str, params: &[(String, String)]) -> Response {
    let n = nonce();
    let body = FormPostTpl {
        action,
        params,
        nonce: &n,
    }
    .render();
    html(
        StatusCode::OK,
        body,
        Policy::Script {
            nonce: &n,
            frames: "",
        },
    )
}

pub fn logout_confirm(username: &str, csrf: &str, params: &[(String, String)]) -> Response {
    let body = LogoutConfirmTpl {
        username,
        csrf,
        params,
    }
    .render();
    html(StatusCode::OK, body, Policy::Plain)
}

pub fn logged_out(frontchannel: &[String], redirect: &Option<String>) -> Response {
    let n = nonce();
    let origins: Vec<String> = frontchannel
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .collect();
    let body = LoggedOutTpl {
        frontchannel,
        redirect,
        nonce: &n,
    }
    .render();
    html(
        StatusCode::OK,
        body,
        Policy::Script {
            nonce: &n,
            frames: &origins.join(" "),
        },
    )
}

pub fn check_session() -> Response {
    let n = nonce();
    let body = CheckSessionTpl { nonce: &n }.render();
    html(StatusCode::OK, body, Policy::Framed { nonce: &n })
}

/// The stylesheet the pages share.
pub async fn stylesheet() -> Response {
    asset(
        include_str!("../static/tessera.css"),
        "text/css; charset=utf-8",
    )
}

/// The Admin Portal's script: copy buttons (no framework, nothing to build).
pub async fn portal_script() -> Response {
    asset(
        include_str!("../static/admin.js"),
        "text/javascript; charset=utf-8",
    )
}

/// The sign-in pages' passkey script (WebAuthn calls only; nothing to build).
pub async fn webauthn_script() -> Response {
    asset(
        include_str!("../static/webauthn.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

//! The Admin Portal (`/admin`): server-rendered pages for administrators. It signs in through
//! Tessera itself as a first-party application (authorization code with PKCE, [`session`]) and
//! calls the same `core::admin` use-cases as the admin API, the CLI and `tessera apply`. Plain
//! HTML forms (no script needed but for copy buttons), CSRF tokens on every form, a confirmation
//! page before every destructive action.

// A refusal is the page to answer with, returned once per request: its size does not matter.
#![allow(clippy::result_large_err)]

mod apps;
mod audit;
mod catalog;
mod charts;
mod dashboard;
mod form;
mod idps;
mod keys;
mod logo;
mod schemes;
mod session;
mod settings;
mod users;
mod wizard;

use askama::Template;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::request::Parts;
use http::{header, Method, StatusCode};
use tessera_core::admin::{Admin, AdminError, Caller, Operation, TargetKind};
use tessera_core::store::StoreError;
use tessera_core::Provider;

use crate::admin::auth::caller_for_token;
use crate::admin::UPLOAD_LIMIT;
use crate::pages::{html, Policy};
use crate::{cookies, AppState};
pub use form::Form;

/// The portal's session cookie: the access token of the administrator's sign-in.
const SESSION: &str = "tessera_admin";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(session::login))
        .route("/callback", get(session::callback))
        .route("/logout", post(session::logout))
        .route("/applications", get(apps::list))
        .route(
            "/applications/new",
            get(wizard::wizard)
                .post(wizard::create)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/applications/{id}", get(apps::show).post(apps::save))
        .route("/applications/{id}/enabled", post(apps::enable))
        .route(
            "/applications/{id}/logo",
            post(logo::save).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/applications/{id}/rotate",
            get(apps::confirm_rotate).post(apps::rotate),
        )
        .route(
            "/applications/{id}/delete",
            get(apps::confirm_delete).post(apps::delete),
        )
        .route("/apis", get(catalog::list).post(catalog::create_api))
        .route(
            "/apis/delete",
            get(catalog::confirm_delete_api).post(catalog::delete_api),
        )
        .route("/scopes", post(catalog::create_scope))
        .route(
            "/scopes/delete",
            get(catalog::confirm_delete_scope).post(catalog::delete_scope),
        )
        .route("/schemes", get(schemes::list).post(schemes::create))
        .route(
            "/schemes/delete",
            get(schemes::confirm_delete).post(schemes::delete),
        )
        .route("/idps", get(idps::list).post(idps::save))
        .route("/idps/delete", get(idps::confirm_delete).post(idps::delete))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show).post(users::save))
        .route("/users/{id}/blocked", post(users::block))
        .route("/users/{id}/password", post(users::password))
        .route("/users/{id}/consents", post(users::revoke_consent))
        .route("/users/{id}/sessions", post(users::end_sessions))
        .route(
            "/users/{id}/factors",
            get(users::confirm_remove_factor).post(users::remove_factor),
        )
        .route(
            "/users/{id}/identities",
            get(idps::confirm_unlink).post(idps::unlink),
        )
        .route("/users/{id}/enrolment", post(users::require_enrolment))
        .route("/users/{id}/grants", post(users::revoke_grants))
        .route(
            "/users/{id}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/keys/import", post(keys::import))
        .route(
            "/keys/{kid}/retire",
            get(keys::confirm_retire).post(keys::retire),
        )
        .route("/settings", get(settings::show).post(settings::save))
        .route("/audit", get(audit::list))
}

/// What every portal page shows around its content.
pub struct Chrome {
    pub username: String,
    pub csrf: String,
    pub section: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// A signed-in administrator: who the session's token stands for.
pub struct Signed {
    caller: Caller,
    username: String,
    csrf: String,
}

impl Signed {
    /// The administrative use-cases as this session's user may perform them (core decides),
    /// recorded in the audit log as theirs.
    pub fn admin<'a>(&self, p: &'a Provider) -> Admin<'a> {
        p.admin(self.caller.clone())
    }

    /// A refusal page unless this session may perform `op` on an ordinary target (a page that
    /// leads to the change asks before it shows).
    pub fn allowed(
        &self,
        p: &Provider,
        op: Operation,
        section: &'static str,
    ) -> Result<(), Response> {
        self.admin(p)
            .authorize(op, TargetKind::Ordinary)
            .map_err(|e| refused(self.chrome(section), &e))
    }

    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            username: self.username.clone(),
            csrf: self.csrf.clone(),
            section,
            notice: None,
            error: None,
        }
    }

    /// A posted form that may upload a file (the field `file`), once its CSRF token is checked.
    pub async fn upload_form(
        &self,
        headers: &http::HeaderMap,
        body: axum::body::Bytes,
        file: &str,
    ) -> Result<(Form, Option<axum::body::Bytes>), Response> {
        let (form, upload) = Form::read(headers, body, file).await.map_err(|text| {
            message(
                self.chrome(""),
                StatusCode::BAD_REQUEST,
                "Form not read",
                &text,
            )
        })?;
        self.check(&form)?;
        Ok((form, upload))
    }

    /// The form's CSRF token must be the session's: another site cannot read it.
    pub fn check(&self, form: &Form) -> Result<(), Response> {
        if tessera_core::secret::constant_time_eq(form.get("csrf").as_bytes(), self.csrf.as_bytes())
        {
            return Ok(());
        }
        Err(message(
            self.chrome(""),
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form did not come from your current sign-in (its CSRF token does not match). Open the page again and resubmit.",
        ))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Signed, Response> {
        let p = &s.provider;
        // A form posted from another origin is refused before anything else (CSRF, in depth).
        if parts.method != Method::GET {
            let origin = parts
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok());
            if origin.is_some_and(|o| o != issuer_origin(p)) {
                return Err((StatusCode::FORBIDDEN, "cross-origin form refused").into_response());
            }
        }
        let back = match parts.method {
            Method::GET => parts
                .uri
                .path_and_query()
                .map_or("/admin".to_owned(), |pq| pq.as_str().to_owned()),
            _ => "/admin".to_owned(),
        };
        let Some(token) = cookies::get(&parts.headers, SESSION) else {
            return Err(session::sign_in_redirect(&back));
        };
        let caller = match caller_for_token(p, token).await {
            Ok(c) => c,
            Err(problem) if problem.status == StatusCode::SERVICE_UNAVAILABLE => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is unreachable; retry shortly.",
                )
                    .into_response())
            }
            Err(_) => return Err(session::sign_in_redirect(&back)),
        };
        let username = match caller.user_id() {
            Some(id) => match p.store.get_user(id).await {
                Ok(Some(u)) => u.username,
                _ => return Err(session::sign_in_redirect(&back)),
            },
            // The portal's tokens are always a user's.
            None => return Err(session::sign_in_redirect(&back)),
        };
        Ok(Signed {
            caller,
            username,
            csrf: session::csrf_for(token),
        })
    }
}

fn issuer_origin(p: &Provider) -> String {
    url::Url::parse(&p.settings.issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// A rendered portal page.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    html(status, page.render(), Policy::Portal)
}

/// `303 See Other`: where a form's result is shown (so reloading does not post again).
pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = http::HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessageTpl<'a> {
    chrome: Chrome,
    title: &'a str,
    message: &'a str,
    back: &'a str,
}

/// A page that says one thing.
pub fn message(chrome: Chrome, status: StatusCode, title: &str, text: &str) -> Response {
    let back = match chrome.section {
        "" => "/admin".to_owned(),
        s => format!("/admin/{s}"),
    };
    render(
        status,
        &MessageTpl {
            chrome,
            title,
            message: text,
            back: &back,
        },
    )
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmTpl<'a> {
    pub chrome: Chrome,
    pub title: &'a str,
    pub message: &'a str,
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub button: &'a str,
    pub back: &'a str,
}

/// What a refused change tells the administrator, and its status.
pub fn explain(e: &AdminError) -> (StatusCode, String) {
    match e {
        AdminError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} was not found.")),
        AdminError::Conflict(what) => (StatusCode::CONFLICT, format!("{what}.")),
        AdminError::Raced => (StatusCode::CONFLICT, e.to_string()),
        AdminError::Invalid { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{}: {message}", field.replace('_', " ")),
        ),
        AdminError::PreconditionFailed => (
            StatusCode::PRECONDITION_FAILED,
            "Someone changed this since you opened the page; nothing was saved. The page now shows their change: make yours again."
                .into(),
        ),
        AdminError::Key(k) => (StatusCode::UNPROCESSABLE_ENTITY, k.to_string()),
        AdminError::Forbidden { .. } => (
            StatusCode::FORBIDDEN,
            format!("Your sign-in does not allow this: {e}."),
        ),
        AdminError::Store(StoreError::Unavailable(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unreachable; nothing was saved. Retry shortly.".into(),
        ),
        AdminError::Store(err) => {
            tracing::error!(error = %err, "admin portal: store error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Tessera could not save this (a server error, logged).".into(),
            )
        }
    }
}

/// A refused change as a page of its own (for actions without a form to show again).
pub fn refused(chrome: Chrome, e: &AdminError) -> Response {
    let (status, text) = explain(e);
    message(chrome, status, "Not done", &text)
}

/// UTC date and time, to the minute.
pub fn when(t: tessera_core::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
            d.format(&f).ok()
        })
        .unwrap_or_else(|| t.0.to_string())
}

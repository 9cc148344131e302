//! Authentication schemes in the portal: the schemes with the applications that use them, add
//! one (its sets of methods written `password+totp, passkey`), delete one nothing uses.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::{AdminError, Operation, SchemeSpec};
use tessera_core::factor::Method;

use super::{explain, refused, render, see_other, Chrome, ConfirmTpl, Form, Signed};
use crate::AppState;

const SECTION: &str = "schemes";

/// A scheme as the list shows it.
struct SchemeRow {
    name: String,
    display_name: String,
    methods: String,
    idps: String,
    acr: String,
    factor_lifetime: String,
    enrolment: bool,
    applications: Vec<String>,
    built_in: bool,
}

/// What the add form said.
#[derive(Default)]
struct SchemeForm {
    name: String,
    display_name: String,
    methods: String,
    idps: String,
    acr: String,
    factor_lifetime: String,
    enrolment: bool,
}

#[derive(Template)]
#[template(path = "admin/schemes.html")]
struct SchemesTpl {
    chrome: Chrome,
    schemes: Vec<SchemeRow>,
    open: bool,
    form: SchemeForm,
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<String> {
    match key {
        "created" => Some("The scheme was added; pick it on an application's Settings tab.".into()),
        "deleted" => Some("The scheme was deleted.".into()),
        _ => None,
    }
}

/// `password+totp, password+passkey, passkey` as sets of methods.
fn parse_methods(text: &str) -> Result<Vec<Vec<Method>>, AdminError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|set| {
            set.split('+')
                .map(|m| {
                    Method::parse(m.trim()).ok_or_else(|| AdminError::Invalid {
                        field: "methods".into(),
                        message: format!(
                            "unknown method {:?}: password, totp, passkey or upstream",
                            m.trim()
                        ),
                    })
                })
                .collect()
        })
        .collect()
}

fn written(methods: &[Vec<Method>]) -> String {
    methods
        .iter()
        .map(|set| set.iter().map(|m| m.as_str()).collect::<Vec<_>>().join("+"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn page(
    s: &AppState,
    signed: &Signed,
    chrome: Chrome,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let admin = signed.admin(&s.provider);
    let (schemes, apps) = match (admin.schemes().await, admin.applications().await) {
        (Ok(sc), Ok(a)) => (sc, a),
        (Err(e), _) | (_, Err(e)) => return refused(chrome, &e),
    };
    let rows = schemes
        .iter()
        .map(|x| SchemeRow {
            name: x.name.clone(),
            display_name: x.display_name.clone(),
            methods: written(&x.methods),
            idps: x.identity_providers.join(", "),
            acr: x.acr.clone(),
            factor_lifetime: x
                .factor_lifetime
                .map_or_else(|| "the session".to_owned(), |l| format!("{l} s")),
            enrolment: x.enrolment,
            applications: apps
                .iter()
                .filter(|c| c.browser.authentication_scheme == x.name)
                .map(|c| c.name.clone())
                .collect(),
            built_in: x.name == tessera_core::scheme::DEFAULT_SCHEME,
        })
        .collect();
    let form = typed.map_or_else(
        || SchemeForm {
            enrolment: true,
            methods: "password+totp, password+passkey, passkey".into(),
            ..SchemeForm::default()
        },
        |f| SchemeForm {
            name: f.get("name").into(),
            display_name: f.get("display_name").into(),
            methods: f.get("methods").into(),
            idps: f.get("identity_providers").into(),
            acr: f.get("acr").into(),
            factor_lifetime: f.get("factor_lifetime").into(),
            enrolment: f.checked("enrolment"),
        },
    );
    render(
        status,
        &SchemesTpl {
            chrome,
            schemes: rows,
            open: typed.is_some(),
            form,
        },
    )
}

pub async fn list(State(s): State<AppState>, signed: Signed, Query(q): Query<Notice>) -> Response {
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(&q.notice);
    page(&s, &signed, chrome, StatusCode::OK, None).await
}

fn spec(form: &Form) -> Result<SchemeSpec, AdminError> {
    let lifetime = match form.get("factor_lifetime").trim() {
        "" => None,
        t => Some(t.parse::<i64>().map_err(|_| AdminError::Invalid {
            field: "factor_lifetime".into(),
            message: "must be a number of seconds, or empty".into(),
        })?),
    };
    Ok(SchemeSpec {
        name: form.get("name").trim().to_owned(),
        display_name: form.get("display_name").to_owned(),
        description: String::new(),
        methods: parse_methods(form.get("methods"))?,
        acr: form.get("acr").trim().to_owned(),
        factor_lifetime: lifetime,
        enrolment: Some(form.checked("enrolment")),
        identity_providers: form
            .get("identity_providers")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

pub async fn create(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let done = match spec(&form) {
        Ok(spec) => signed
            .admin(&s.provider)
            .create_scheme(&spec)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => see_other("/admin/schemes?notice=created"),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            page(&s, &signed, chrome, status, Some(&form)).await
        }
    }
}

#[derive(Deserialize)]
pub struct Named {
    #[serde(default)]
    name: String,
}

/// Asks before a scheme is deleted.
pub async fn confirm_delete(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<Named>,
) -> Response {
    let may = signed
        .admin(&s.provider)
        .may_on_scheme(Operation::DeleteScheme, &q.name)
        .await;
    if let Err(e) = may {
        return refused(signed.chrome(SECTION), &e);
    }
    let text = format!(
        "The sign-in scheme {} will be deleted; no application uses it.",
        q.name
    );
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Delete the scheme?",
            message: &text,
            action: "/admin/schemes/delete",
            fields: vec![("name", &q.name)],
            button: "Delete",
            back: "/admin/schemes",
        },
    )
}

pub async fn delete(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed
        .admin(&s.provider)
        .delete_scheme(form.get("name"))
        .await
    {
        Ok(()) => see_other("/admin/schemes?notice=deleted"),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            page(&s, &signed, chrome, status, None).await
        }
    }
}

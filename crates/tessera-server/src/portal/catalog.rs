//! APIs (resource servers) and scopes in the portal: list, add, delete with a confirmation.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::{AdminError, ApiSpec, Operation, ScopeSpec};
use tessera_core::model::{Api, Scope};

use super::{explain, refused, render, see_other, Chrome, ConfirmTpl, Form, Signed};
use crate::AppState;

const SECTION: &str = "apis";

#[derive(Template)]
#[template(path = "admin/apis.html")]
struct ApisTpl {
    chrome: Chrome,
    apis: Vec<Api>,
    scopes: Vec<Scope>,
    /// Which add form is open ("api", "scope" or none).
    open: &'static str,
    /// name, identifier, scopes
    api_form: (String, String, String),
    /// name, display name, description, default
    scope_form: (String, String, String, bool),
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<String> {
    match key {
        "api" => Some("The API was added.".into()),
        "scope" => Some("The scope was added.".into()),
        "deleted" => Some("Deleted.".into()),
        _ => None,
    }
}

/// The page; a refused add form shows again, open, with what was typed and why.
async fn page(
    s: &AppState,
    signed: &Signed,
    chrome: Chrome,
    status: StatusCode,
    open: &'static str,
    form: &Form,
) -> Response {
    let admin = signed.admin(&s.provider);
    let (apis, mut scopes) = match (admin.apis().await, admin.scopes().await) {
        (Ok(a), Ok(sc)) => (a, sc),
        (Err(e), _) | (_, Err(e)) => return refused(chrome, &e),
    };
    scopes.sort_by(|a, b| a.name.cmp(&b.name));
    let typed = |k: &str| form.get(k).to_owned();
    let (api_form, scope_form) = match open {
        "api" => (
            (typed("name"), typed("identifier"), typed("scopes")),
            Default::default(),
        ),
        "scope" => (
            Default::default(),
            (
                typed("name"),
                typed("display_name"),
                typed("description"),
                form.checked("default"),
            ),
        ),
        _ => Default::default(),
    };
    render(
        status,
        &ApisTpl {
            chrome,
            apis,
            scopes,
            open,
            api_form,
            scope_form,
        },
    )
}

pub async fn list(State(s): State<AppState>, signed: Signed, Query(q): Query<Notice>) -> Response {
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(&q.notice);
    page(&s, &signed, chrome, StatusCode::OK, "", &Form::default()).await
}

/// Runs a change from a posted form: the list again on success, the form again with why if not.
async fn change(
    s: &AppState,
    signed: &Signed,
    form: &Form,
    open: &'static str,
    done: Result<(), AdminError>,
) -> Response {
    match done {
        Ok(()) => see_other(&format!("/admin/apis?notice={open}")),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            page(s, signed, chrome, status, open, form).await
        }
    }
}

pub async fn create_api(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let spec = ApiSpec {
        identifier: form.get("identifier").to_owned(),
        name: form.get("name").to_owned(),
        scopes: form.list("scopes"),
    };
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let done = signed
        .admin(&s.provider)
        .create_api(&spec)
        .await
        .map(|_| ());
    change(&s, &signed, &form, "api", done).await
}

pub async fn create_scope(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let spec = ScopeSpec {
        name: form.get("name").to_owned(),
        display_name: form.get("display_name").to_owned(),
        description: form.get("description").to_owned(),
        default: form.checked("default"),
        ..ScopeSpec::default()
    };
    let done = signed
        .admin(&s.provider)
        .create_scope(&spec)
        .await
        .map(|_| ());
    change(&s, &signed, &form, "scope", done).await
}

#[derive(Deserialize)]
pub struct Named {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    name: String,
}

fn confirm(
    signed: &Signed,
    title: &str,
    text: &str,
    action: &str,
    field: (&str, &str),
) -> Response {
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title,
            message: text,
            action,
            fields: vec![field],
            button: "Delete",
            back: "/admin/apis",
        },
    )
}

pub async fn confirm_delete_api(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<Named>,
) -> Response {
    let may = signed
        .admin(&s.provider)
        .may_on_api(Operation::DeleteApi, &q.identifier)
        .await;
    if let Err(e) = may {
        return refused(signed.chrome(SECTION), &e);
    }
    let text = format!(
        "The API {} will be deleted; applications can no longer get tokens for it. Its scopes stay.",
        q.identifier
    );
    confirm(
        &signed,
        "Delete the API?",
        &text,
        "/admin/apis/delete",
        ("identifier", &q.identifier),
    )
}

pub async fn delete_api(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let id = form.get("identifier");
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed.admin(&s.provider).delete_api(id).await {
        Ok(()) => see_other("/admin/apis?notice=deleted"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn confirm_delete_scope(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<Named>,
) -> Response {
    if let Err(e) = signed
        .admin(&s.provider)
        .may_on_scope(Operation::DeleteScope, &q.name)
    {
        return refused(signed.chrome(SECTION), &e);
    }
    let text = format!("The scope {} will be deleted.", q.name);
    confirm(
        &signed,
        "Delete the scope?",
        &text,
        "/admin/scopes/delete",
        ("name", &q.name),
    )
}

pub async fn delete_scope(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let name = form.get("name");
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed.admin(&s.provider).delete_scope(name).await {
        Ok(()) => see_other("/admin/apis?notice=deleted"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

//! Settings in the portal: the default lifetimes of new applications (changed at runtime,
//! stored with the configuration), and the settings in force from the configuration file.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::{etag, AdminError, LifetimePatch};
use tessera_core::model::LifetimeOverrides;
use tessera_core::settings::Settings;

use super::{explain, refused, render, see_other, Chrome, Form, Signed};
use crate::AppState;

const SECTION: &str = "settings";

/// One lifetime field: form name, label, what is typed or stored, the configuration file's value.
type Field = (&'static str, &'static str, String, i64);

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsTpl<'a> {
    chrome: Chrome,
    etag: String,
    fields: Vec<Field>,
    st: &'a Settings,
    algorithms: String,
}

fn fields(st: &Settings, o: &LifetimeOverrides, typed: Option<&Form>) -> Vec<Field> {
    let f = &st.lifetimes;
    [
        (
            "authorization_code",
            "Authorization code",
            o.authorization_code,
            f.authorization_code,
        ),
        (
            "access_token",
            "Access token",
            o.access_token,
            f.access_token,
        ),
        (
            "refresh_token",
            "Refresh token",
            o.refresh_token,
            f.refresh_token,
        ),
        ("id_token", "ID token", o.id_token, f.id_token),
    ]
    .into_iter()
    .map(|(name, label, set, file)| {
        let shown = match typed {
            Some(form) => form.get(name).to_owned(),
            None => set.map_or(String::new(), |v| v.to_string()),
        };
        (name, label, shown, file)
    })
    .collect()
}

async fn page(
    s: &AppState,
    signed: &Signed,
    chrome: Chrome,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let overrides = match signed.admin(&s.provider).stored_lifetimes().await {
        Ok(o) => o,
        Err(e) => return refused(chrome, &e),
    };
    let st = &s.provider.settings;
    render(
        status,
        &SettingsTpl {
            chrome,
            etag: etag(&overrides),
            fields: fields(st, &overrides, typed),
            st,
            algorithms: st
                .keys
                .algorithms
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        },
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

pub async fn show(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let mut chrome = signed.chrome(SECTION);
    if q.notice == "saved" {
        chrome.notice = Some("Saved: applications set up from now on get these lifetimes.".into());
    }
    page(&s, &signed, chrome, StatusCode::OK, None).await
}

/// The form as a merge patch: an emptied field returns to the configuration file's value.
fn patch_from(form: &Form) -> Result<LifetimePatch, AdminError> {
    let field = |name: &str| -> Result<Option<Option<i64>>, AdminError> {
        match form.get(name) {
            "" => Ok(Some(None)),
            _ => form.seconds(name).map(|v| Some(Some(v))),
        }
    };
    Ok(LifetimePatch {
        authorization_code: field("authorization_code")?,
        access_token: field("access_token")?,
        refresh_token: field("refresh_token")?,
        id_token: field("id_token")?,
    })
}

pub async fn save(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let admin = signed.admin(&s.provider).if_match(Some(form.get("etag")));
    let saved = match patch_from(&form) {
        Ok(patch) => admin.change_default_lifetimes(&patch).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => see_other("/admin/settings?notice=saved"),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            // A stale form shows the other change; any other refusal shows what was typed.
            let stale = matches!(e, AdminError::PreconditionFailed);
            page(&s, &signed, chrome, status, (!stale).then_some(&form)).await
        }
    }
}

//! The audit log in the portal: newest first, filtered by actor, action (or prefix), application
//! and time, paged by the id of the last event shown.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::audit::AuditQuery;
use tessera_core::Timestamp;

use super::{message, refused, render, when, Chrome, Signed};
use crate::AppState;

const SECTION: &str = "audit";
const PAGE: i64 = 50;

#[derive(Clone, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    client_id: String,
    /// `YYYY-MM-DDTHH:MM`, UTC (an `<input type=datetime-local>`).
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditTpl {
    chrome: Chrome,
    f: Filter,
    /// time, actor, action, target, application, detail
    events: Vec<(String, String, String, String, String, String)>,
    next: Option<String>,
}

/// A datetime-local value as a timestamp (UTC); empty is none.
fn instant(field: &str, value: &str) -> Result<Option<Timestamp>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(value, &f)
        .map(|d| Some(Timestamp(d.assume_utc().unix_timestamp())))
        .map_err(|_| format!("{field}: {value:?} is not a date and time (YYYY-MM-DDTHH:MM)"))
}

fn opt(v: &str) -> Option<String> {
    (!v.trim().is_empty()).then(|| v.trim().to_owned())
}

pub async fn list(State(s): State<AppState>, signed: Signed, Query(f): Query<Filter>) -> Response {
    let (since, until) = match (instant("from", &f.since), instant("until", &f.until)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return message(
                signed.chrome(SECTION),
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid filter",
                &e,
            )
        }
    };
    let query = AuditQuery {
        actor: opt(&f.actor),
        action: opt(&f.action),
        client_id: opt(&f.client_id),
        since,
        until,
        before: f.before,
        limit: PAGE,
    };
    let found = match signed.admin(&s.provider).audit_events(&query).await {
        Ok(e) => e,
        Err(e) => return refused(signed.chrome(SECTION), &e),
    };
    let next = (found.len() as i64 == PAGE)
        .then(|| found.last().map(|e| e.id))
        .flatten()
        .map(|before| {
            let q = query_string(&Filter {
                before: Some(before),
                ..f.clone()
            });
            format!("/admin/audit?{q}")
        });
    let events = found
        .into_iter()
        .map(|e| {
            let detail = if e.detail.is_null() {
                String::new()
            } else {
                e.detail.to_string()
            };
            (
                when(e.at),
                e.actor,
                e.action,
                e.target,
                e.client_id.unwrap_or_default(),
                detail,
            )
        })
        .collect();
    render(
        StatusCode::OK,
        &AuditTpl {
            chrome: signed.chrome(SECTION),
            f,
            events,
            next,
        },
    )
}

/// The filter as a query string, empty fields left out.
fn query_string(f: &Filter) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("actor", &f.actor),
        ("action", &f.action),
        ("client_id", &f.client_id),
        ("since", &f.since),
        ("until", &f.until),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    if let Some(b) = f.before {
        q.append_pair("before", &b.to_string());
    }
    q.finish()
}

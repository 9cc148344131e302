//! The Portal's home page: sign-ins, tokens by grant, throttled requests and the busiest
//! applications of the last hour and day, drawn on the server ([`super::charts`]).

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use tessera_core::admin::{Admin, AdminError, Window};

use super::charts::Panel;
use super::{refused, render, Chrome, Signed};
use crate::AppState;

const SECTION: &str = "dashboard";

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardTpl {
    chrome: Chrome,
    panels: Vec<Panel>,
}

/// The last hour and day of one application, or of all (with the busiest applications).
pub(super) async fn panels(
    admin: &Admin<'_>,
    client_id: Option<&str>,
) -> Result<Vec<Panel>, AdminError> {
    let names: Option<HashMap<String, String>> = match client_id {
        Some(_) => None,
        None => Some(
            admin
                .applications()
                .await?
                .into_iter()
                .map(|c| (c.client_id, c.name))
                .collect(),
        ),
    };
    let mut panels = Vec::new();
    for (window, title) in [(Window::Hour, "Last hour"), (Window::Day, "Last 24 hours")] {
        let summary = admin.usage(client_id, window).await?;
        panels.push(Panel::of(title, &summary, names.as_ref()));
    }
    Ok(panels)
}

pub async fn show(State(s): State<AppState>, signed: Signed) -> Response {
    match panels(&signed.admin(&s.provider), None).await {
        Ok(panels) => render(
            StatusCode::OK,
            &DashboardTpl {
                chrome: signed.chrome(SECTION),
                panels,
            },
        ),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

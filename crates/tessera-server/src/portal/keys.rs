//! Signing keys and certificates in the portal: their validity windows on a timeline, rotation,
//! import of a PEM key with its certificate chain, retirement with a confirmation.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::{KeyWindow, Operation};
use tessera_core::keys::KeyState;
use tessera_core::model::Alg;

use super::{explain, refused, render, see_other, when, Chrome, ConfirmTpl, Form, Signed};
use crate::AppState;

const SECTION: &str = "keys";

struct KeyRow {
    kid: String,
    alg: &'static str,
    state: &'static str,
    from: String,
    until: String,
    certificate: String,
    retirable: bool,
}

/// One key's window on the timeline (SVG units: 1000 wide, a row of 24 per key).
struct Bar {
    x: i64,
    y: i64,
    width: i64,
    text_x: i64,
    state: &'static str,
    label: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysTpl {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    bars: Vec<Bar>,
    now_x: i64,
    timeline_height: i64,
    algs: Vec<&'static str>,
    import_open: bool,
    chain_pem: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<String> {
    let text = match key {
        "rotated" => {
            "A new key signs from now on; the previous one stays published until its tokens expire."
        }
        "imported" => "The key was imported.",
        "retired" => "The key no longer signs; it stays published until its tokens expire.",
        _ => return None,
    };
    Some(text.to_owned())
}

async fn page(
    s: &AppState,
    signed: &Signed,
    chrome: Chrome,
    status: StatusCode,
    import: Option<&Form>,
) -> Response {
    let keys = match signed.admin(&s.provider).keys().await {
        Ok(k) => k,
        Err(e) => return refused(chrome, &e),
    };
    let now = s.provider.now();
    // The timeline spans every window and now, with a little room on each side.
    let start = keys
        .iter()
        .map(|k| k.not_before.0)
        .chain([now.0])
        .min()
        .unwrap_or(now.0);
    let end = keys
        .iter()
        .map(|k| k.not_after.0)
        .chain([now.0])
        .max()
        .unwrap_or(now.0);
    let span = (end - start).max(1) as f64 * 1.04;
    let origin = start as f64 - span * 0.02;
    let x = |t: i64| (((t as f64 - origin) / span) * 1000.0).round() as i64;
    let bars = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let state = match k.state(now) {
                KeyState::Signing => "",
                KeyState::Upcoming => "next",
                KeyState::Retired | KeyState::Expired => "retired",
            };
            let (x0, x1) = (x(k.not_before.0), x(k.not_after.0));
            Bar {
                x: x0,
                y: 4 + 24 * i as i64,
                width: (x1 - x0).max(2),
                text_x: (x0 + 4).min(760),
                state,
                label: format!("{} {} ({})", k.alg.as_str(), k.kid, k.state(now).as_str()),
            }
        })
        .collect();
    let rows = keys
        .iter()
        .map(|k| KeyRow {
            kid: k.kid.clone(),
            alg: k.alg.as_str(),
            state: k.state(now).as_str(),
            from: when(k.not_before),
            until: when(k.not_after),
            certificate: match k.x5c.len() {
                0 => "none".into(),
                1 => "1 certificate".into(),
                n => format!("chain of {n}"),
            },
            retirable: k.not_after > now,
        })
        .collect();
    render(
        status,
        &KeysTpl {
            chrome,
            timeline_height: 8 + 24 * keys.len().max(1) as i64,
            keys: rows,
            bars,
            now_x: x(now.0),
            algs: Alg::ALL.iter().map(|a| a.as_str()).collect(),
            import_open: import.is_some(),
            chain_pem: import.map_or(String::new(), |f| f.get("chain_pem").to_owned()),
        },
    )
}

pub async fn list(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(&q.notice);
    page(&s, &signed, chrome, StatusCode::OK, None).await
}

fn algorithm(form: &Form) -> Result<Alg, tessera_core::admin::AdminError> {
    Alg::parse(form.get("alg")).ok_or_else(|| tessera_core::admin::AdminError::Invalid {
        field: "alg".into(),
        message: "choose an algorithm".into(),
    })
}

/// A new key that signs from now on; the current one hands over and stays published.
pub async fn rotate(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let done = match algorithm(&form) {
        Ok(alg) => {
            signed
                .admin(&s.provider)
                .generate_key(alg, KeyWindow::default())
                .await
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => see_other("/admin/keys?notice=rotated"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn import(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let done = match algorithm(&form) {
        Ok(alg) => {
            let admin = signed.admin(&s.provider);
            admin
                .import_key(
                    alg,
                    form.get("key_pem"),
                    form.get("chain_pem"),
                    KeyWindow::default(),
                )
                .await
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => see_other("/admin/keys?notice=imported"),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            page(&s, &signed, chrome, status, Some(&form)).await
        }
    }
}

pub async fn confirm_retire(
    State(s): State<AppState>,
    signed: Signed,
    Path(kid): Path<String>,
) -> Response {
    if let Err(r) = signed.allowed(&s.provider, Operation::RetireKey, SECTION) {
        return r;
    }
    let text = format!(
        "Key {kid} stops signing now; a scheduled successor takes over at once, otherwise the next signature needs a new key (rotate). It stays in the JWKS until the tokens it signed have expired."
    );
    let action = format!("/admin/keys/{kid}/retire");
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Retire the key?",
            message: &text,
            action: &action,
            fields: Vec::new(),
            button: "Retire key",
            back: "/admin/keys",
        },
    )
}

pub async fn retire(
    State(s): State<AppState>,
    signed: Signed,
    Path(kid): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed.admin(&s.provider).retire_key(&kid).await {
        Ok(_) => see_other("/admin/keys?notice=retired"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

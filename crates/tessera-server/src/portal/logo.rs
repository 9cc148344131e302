//! An application's logo in the portal: uploaded (checked by size and by what the bytes are) or
//! removed from the General tab.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use tessera_core::admin::Operation;

use super::apps::{app_page, changeable};
use super::{explain, message, see_other, Form, Signed};
use crate::AppState;

const SECTION: &str = "applications";

pub async fn save(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = match changeable(&s, &signed, &id, Operation::SetLogo).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (form, upload) = match Form::read(&headers, body, "logo").await {
        Ok(read) => read,
        Err(text) => {
            return message(
                signed.chrome(SECTION),
                StatusCode::BAD_REQUEST,
                "Not read",
                &text,
            )
        }
    };
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let admin = signed.admin(&s.provider).if_match(Some(form.get("etag")));
    let (done, notice) = match (form.get("remove"), upload) {
        ("true", _) => (admin.remove_logo(&id).await, "logo-removed"),
        // A browser names the type after the file's extension: the bytes alone decide.
        (_, Some(u)) => (admin.set_logo(&id, None, &u).await, "logo"),
        (_, None) => (
            Err(tessera_core::admin::AdminError::Invalid {
                field: "logo".into(),
                message: "choose an image file to upload".into(),
            }),
            "",
        ),
    };
    match done {
        Ok(_) => see_other(&format!("/admin/applications/{id}?notice={notice}")),
        Err(e) => {
            let (status, text) = explain(&e);
            let now = signed
                .admin(&s.provider)
                .application(&id)
                .await
                .unwrap_or(c);
            app_page(
                &s,
                &signed,
                &now,
                "general",
                Some((&Form::default(), status, text)),
                "",
            )
            .await
        }
    }
}

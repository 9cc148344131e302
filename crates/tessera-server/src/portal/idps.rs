//! Identity providers in the portal: the providers with the schemes that name them, add or change
//! one (the client secret is write-only), delete one no scheme names; and unlinking a user's
//! identity from the user's page.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::{AdminError, IdpSpec, IdpView, Operation};
use tessera_core::federation::{IdpProtocol, Mapping, UpstreamAuth};

use super::{explain, refused, render, see_other, Chrome, ConfirmTpl, Form, Signed};
use crate::AppState;

const SECTION: &str = "idps";

/// A provider as the list shows it.
struct IdpRow {
    view: IdpView,
    schemes: Vec<String>,
}

/// What the add or change form says.
#[derive(Default)]
struct IdpForm {
    /// Set when the form changes a stored provider (its name is then fixed).
    editing: bool,
    name: String,
    display_name: String,
    protocol: String,
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    client_id: String,
    has_client_secret: bool,
    auth_method: String,
    scopes: String,
    use_userinfo: bool,
    mappings: String,
    jit: bool,
    link_by_email: bool,
    domains: String,
    amr_map: String,
    enabled: bool,
    upstream_logout: bool,
    exchange_audiences: String,
    metadata_url: String,
    metadata_xml: String,
    name_id_format: String,
    encrypted_assertions: bool,
}

impl IdpForm {
    fn of(v: &IdpView) -> IdpForm {
        let s = &v.spec;
        IdpForm {
            editing: true,
            name: s.name.clone(),
            display_name: s.display_name.clone(),
            protocol: s.protocol.as_str().into(),
            issuer: s.issuer.clone().unwrap_or_default(),
            authorization_endpoint: s.authorization_endpoint.clone().unwrap_or_default(),
            token_endpoint: s.token_endpoint.clone().unwrap_or_default(),
            userinfo_endpoint: s.userinfo_endpoint.clone().unwrap_or_default(),
            client_id: s.client_id.clone(),
            has_client_secret: v.has_client_secret,
            auth_method: s.auth_method.as_str().into(),
            scopes: s.scopes.as_deref().unwrap_or_default().join(" "),
            use_userinfo: s.use_userinfo,
            mappings: s
                .mappings
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|m| format!("{}={}", m.claim, m.to))
                .collect::<Vec<_>>()
                .join(", "),
            jit: s.jit.unwrap_or(true),
            link_by_email: s.link_by_email,
            domains: s.domains.join(", "),
            amr_map: s
                .amr_map
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            enabled: s.enabled.unwrap_or(true),
            upstream_logout: s.upstream_logout.unwrap_or(true),
            exchange_audiences: s.exchange_audiences.join(", "),
            metadata_url: s.metadata_url.clone().unwrap_or_default(),
            metadata_xml: s.metadata_xml.clone().unwrap_or_default(),
            name_id_format: s.name_id_format.clone().unwrap_or_default(),
            encrypted_assertions: s.encrypted_assertions,
        }
    }

    fn typed(f: &Form, editing: bool) -> IdpForm {
        IdpForm {
            editing,
            name: f.get("name").into(),
            display_name: f.get("display_name").into(),
            protocol: f.get("protocol").into(),
            issuer: f.get("issuer").into(),
            authorization_endpoint: f.get("authorization_endpoint").into(),
            token_endpoint: f.get("token_endpoint").into(),
            userinfo_endpoint: f.get("userinfo_endpoint").into(),
            client_id: f.get("client_id").into(),
            has_client_secret: false,
            auth_method: f.get("auth_method").into(),
            scopes: f.get("scopes").into(),
            use_userinfo: f.checked("use_userinfo"),
            mappings: f.get("mappings").into(),
            jit: f.checked("jit"),
            link_by_email: f.checked("link_by_email"),
            domains: f.get("domains").into(),
            amr_map: f.get("amr_map").into(),
            enabled: f.checked("enabled"),
            upstream_logout: f.checked("upstream_logout"),
            exchange_audiences: f.get("exchange_audiences").into(),
            metadata_url: f.get("metadata_url").into(),
            metadata_xml: f.get("metadata_xml").into(),
            name_id_format: f.get("name_id_format").into(),
            encrypted_assertions: f.checked("encrypted_assertions"),
        }
    }

    fn blank() -> IdpForm {
        IdpForm {
            protocol: "oidc".into(),
            auth_method: "client_secret_basic".into(),
            scopes: "openid email profile".into(),
            jit: true,
            enabled: true,
            upstream_logout: true,
            ..IdpForm::default()
        }
    }
}

#[derive(Template)]
#[template(path = "admin/idps.html")]
struct IdpsTpl {
    chrome: Chrome,
    idps: Vec<IdpRow>,
    open: bool,
    form: IdpForm,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    notice: String,
    /// The provider whose form opens filled in for a change.
    #[serde(default)]
    edit: String,
}

fn notice(key: &str) -> Option<String> {
    match key {
        "created" => Some(
            "The identity provider was added: register its redirect URI there, then name it in a scheme with the upstream method."
                .into(),
        ),
        "saved" => Some("The identity provider was saved.".into()),
        "deleted" => Some("The identity provider was deleted and its identities unlinked.".into()),
        _ => None,
    }
}

async fn page(
    s: &AppState,
    signed: &Signed,
    chrome: Chrome,
    status: StatusCode,
    form: Option<IdpForm>,
) -> Response {
    let admin = signed.admin(&s.provider);
    let (idps, schemes) = match (admin.idps().await, admin.schemes().await) {
        (Ok(i), Ok(sc)) => (i, sc),
        (Err(e), _) | (_, Err(e)) => return refused(chrome, &e),
    };
    let rows = idps
        .into_iter()
        .map(|view| IdpRow {
            schemes: schemes
                .iter()
                .filter(|x| x.identity_providers.contains(&view.spec.name))
                .map(|x| x.name.clone())
                .collect(),
            view,
        })
        .collect();
    render(
        status,
        &IdpsTpl {
            chrome,
            idps: rows,
            open: form.is_some(),
            form: form.unwrap_or_else(IdpForm::blank),
        },
    )
}

pub async fn list(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Response {
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(&q.notice);
    let form = if q.edit.is_empty() {
        None
    } else {
        match signed.admin(&s.provider).idp(&q.edit).await {
            Ok(v) => Some(IdpForm::of(&v)),
            Err(e) => return refused(chrome, &e),
        }
    };
    page(&s, &signed, chrome, StatusCode::OK, form).await
}

fn pairs(form: &Form, field: &str) -> Result<Vec<(String, String)>, AdminError> {
    form.list(field)
        .into_iter()
        .map(|p| {
            p.split_once('=')
                .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
                .ok_or_else(|| AdminError::Invalid {
                    field: field.into(),
                    message: format!("{p:?} is not name=value"),
                })
        })
        .collect()
}

fn optional(form: &Form, field: &str) -> Option<String> {
    Some(form.get(field).to_owned()).filter(|v| !v.is_empty())
}

fn spec(form: &Form) -> Result<IdpSpec, AdminError> {
    let protocol = match form.get("protocol") {
        "oauth2" => IdpProtocol::Oauth2,
        "saml" => IdpProtocol::Saml,
        _ => IdpProtocol::Oidc,
    };
    let auth_method = match form.get("auth_method") {
        "client_secret_post" => UpstreamAuth::ClientSecretPost,
        "private_key_jwt" => UpstreamAuth::PrivateKeyJwt,
        "none" => UpstreamAuth::None,
        _ => UpstreamAuth::ClientSecretBasic,
    };
    let mappings = pairs(form, "mappings")?;
    let scopes: Vec<String> = form
        .get("scopes")
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(IdpSpec {
        name: form.get("name").to_owned(),
        display_name: form.get("display_name").to_owned(),
        enabled: Some(form.checked("enabled")),
        protocol,
        issuer: optional(form, "issuer"),
        authorization_endpoint: optional(form, "authorization_endpoint"),
        token_endpoint: optional(form, "token_endpoint"),
        userinfo_endpoint: optional(form, "userinfo_endpoint"),
        client_id: form.get("client_id").to_owned(),
        client_secret: optional(form, "client_secret"),
        auth_method,
        scopes: (!scopes.is_empty()).then_some(scopes),
        use_userinfo: form.checked("use_userinfo"),
        subject_claim: None,
        mappings: (!mappings.is_empty()).then(|| {
            mappings
                .into_iter()
                .map(|(claim, to)| Mapping { claim, to })
                .collect()
        }),
        jit: Some(form.checked("jit")),
        link_by_email: form.checked("link_by_email"),
        domains: form.list("domains"),
        amr_map: pairs(form, "amr_map")?.into_iter().collect(),
        upstream_logout: Some(form.checked("upstream_logout")),
        exchange_audiences: form.list("exchange_audiences"),
        metadata_url: optional(form, "metadata_url"),
        metadata_xml: optional(form, "metadata_xml"),
        name_id_format: optional(form, "name_id_format"),
        encrypted_assertions: form.checked("encrypted_assertions"),
    })
    .map(|spec| match spec.protocol {
        // One form for every protocol: what SAML does not have is not sent.
        IdpProtocol::Saml => IdpSpec {
            issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            client_secret: None,
            scopes: None,
            use_userinfo: false,
            exchange_audiences: Vec::new(),
            ..spec
        },
        _ => IdpSpec {
            metadata_url: None,
            metadata_xml: None,
            name_id_format: None,
            encrypted_assertions: false,
            ..spec
        },
    })
}

/// Adds a provider (`editing` absent) or changes the stored one of that name.
pub async fn save(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let editing = form.checked("editing");
    let admin = signed.admin(&s.provider);
    let done = match spec(&form) {
        Ok(spec) if editing => {
            // A change keeps what the form does not show (the subject claim).
            let spec = match admin.idp(&spec.name).await {
                Ok(old) => IdpSpec {
                    subject_claim: old.spec.subject_claim,
                    ..spec
                },
                Err(e) => return refused(signed.chrome(SECTION), &e),
            };
            admin.update_idp(&spec).await.map(|_| "saved")
        }
        Ok(spec) => admin.create_idp(&spec).await.map(|_| "created"),
        Err(e) => Err(e),
    };
    match done {
        Ok(n) => see_other(&format!("/admin/idps?notice={n}")),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            page(
                &s,
                &signed,
                chrome,
                status,
                Some(IdpForm::typed(&form, editing)),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct Named {
    #[serde(default)]
    name: String,
}

/// Asks before a provider is deleted.
pub async fn confirm_delete(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<Named>,
) -> Response {
    let may = signed
        .admin(&s.provider)
        .may_on_idp(Operation::DeleteIdp, &q.name)
        .await;
    if let Err(e) = may {
        return refused(signed.chrome(SECTION), &e);
    }
    let text = format!(
        "The identity provider {} will be deleted, and every identity linked at it unlinked.",
        q.name
    );
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Delete the identity provider?",
            message: &text,
            action: "/admin/idps/delete",
            fields: vec![("name", &q.name)],
            button: "Delete",
            back: "/admin/idps",
        },
    )
}

pub async fn delete(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed.admin(&s.provider).delete_idp(form.get("name")).await {
        Ok(()) => see_other("/admin/idps?notice=deleted"),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            page(&s, &signed, chrome, status, None).await
        }
    }
}

#[derive(Deserialize)]
pub struct IdentityQuery {
    #[serde(default)]
    idp: String,
    #[serde(default)]
    subject: String,
}

/// Asks before one of a user's identities is unlinked.
pub async fn confirm_unlink(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<IdentityQuery>,
) -> Response {
    let chrome = signed.chrome("users");
    let admin = signed.admin(&s.provider);
    let u = match admin
        .user(&id)
        .await
        .and_then(|u| admin.may_on_user(Operation::UnlinkIdentity, &u).map(|()| u))
    {
        Ok(u) => u,
        Err(e) => return refused(chrome, &e),
    };
    let text = format!(
        "{}'s identity {} at {} will be unlinked: signing in there will no longer reach {}.",
        u.username, q.subject, q.idp, u.username
    );
    let action = format!("/admin/users/{id}/identities");
    let back = format!("/admin/users/{id}");
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome,
            title: "Unlink the identity?",
            message: &text,
            action: &action,
            fields: vec![("idp", &q.idp), ("subject", &q.subject)],
            button: "Unlink",
            back: &back,
        },
    )
}

pub async fn unlink(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed
        .admin(&s.provider)
        .unlink_identity(&id, form.get("idp"), form.get("subject"))
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{id}?notice=unlinked")),
        Err(e) => refused(signed.chrome("users"), &e),
    }
}

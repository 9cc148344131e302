//! Users in the portal: search, create, edit the profile, attributes and groups, block and
//! unblock, reset the password, revoke consents, end sessions and revoke grants, delete with a
//! confirmation.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::admin::{
    etag, AdminError, FactorsView, GrantView, Operation, PasswordChange, SessionView, UserPatch,
    UserSpec,
};
use tessera_core::federation::LinkedIdentity;
use tessera_core::model::{Consent, User};

use super::{explain, refused, render, see_other, when, Chrome, ConfirmTpl, Form, Signed};
use crate::AppState;

const SECTION: &str = "users";

fn notice(key: &str) -> Option<String> {
    let text = match key {
        "created" => "The user was created.",
        "saved" => "Saved.",
        "blocked" => "The user is blocked: they cannot sign in and their tokens stop working.",
        "unblocked" => "The user is unblocked.",
        "password" => "The password was reset.",
        "consent" => "The consent was revoked: the application asks again at the next sign-in, and its refresh tokens stop working.",
        "session" => "The session ended: the user signs in again with their password.",
        "sessions" => "Every session ended: the user is signed out everywhere.",
        "grant" => "The grant was revoked: its refresh tokens and opaque access tokens stop working; JWT access tokens last until they expire.",
        "grants" => "Every grant was revoked: applications can no longer refresh the user's tokens.",
        "deleted" => "The user was deleted.",
        "factor" => "The factor was removed; the user sets up another when an application asks for it.",
        "enrolment" => "The user will be asked to set up a second factor at their next sign-in.",
        "waived" => "The user is no longer asked to set up a second factor.",
        "unlinked" => "The identity was unlinked: signing in there no longer reaches this user.",
        _ => return None,
    };
    Some(text.to_owned())
}

fn claim(u: &User, name: &str) -> String {
    u.claims
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    notice: String,
}

/// A user as the list shows them.
struct UserRow {
    id: String,
    username: String,
    name: String,
    email: String,
    groups: String,
    status: &'static str,
}

/// What the create form said.
#[derive(Default)]
struct NewUserForm {
    username: String,
    name: String,
    email: String,
    groups: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListTpl {
    chrome: Chrome,
    q: String,
    users: Vec<UserRow>,
    open: bool,
    form: NewUserForm,
}

async fn list_page(
    s: &AppState,
    signed: &Signed,
    q: &str,
    chrome: Chrome,
    status: StatusCode,
    form: Option<&Form>,
) -> Response {
    let all = match signed.admin(&s.provider).users().await {
        Ok(u) => u,
        Err(e) => return refused(chrome, &e),
    };
    let needle = q.trim().to_lowercase();
    let users = all
        .iter()
        .filter(|u| {
            needle.is_empty()
                || [u.username.clone(), claim(u, "name"), claim(u, "email")]
                    .iter()
                    .any(|v| v.to_lowercase().contains(&needle))
        })
        .map(|u| UserRow {
            id: u.id.clone(),
            username: u.username.clone(),
            name: claim(u, "name"),
            email: claim(u, "email"),
            groups: u.groups.join(", "),
            status: if u.blocked { "Blocked" } else { "Active" },
        })
        .collect();
    let typed = |k: &str| form.map_or(String::new(), |f| f.get(k).to_owned());
    render(
        status,
        &ListTpl {
            chrome,
            q: q.trim().to_owned(),
            users,
            open: form.is_some(),
            form: NewUserForm {
                username: typed("username"),
                name: typed("name"),
                email: typed("email"),
                groups: typed("groups"),
            },
        },
    )
}

pub async fn list(State(s): State<AppState>, signed: Signed, Query(q): Query<Search>) -> Response {
    let mut chrome = signed.chrome(SECTION);
    chrome.notice = notice(&q.notice);
    list_page(&s, &signed, &q.q, chrome, StatusCode::OK, None).await
}

fn profile_claims(form: &Form) -> Map<String, Value> {
    let mut claims = Map::new();
    for name in ["name", "email"] {
        let v = form.get(name);
        // An emptied field removes the claim.
        claims.insert(
            name.into(),
            if v.is_empty() {
                Value::Null
            } else {
                Value::String(v.into())
            },
        );
    }
    claims
}

pub async fn create(State(s): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let groups = form.list("groups");
    let claims = profile_claims(&form)
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    let spec = UserSpec {
        username: form.get("username").to_owned(),
        password: Some(form.get("password").to_owned()),
        claims,
        groups,
        ..UserSpec::default()
    };
    match signed.admin(&s.provider).create_user(&spec).await {
        Ok(u) => see_other(&format!("/admin/users/{}?notice=created", u.id)),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            list_page(&s, &signed, "", chrome, status, Some(&form)).await
        }
    }
}

/// The profile form's fields.
struct ProfileForm {
    username: String,
    name: String,
    email: String,
    email_verified: bool,
    groups: String,
    attributes: String,
}

impl ProfileForm {
    fn of(u: &User) -> ProfileForm {
        ProfileForm {
            username: u.username.clone(),
            name: claim(u, "name"),
            email: claim(u, "email"),
            email_verified: u.claims.get("email_verified") == Some(&Value::Bool(true)),
            groups: u.groups.join(", "),
            attributes: serde_json::to_string_pretty(&u.attributes).unwrap_or_default(),
        }
    }

    fn typed(f: &Form) -> ProfileForm {
        ProfileForm {
            username: f.get("username").into(),
            name: f.get("name").into(),
            email: f.get("email").into(),
            email_verified: f.checked("email_verified"),
            groups: f.get("groups").into(),
            attributes: f.get("attributes").into(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserTpl {
    chrome: Chrome,
    u: User,
    etag: String,
    form: ProfileForm,
    /// `None`: this sign-in may not see them (`consents`).
    consents: Option<Vec<Consent>>,
    sessions: Vec<SessionView>,
    grants: Vec<GrantView>,
    /// `None`: this sign-in may not see them.
    factors: Option<FactorsView>,
    /// `None`: this sign-in may not see them.
    identities: Option<Vec<LinkedIdentity>>,
}

impl UserTpl {
    fn when(&self, t: &tessera_core::Timestamp) -> String {
        when(*t)
    }
}

async fn user_page(
    s: &AppState,
    signed: &Signed,
    u: User,
    chrome: Chrome,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let p = signed.admin(&s.provider);
    let consents = match p.user_consents(&u.id).await {
        Ok(c) => Some(c),
        Err(AdminError::Forbidden { .. }) => None,
        Err(e) => return refused(chrome, &e),
    };
    let (sessions, grants) = match (p.user_sessions(&u.id).await, p.user_grants(&u.id).await) {
        (Ok(s), Ok(g)) => (s, g),
        (Err(e), _) | (_, Err(e)) => return refused(chrome, &e),
    };
    let factors = match p.user_factors(&u.id).await {
        Ok(f) => Some(f),
        Err(AdminError::Forbidden { .. }) => None,
        Err(e) => return refused(chrome, &e),
    };
    let identities = match p.identities(&u.id).await {
        Ok(i) => Some(i),
        Err(AdminError::Forbidden { .. }) => None,
        Err(e) => return refused(chrome, &e),
    };
    render(
        status,
        &UserTpl {
            chrome,
            etag: etag(&u),
            form: typed.map_or_else(|| ProfileForm::of(&u), ProfileForm::typed),
            u,
            consents,
            sessions,
            grants,
            factors,
            identities,
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
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    match signed.admin(&s.provider).user(&id).await {
        Ok(u) => {
            let mut chrome = signed.chrome(SECTION);
            chrome.notice = notice(&q.notice);
            user_page(&s, &signed, u, chrome, StatusCode::OK, None).await
        }
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

/// The profile form as a change of `before`: attributes replace the stored ones (keys taken out
/// of the JSON are removed), an emptied field removes its claim, and an unticked box adds no
/// `email_verified: false` to a user who never had the claim.
fn patch_from(before: &User, form: &Form) -> Result<UserPatch, AdminError> {
    let mut claims = profile_claims(form);
    let verified = form.checked("email_verified");
    if verified || before.claims.contains_key("email_verified") {
        claims.insert("email_verified".into(), Value::Bool(verified));
    }
    let mut attributes = match form.get("attributes") {
        "" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(AdminError::Invalid {
                    field: "attributes".into(),
                    message: "must be a JSON object, like {\"department\": \"sales\"}".into(),
                })
            }
        },
    };
    for k in before.attributes.keys() {
        attributes.entry(k.clone()).or_insert(Value::Null);
    }
    Ok(UserPatch {
        username: Some(form.get("username").to_owned()),
        claims,
        attributes,
        groups: Some(form.list("groups")),
        blocked: None,
    })
}

pub async fn save(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let before = match signed.admin(&s.provider).user(&id).await {
        Ok(u) => u,
        Err(e) => return refused(signed.chrome(SECTION), &e),
    };
    let saved = match patch_from(&before, &form) {
        Ok(patch) => {
            let admin = signed.admin(&s.provider).if_match(Some(form.get("etag")));
            admin.update_user(&id, &patch).await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(u) => see_other(&format!("/admin/users/{}?notice=saved", u.id)),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            let stale = matches!(e, AdminError::PreconditionFailed);
            match signed.admin(&s.provider).user(&id).await {
                // A stale form shows their change; any other refusal shows what was typed.
                Ok(now) => {
                    user_page(&s, &signed, now, chrome, status, (!stale).then_some(&form)).await
                }
                Err(e) => refused(signed.chrome(SECTION), &e),
            }
        }
    }
}

pub async fn block(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let blocked = form.get("blocked") == "true";
    let patch = UserPatch {
        blocked: Some(blocked),
        ..UserPatch::default()
    };
    match signed.admin(&s.provider).update_user(&id, &patch).await {
        Ok(u) => {
            let key = if blocked { "blocked" } else { "unblocked" };
            see_other(&format!("/admin/users/{}?notice={key}", u.id))
        }
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn password(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let change = PasswordChange {
        password: form.get("password").to_owned(),
        current_password: None,
    };
    match signed
        .admin(&s.provider)
        .set_user_password(&id, &change)
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{id}?notice=password")),
        Err(e) => {
            let (status, text) = explain(&e);
            let mut chrome = signed.chrome(SECTION);
            chrome.error = Some(text);
            match signed.admin(&s.provider).user(&id).await {
                Ok(u) => user_page(&s, &signed, u, chrome, status, None).await,
                Err(e) => refused(signed.chrome(SECTION), &e),
            }
        }
    }
}

#[derive(Deserialize)]
pub struct FactorQuery {
    #[serde(default)]
    factor: String,
}

/// Asks before one of the user's factors is removed.
pub async fn confirm_remove_factor(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<FactorQuery>,
) -> Response {
    let admin = signed.admin(&s.provider);
    let u = match admin
        .user(&id)
        .await
        .and_then(|u| admin.may_on_user(Operation::RemoveFactor, &u).map(|()| u))
    {
        Ok(u) => u,
        Err(e) => return refused(signed.chrome(SECTION), &e),
    };
    let text = format!(
        "{}'s factor {} will be removed, and {} signed out everywhere.",
        u.username, q.factor, u.username
    );
    let action = format!("/admin/users/{id}/factors");
    let back = format!("/admin/users/{id}");
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Remove the factor?",
            message: &text,
            action: &action,
            fields: vec![("factor", &q.factor)],
            button: "Remove",
            back: &back,
        },
    )
}

/// Removes one of the user's factors.
pub async fn remove_factor(
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
        .remove_factor(&id, form.get("factor"))
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{id}?notice=factor")),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

/// Requires (or stops requiring) a second factor at the user's next sign-in.
pub async fn require_enrolment(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let required = form.get("required") == "true";
    match signed
        .admin(&s.provider)
        .require_enrolment(&id, required)
        .await
    {
        Ok(()) => {
            let key = if required { "enrolment" } else { "waived" };
            see_other(&format!("/admin/users/{id}?notice={key}"))
        }
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

pub async fn revoke_consent(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let done = signed
        .admin(&s.provider)
        .revoke_consent(&id, form.get("client_id"))
        .await;
    back_to_user(&signed, &id, done, "consent")
}

/// The user's page with the notice `key` once a change is done, or the refusal.
fn back_to_user(signed: &Signed, id: &str, done: Result<(), AdminError>, key: &str) -> Response {
    match done {
        Ok(()) => see_other(&format!("/admin/users/{id}?notice={key}")),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

/// Ends one session (`sid`), or every session of the user (`all`).
pub async fn end_sessions(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let admin = signed.admin(&s.provider);
    let (done, key) = match form.get("sid") {
        "" => (admin.end_user_sessions(&id).await, "sessions"),
        sid => (admin.end_user_session(&id, sid).await, "session"),
    };
    back_to_user(&signed, &id, done, key)
}

/// Revokes one grant (`grant_id`), or every grant of the user.
pub async fn revoke_grants(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    let admin = signed.admin(&s.provider);
    let (done, key) = match form.get("grant_id") {
        "" => (admin.revoke_user_grants(&id, None).await, "grants"),
        g => (admin.revoke_user_grant(&id, g).await, "grant"),
    };
    back_to_user(&signed, &id, done, key)
}

pub async fn confirm_delete(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let admin = signed.admin(&s.provider);
    let u = match admin
        .user(&id)
        .await
        .and_then(|u| admin.may_on_user(Operation::DeleteUser, &u).map(|()| u))
    {
        Ok(u) => u,
        Err(e) => return refused(signed.chrome(SECTION), &e),
    };
    let text = format!(
        "{} will be deleted with their consents; their tokens stop working. This cannot be undone.",
        u.username
    );
    let action = format!("/admin/users/{id}/delete");
    let back = format!("/admin/users/{id}");
    render(
        StatusCode::OK,
        &ConfirmTpl {
            chrome: signed.chrome(SECTION),
            title: "Delete the user?",
            message: &text,
            action: &action,
            fields: Vec::new(),
            button: "Delete user",
            back: &back,
        },
    )
}

pub async fn delete(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r;
    }
    match signed.admin(&s.provider).delete_user(&id).await {
        Ok(()) => see_other("/admin/users?notice=deleted"),
        Err(e) => refused(signed.chrome(SECTION), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(claims: Value, attributes: Value) -> User {
        serde_json::from_value(json!({
            "id": "u1", "username": "ann", "claims": claims, "attributes": attributes,
            "groups": [], "blocked": false, "created_at": 0, "updated_at": 0
        }))
        .unwrap()
    }

    #[test]
    fn the_profile_form_changes_only_what_it_shows() {
        let never = user(
            json!({"name": "Ann"}),
            json!({"dept": "R&D", "site": "Gent"}),
        );
        let form =
            Form::parse(b"username=ann&name=Ann+B&email=&attributes=%7B%22dept%22%3A%22Ops%22%7D");
        let p = patch_from(&never, &form).unwrap();
        assert_eq!(
            p.claims.get("email_verified"),
            None,
            "never had it: unticked adds nothing"
        );
        assert_eq!(p.claims["name"], "Ann B");
        assert_eq!(p.claims["email"], Value::Null, "emptied: removed");
        assert_eq!(p.attributes["dept"], "Ops");
        assert_eq!(
            p.attributes["site"],
            Value::Null,
            "taken out of the JSON: removed"
        );

        let had = user(json!({"email_verified": true}), json!({}));
        let p = patch_from(&had, &form).unwrap();
        assert_eq!(
            p.claims["email_verified"], false,
            "unticked on a user who had it"
        );
        let ticked = Form::parse(b"username=ann&email_verified=on");
        assert_eq!(
            patch_from(&never, &ticked).unwrap().claims["email_verified"],
            true
        );
        let bad = Form::parse(b"username=ann&attributes=%5B1%5D");
        assert!(patch_from(&never, &bad).is_err());
    }
}

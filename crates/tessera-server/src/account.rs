//! The self-service account page (`/account`): signs in through Tessera as the public client
//! `tessera-account` (authorization code with PKCE), then works on the SSO session. The user
//! sees and manages their factors, recovery codes, password, sessions and the applications they
//! consented to; core decides what they may do ([`tessera_core::account`]). Forms carry a CSRF
//! token derived from the session cookie; changing how one signs in needs a recent sign-in, which
//! `/account/login?fresh=1` gets by signing in again (every factor the user holds).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::account::{AccountError, AccountView, PendingFactor};
use tessera_core::admin::{AdminError, ACCOUNT_CLIENT};
use tessera_core::client_auth::ClientRequest;
use tessera_core::params::Params;
use tessera_core::secret::{b64url, constant_time_eq, random_bytes, sha256};
use tessera_core::session::Session;

use crate::interaction::ClientAddr;
use crate::pages::{html, Policy};
use crate::{cookies, AppState};

/// The pending sign-in: state and PKCE verifier.
const PENDING: &str = "tessera_account_login";

fn secure(s: &AppState) -> bool {
    s.provider.settings.issuer.starts_with("https://")
}

fn see_other(location: &str) -> Response {
    let mut res = Response::new(axum::body::Body::empty());
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = http::HeaderValue::from_str(location) {
        res.headers_mut().insert(http::header::LOCATION, v);
    }
    res
}

/// The forms' CSRF token: a hash of the session cookie, which another site cannot read.
fn csrf_for(cookie: &str) -> String {
    b64url(&sha256(format!("tessera-account-csrf:{cookie}").as_bytes()))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTpl<'a> {
    v: &'a AccountView,
    csrf: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

impl AccountTpl<'_> {
    fn when(&self, t: &tessera_core::Timestamp) -> String {
        crate::portal::when(*t)
    }
}

#[derive(Template)]
#[template(path = "account_factor.html")]
struct FactorTpl<'a> {
    p: &'a PendingFactor,
    csrf: &'a str,
    qr_svg: String,
    algorithms: String,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_codes.html")]
struct CodesTpl<'a> {
    codes: &'a [String],
}

/// The signed-in user, with the session cookie.
async fn signed_in(s: &AppState, headers: &HeaderMap) -> Option<(Session, String)> {
    let cookie = cookies::get(headers, cookies::SESSION)?;
    let p = &s.provider;
    let session = p.session(Some(cookie), p.now()).await.ok()??;
    Some((session, cookie.to_owned()))
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    notice: String,
    #[serde(default)]
    fresh: String,
}

fn notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "password" => "Your password was changed; you are signed out everywhere else.",
        "removed" => "The factor was removed.",
        "added" => "The factor was added.",
        "consent" => "The application's access was revoked.",
        "linked" => "The identity was linked.",
        "not_linked" => "The identity was not linked: it may be linked to another account, or the sign-in there did not complete.",
        "unlinked" => "The identity was unlinked.",
        "approved" => "The sign-in request was approved.",
        "denied" => "The sign-in request was denied.",
        _ => return None,
    })
}

async fn page(
    s: &AppState,
    session: &Session,
    cookie: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let v = match s.provider.account(session).await {
        Ok(v) => v,
        Err(e) => return failed(&e),
    };
    let csrf = csrf_for(cookie);
    html(
        status,
        AccountTpl {
            v: &v,
            csrf: &csrf,
            notice,
            error,
        }
        .render(),
        Policy::Plain,
    )
}

fn failed(e: &AccountError) -> Response {
    tracing::warn!(error = %e, "account page");
    crate::pages::error(&tessera_core::Error::invalid_request(e.to_string()))
}

/// `GET /account`.
pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    match signed_in(&s, &headers).await {
        Some((session, cookie)) => {
            page(
                &s,
                &session,
                &cookie,
                notice(&q.notice),
                None,
                StatusCode::OK,
            )
            .await
        }
        None => see_other("/account/login"),
    }
}

/// `GET /account/login`: the authorization request of the account page's client; `fresh=1`
/// asks for every factor again (`max_age=0`).
pub async fn login(State(s): State<AppState>, Query(q): Query<PageQuery>) -> Response {
    let p = &s.provider;
    let state = b64url(&random_bytes::<16>());
    let verifier = b64url(&random_bytes::<32>());
    let challenge = b64url(&sha256(verifier.as_bytes()));
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", ACCOUNT_CLIENT)
        .append_pair("redirect_uri", &p.settings.endpoint("/account/callback"))
        .append_pair("scope", "openid")
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if q.fresh == "1" {
        query.append_pair("max_age", "0");
    }
    let mut res = see_other(&format!(
        "{}?{}",
        p.settings.endpoint("/authorize"),
        query.finish()
    ));
    cookies::set(
        res.headers_mut(),
        PENDING,
        &format!("{state}.{verifier}"),
        600,
        cookies::Kind::Account,
        secure(&s),
    );
    res
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /account/callback`: the code is redeemed in-process (so none is left lying about), and
/// the account page works on the SSO session the sign-in made.
pub async fn callback(
    State(s): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let pending = cookies::get(&headers, PENDING).and_then(|v| v.split_once('.'));
    let Some((state, verifier)) = pending else {
        return see_other("/account/login");
    };
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|st| constant_time_eq(st.as_bytes(), state.as_bytes()));
    let (Some(code), true) = (q.code, state_ok) else {
        // Tessera's own words only: this page is reachable with any query an attacker writes.
        return crate::pages::error(&tessera_core::Error::access_denied(
            "the sign-in to your account did not complete; start again from /account",
        ));
    };
    let callback = s.provider.settings.endpoint("/account/callback");
    let req = ClientRequest {
        authorization: None,
        params: Params::from_pairs([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("client_id", ACCOUNT_CLIENT),
            ("code_verifier", verifier),
        ]),
        address,
        dpop: None,
        certificate: None,
    };
    if let Err(e) = s.provider.token(&req).await.result {
        return crate::pages::error(&e);
    }
    let mut res = see_other("/account");
    cookies::set(
        res.headers_mut(),
        PENDING,
        "",
        0,
        cookies::Kind::Account,
        secure(&s),
    );
    res
}

/// A posted account form: the signed-in user and the form, once its CSRF token matches.
async fn posted(
    s: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Session, String, Params), Response> {
    let Some((session, cookie)) = signed_in(s, headers).await else {
        return Err(see_other("/account/login"));
    };
    let p = Params::parse(body).map_err(|e| crate::pages::error(&e))?;
    let csrf = p.get("csrf").ok().flatten().unwrap_or("");
    if !constant_time_eq(csrf.as_bytes(), csrf_for(&cookie).as_bytes()) {
        return Err(crate::pages::error(&tessera_core::Error::invalid_request(
            "the form's CSRF token is missing or does not match; reload the page",
        )));
    }
    Ok((session, cookie, p))
}

fn field<'a>(p: &'a Params, name: &str) -> &'a str {
    p.get(name).ok().flatten().unwrap_or("")
}

/// What a refused change shows: sign in again when it was not recent, else the page with why.
async fn refused(s: &AppState, session: &Session, cookie: &str, e: AccountError) -> Response {
    match e {
        AccountError::NotRecent => see_other("/account/login?fresh=1"),
        AccountError::Admin(AdminError::Forbidden { .. }) => failed(&e),
        e => {
            let status = match &e {
                AccountError::Wrong(_) => StatusCode::UNAUTHORIZED,
                AccountError::Admin(AdminError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
                AccountError::Admin(AdminError::Conflict(_)) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            page(s, session, cookie, None, Some(&e.to_string()), status).await
        }
    }
}

/// `POST /account/password`: the current password, then the new one.
pub async fn password(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s
        .provider
        .account_password(
            &session,
            field(&p, "current_password"),
            field(&p, "password"),
        )
        .await
    {
        // The change signed the user out everywhere, this browser too: sign in with the new one.
        Ok(()) => see_other("/account/login"),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// `POST /account/factors/remove`.
pub async fn remove_factor(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s
        .provider
        .account_remove_factor(&session, field(&p, "factor"))
        .await
    {
        Ok(()) => see_other("/account?notice=removed"),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// `POST /account/backchannel`: approves or denies an application's CIBA request.
pub async fn backchannel(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let approve = match field(&p, "decision") {
        "approve" => true,
        "deny" => false,
        _ => return failed(&AccountError::Wrong("Approve or deny the request.")),
    };
    match s
        .provider
        .account_decide_backchannel(&session, field(&p, "id"), approve)
        .await
    {
        Ok(()) if approve => see_other("/account?notice=approved"),
        Ok(()) => see_other("/account?notice=denied"),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// `POST /account/consents/revoke`.
pub async fn revoke_consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s
        .provider
        .account_revoke_consent(&session, field(&p, "client_id"))
        .await
    {
        Ok(()) => see_other("/account?notice=consent"),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// `POST /account/identities/link`: the browser goes to the identity provider to link it.
pub async fn link_identity(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.provider.account_link(&session, field(&p, "idp")).await {
        Ok(Ok(url)) => see_other(&url),
        Ok(Err(msg)) => {
            page(
                &s,
                &session,
                &cookie,
                None,
                Some(&msg),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// `POST /account/identities/unlink`.
pub async fn unlink_identity(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s
        .provider
        .account_unlink(&session, field(&p, "idp"), field(&p, "subject"))
        .await
    {
        Ok(()) => see_other("/account?notice=unlinked"),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// Back on the account page after linking at an identity provider.
pub fn after_link(result: Result<String, String>) -> Response {
    match result {
        Ok(_) => see_other("/account?notice=linked"),
        Err(why) => {
            tracing::info!(why, "an identity was not linked");
            see_other("/account?notice=not_linked")
        }
    }
}

fn factor_page(
    pending: &PendingFactor,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let qr_svg = pending
        .totp
        .as_ref()
        .map(|t| crate::pages::qr_svg(&t.uri))
        .unwrap_or_default();
    let algorithms = pending
        .passkey
        .as_ref()
        .map(tessera_core::authorize::PasskeyCreation::algorithm_list)
        .unwrap_or_default();
    html(
        status,
        FactorTpl {
            p: pending,
            csrf,
            qr_svg,
            algorithms,
            error,
        }
        .render(),
        Policy::SignIn,
    )
}

/// `POST /account/factors/new`: the page that sets up an authenticator app (`kind=totp`) or a
/// passkey (`kind=passkey`).
pub async fn new_factor(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s
        .provider
        .account_pending(&session, field(&p, "kind") == "passkey")
    {
        Ok(pending) => factor_page(&pending, &csrf_for(&cookie), None, StatusCode::OK),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

fn codes_or_done(codes: Option<Vec<String>>) -> Response {
    match codes {
        Some(codes) => html(
            StatusCode::OK,
            CodesTpl { codes: &codes }.render(),
            Policy::Plain,
        ),
        None => see_other("/account?notice=added"),
    }
}

/// `POST /account/factors/confirm`: the first code of the app, or the passkey's registration.
pub async fn confirm_factor(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, cookie, p) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let state = field(&p, "state");
    let done = if field(&p, "kind") == "passkey" {
        s.provider
            .account_add_passkey(
                &session,
                state,
                field(&p, "client_data_json"),
                field(&p, "attestation_object"),
                field(&p, "name"),
            )
            .await
    } else {
        s.provider
            .account_confirm_totp(&session, state, field(&p, "code"))
            .await
    };
    match done {
        Ok(codes) => codes_or_done(codes),
        Err(AccountError::Wrong(why)) if why != "pending_expired" && why != "pending_state" => {
            // The same setup again (the same key), with the one message.
            match s.provider.account_reopen(&session, state) {
                Ok(pending) => factor_page(
                    &pending,
                    &csrf_for(&cookie),
                    Some(&AccountError::Wrong(why).to_string()),
                    StatusCode::UNAUTHORIZED,
                ),
                Err(e) => refused(&s, &session, &cookie, e).await,
            }
        }
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

/// `POST /account/codes`: new recovery codes, shown once.
pub async fn new_codes(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, cookie, _) = match posted(&s, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.provider.account_new_codes(&session).await {
        Ok(codes) => codes_or_done(Some(codes)),
        Err(e) => refused(&s, &session, &cookie, e).await,
    }
}

//! The browser endpoints: `/authorize` (GET and POST), the login and consent forms that resume a
//! paused request, `/logout` (RP-initiated, with front- and back-channel notification) and the
//! check_session iframe. Handlers translate HTTP to core calls and core outcomes to pages.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::response::Response;
use http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tessera_core::authorize::{
    AuthorizeOutcome, ConsentForm, Enrolment, LoginForm, LoginOutcome, PasskeyAnswer, ResponseMode,
    StepForm, UpstreamForm, UpstreamOutcome, UpstreamReturn,
};
use tessera_core::params::Params;
use tessera_core::session::Session;
use tessera_core::Error;

use crate::{cookies, pages, AppState};

/// The client's address, for throttling: the last entry of the configured proxy header (the one
/// the trusted proxy appended), else the socket's peer; "unknown" in in-process tests.
pub fn client_address(headers: &HeaderMap, extensions: &http::Extensions, s: &AppState) -> String {
    let from_proxy = s.client_ip_header.as_ref().and_then(|h| {
        headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
            .map(|v| v.chars().take(64).collect::<String>())
    });
    from_proxy.unwrap_or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
    })
}

/// [`client_address`] as an extractor.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(
            &parts.headers,
            &parts.extensions,
            s,
        )))
    }
}

fn secure(s: &AppState) -> bool {
    s.provider.settings.issuer.starts_with("https://")
}

/// Parameters from the query (GET) or the form body (POST, RFC 6749 §3.1 / OIDC Core §3.1.2.1).
fn params(
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: &Bytes,
) -> Result<Params, Error> {
    if method == Method::POST {
        let ct = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(Error::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Params::parse(body)
    } else {
        Params::parse(query.unwrap_or_default().as_bytes())
    }
}

fn redirect(location: &str) -> Response {
    let mut res = Response::new(axum::body::Body::empty());
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

/// A core outcome as an HTTP response.
pub(crate) fn render(s: &AppState, outcome: AuthorizeOutcome) -> Response {
    render_as(s, outcome, StatusCode::OK)
}

/// A core outcome as an HTTP response; a page of a paused request with `status`.
fn render_as(s: &AppState, outcome: AuthorizeOutcome, status: StatusCode) -> Response {
    match outcome {
        AuthorizeOutcome::ErrorPage(e) => pages::error(&e),
        AuthorizeOutcome::Respond(r) => match r.mode {
            ResponseMode::FormPost => pages::form_post(&r.redirect_uri, &r.params),
            _ => redirect(&r.location()),
        },
        AuthorizeOutcome::Login(page) => paused(s, pages::login(&page, status), &page.interaction),
        AuthorizeOutcome::Consent(page) => paused(s, pages::consent(&page), &page.interaction),
        AuthorizeOutcome::Factor(page) => {
            paused(s, pages::factor(&page, status), &page.interaction)
        }
        AuthorizeOutcome::Enrol(page) => paused(s, pages::enrol(&page, status), &page.interaction),
        AuthorizeOutcome::Codes(page) => paused(s, pages::codes(&page), &page.interaction),
        AuthorizeOutcome::Upstream { interaction, url } => paused(s, redirect(&url), &interaction),
    }
}

/// A page of a paused request, with the interaction cookie its form needs.
fn paused(s: &AppState, mut res: Response, interaction: &str) -> Response {
    cookies::set(
        res.headers_mut(),
        cookies::INTERACTION,
        interaction,
        1800,
        cookies::Kind::Interaction,
        secure(s),
    );
    res
}

/// RFC 6749 §3.1, OIDC Core §3.1.2.1: `GET` and `POST /authorize`.
pub async fn authorize(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let p = match params(&method, &headers, query, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let outcome = s
        .provider
        .authorize(&p, cookies::get(&headers, cookies::SESSION))
        .await;
    render(&s, outcome)
}

fn form(headers: &HeaderMap, body: &Bytes) -> Result<Params, Error> {
    params(&Method::POST, headers, None, body)
}

/// `POST /login`.
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten();
    let submitted = LoginForm {
        interaction: field("interaction").unwrap_or(""),
        csrf: field("csrf"),
        cookie: cookies::get(&headers, cookies::INTERACTION),
        username: field("username").unwrap_or(""),
        password: field("password").unwrap_or(""),
        address: &addr,
        session_cookie: cookies::get(&headers, cookies::SESSION),
    };
    let outcome = s.provider.login(&submitted).await;
    step_response(&s, outcome)
}

/// A sign-in step's outcome as a response: the page again (401, or 429 with `Retry-After`), or
/// the next page with the session's cookies.
fn step_response(s: &AppState, outcome: LoginOutcome) -> Response {
    let counted = match &outcome {
        LoginOutcome::Retry(_) => Some("failed"),
        LoginOutcome::Throttled { .. } => Some("throttled"),
        LoginOutcome::Done { .. } => Some("succeeded"),
        LoginOutcome::Refused(_) | LoginOutcome::Elsewhere(_) => None,
    };
    if let Some(c) = counted {
        metrics::counter!("tessera_sign_ins_total", "outcome" => c).increment(1);
    }
    match outcome {
        LoginOutcome::Retry(page) => render_as(s, page, StatusCode::UNAUTHORIZED),
        LoginOutcome::Throttled { page, retry_after } => {
            let mut res = render_as(s, page, StatusCode::TOO_MANY_REQUESTS);
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                res.headers_mut().insert(RETRY_AFTER, v);
            }
            res
        }
        LoginOutcome::Refused(e) => pages::error(&e),
        LoginOutcome::Elsewhere(outcome) => render(s, outcome),
        LoginOutcome::Done {
            session_cookie,
            sid,
            outcome,
        } => {
            let browser_state = s.provider.browser_state(&sid);
            let mut res = render(s, outcome);
            let h = res.headers_mut();
            let life = s.provider.settings.session_lifetime;
            cookies::set(
                h,
                cookies::SESSION,
                &session_cookie,
                life,
                cookies::Kind::Session,
                secure(s),
            );
            cookies::set(
                h,
                cookies::BROWSER_STATE,
                &browser_state,
                life,
                cookies::Kind::BrowserState,
                secure(s),
            );
            res
        }
    }
}

/// `POST /login/upstream`: a button of the sign-in page sends the browser to an upstream
/// identity provider.
pub async fn login_upstream(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten();
    let submitted = UpstreamForm {
        interaction: field("interaction").unwrap_or(""),
        csrf: field("csrf"),
        cookie: cookies::get(&headers, cookies::INTERACTION),
        idp: field("idp").unwrap_or(""),
    };
    render(&s, s.provider.start_upstream(&submitted).await)
}

/// `GET /federation/{idp}/callback`: the upstream sends the browser back (OIDC Core §3.1.2.5).
pub async fn upstream_callback(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match params(&Method::GET, &headers, query, &Bytes::new()) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten();
    let r = UpstreamReturn {
        idp: &idp,
        state: field("state"),
        code: field("code"),
        error: field("error"),
        iss: field("iss"),
        saml_response: None,
        interaction_cookie: cookies::get(&headers, cookies::INTERACTION),
        session_cookie: cookies::get(&headers, cookies::SESSION),
    };
    upstream_answer(&s, &r).await
}

/// An upstream's answer (an OpenID Connect callback, a SAML Response): the sign-in goes on, or
/// the account page says what linking came to.
async fn upstream_answer(s: &AppState, r: &UpstreamReturn<'_>) -> Response {
    match s.provider.upstream_return(r).await {
        UpstreamOutcome::SignIn(outcome) => step_response(s, *outcome),
        UpstreamOutcome::Linked(result) => crate::account::after_link(result),
    }
}

/// `POST /federation/{idp}/acs`: a SAML provider's Response, kept; the browser fetches it back
/// with its cookies.
pub async fn saml_acs_post(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Bindings §3.5.4: a form of two fields, the Response larger than other parameters.
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return pages::error(&Error::invalid_request(
            "the Response is posted as application/x-www-form-urlencoded",
        ));
    }
    let (mut response, mut relay) = (None, None);
    for (k, v) in form_urlencoded::parse(&body) {
        let slot = match k.as_ref() {
            "SAMLResponse" => &mut response,
            "RelayState" => &mut relay,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return pages::error(&Error::invalid_request(format!("{k} is given twice")));
        }
    }
    match s
        .provider
        .saml_post(&idp, response.as_deref(), relay.as_deref())
        .await
    {
        Ok(path) => redirect(&path),
        Err(e) => pages::error(&e),
    }
}

/// `GET /federation/{idp}/acs?posted=…`: the kept Response, with the browser's cookies.
pub async fn saml_acs(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match params(&Method::GET, &headers, query, &Bytes::new()) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let posted = match s
        .provider
        .saml_posted(&idp, p.get("posted").ok().flatten())
        .await
    {
        Ok(Some(x)) => x,
        Ok(None) => {
            return pages::error(&Error::invalid_request(
                "the sign-in at the identity provider is unknown, expired or was already completed; start signing in again from the application",
            ))
        }
        Err(e) => return pages::error(&e),
    };
    let r = UpstreamReturn {
        idp: &idp,
        state: posted.1.as_deref(),
        code: None,
        error: None,
        iss: None,
        saml_response: Some(&posted.0),
        interaction_cookie: cookies::get(&headers, cookies::INTERACTION),
        session_cookie: cookies::get(&headers, cookies::SESSION),
    };
    upstream_answer(&s, &r).await
}

/// `GET /federation/{idp}/slo`: SAML single logout (HTTP-Redirect): the provider's
/// LogoutRequest (the browser goes back with a LogoutResponse), or its LogoutResponse to
/// Tessera's (on to the application's post-logout redirect, or the signed-out page).
pub async fn saml_slo(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.clone().unwrap_or_default();
    let p = match params(&Method::GET, &headers, query, &Bytes::new()) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let has = |k: &str| p.get(k).ok().flatten().is_some();
    if has("SAMLRequest") {
        return match s.provider.saml_logout_request(&idp, &raw).await {
            Ok(url) => redirect(&url),
            Err(e) => pages::error(&e),
        };
    }
    if !has("SAMLResponse") {
        return pages::error(&Error::invalid_request(
            "a SAMLRequest or a SAMLResponse is expected",
        ));
    }
    let state = p.get("RelayState").ok().flatten();
    back_from_upstream_logout(&s, &idp, state).await
}

/// Back from the upstream's logout (its `state` or RelayState): on to the application's
/// post-logout redirect, or the signed-out page.
async fn back_from_upstream_logout(s: &AppState, idp: &str, state: Option<&str>) -> Response {
    match s.provider.upstream_logged_out(idp, state).await {
        Ok(Some(then)) => redirect(&then),
        Ok(None) => pages::logged_out(&[], &None),
        Err(e) => pages::error(&e),
    }
}

/// `GET /saml/metadata/{idp}`: Tessera's SAML service-provider metadata for the provider.
pub async fn saml_metadata(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
) -> Response {
    match s.provider.saml_sp_metadata(&idp) {
        Some(xml) => {
            let mut r = Response::new(axum::body::Body::from(xml));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/samlmetadata+xml"),
            );
            r
        }
        None => pages::error(&Error::invalid_request(
            "there is no SAML identity provider of that name",
        )),
    }
}

/// `GET /federation/{idp}/logged-out`: back from the upstream's logout, on to the
/// application's post-logout redirect (or the signed-out page).
pub async fn upstream_logged_out(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match params(&Method::GET, &headers, query, &Bytes::new()) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let state = p.get("state").ok().flatten();
    back_from_upstream_logout(&s, &idp, state).await
}

/// `POST /federation/{idp}/backchannel-logout`: the upstream's logout token (Back-Channel
/// Logout 1.0 §2.8: 200 when done, 400 with an error body when refused).
pub async fn upstream_backchannel_logout(
    State(s): State<AppState>,
    axum::extract::Path(idp): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&Method::POST, &headers, None, &body) {
        Ok(p) => p,
        Err(e) => return crate::oauth::respond::error_body(StatusCode::BAD_REQUEST, &e),
    };
    let token = p.get("logout_token").ok().flatten();
    match s.provider.upstream_backchannel_logout(&idp, token).await {
        Ok(_) => {
            let mut r = Response::new(axum::body::Body::empty());
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => crate::oauth::respond::error(&s, e),
    }
}

/// The fields every sign-in step posts.
fn step_form<'a>(p: &'a Params, headers: &'a HeaderMap, address: &'a str) -> StepForm<'a> {
    StepForm {
        interaction: p.get("interaction").ok().flatten().unwrap_or(""),
        csrf: p.get("csrf").ok().flatten(),
        cookie: cookies::get(headers, cookies::INTERACTION),
        session_cookie: cookies::get(headers, cookies::SESSION),
        address,
    }
}

/// `POST /login/code`: a TOTP or recovery code.
pub async fn login_code(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten().unwrap_or("");
    let recovery = field("kind") == "recovery";
    let outcome = s
        .provider
        .submit_code(&step_form(&p, &headers, &addr), field("code"), recovery)
        .await;
    step_response(&s, outcome)
}

/// `POST /login/passkey`: a WebAuthn assertion.
pub async fn login_passkey(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten().unwrap_or("");
    let answer = PasskeyAnswer {
        credential_id: field("credential_id"),
        client_data_json: field("client_data_json"),
        authenticator_data: field("authenticator_data"),
        signature: field("signature"),
        user_handle: field("user_handle"),
    };
    let outcome = s
        .provider
        .submit_passkey(&step_form(&p, &headers, &addr), &answer)
        .await;
    step_response(&s, outcome)
}

/// `POST /login/enrol`: a factor set up while signing in.
pub async fn login_enrol(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten().unwrap_or("");
    let enrolment = match field("method") {
        "totp" => Enrolment::Totp {
            code: field("code"),
        },
        "passkey" => Enrolment::Passkey {
            client_data_json: field("client_data_json"),
            attestation_object: field("attestation_object"),
            name: field("name"),
        },
        _ => return pages::error(&Error::invalid_request("method must be totp or passkey")),
    };
    let outcome = s
        .provider
        .submit_enrolment(&step_form(&p, &headers, &addr), &enrolment)
        .await;
    step_response(&s, outcome)
}

/// `POST /login/continue`: on from the recovery codes.
pub async fn login_continue(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let outcome = s
        .provider
        .continue_sign_in(&step_form(&p, &headers, &addr))
        .await;
    render(&s, outcome)
}

/// `POST /consent`.
pub async fn consent(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let field = |n: &str| p.get(n).ok().flatten();
    let submitted = ConsentForm {
        interaction: field("interaction").unwrap_or(""),
        csrf: field("csrf"),
        cookie: cookies::get(&headers, cookies::INTERACTION),
        approve: field("decision") == Some("allow"),
        session_cookie: cookies::get(&headers, cookies::SESSION),
    };
    let outcome = s.provider.consent(&submitted).await;
    render(&s, outcome)
}

/// OIDC RP-Initiated Logout §2–§3: `GET` and `POST /logout`.
pub async fn logout(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let p = match params(&method, &headers, query, &body) {
        Ok(p) => p,
        Err(e) => return pages::error(&e),
    };
    let session: Option<Session> = match s
        .provider
        .session(cookies::get(&headers, cookies::SESSION), s.provider.now())
        .await
    {
        Ok(x) => x,
        Err(e) => return pages::error(&e),
    };
    let req = match s.provider.logout_request(&p, session.as_ref()).await {
        Ok(r) => r,
        Err(e) => return pages::error(&e),
    };
    let Some(session) = session else {
        return match req.post_logout_redirect {
            Some(r) => redirect(&r),
            None => pages::logged_out(&[], &None),
        };
    };
    let confirmed = method == Method::POST
        && p.get("confirm").ok().flatten() == Some("yes")
        && s.provider
            .logout_csrf_ok(&session.record.sid, p.get("csrf").ok().flatten());
    if !req.hinted && !confirmed {
        // Without proof that the application asked, the user confirms (RP-Initiated Logout §2).
        let carried: Vec<(String, String)> = [
            "id_token_hint",
            "client_id",
            "post_logout_redirect_uri",
            "state",
        ]
        .iter()
        .filter_map(|k| {
            p.get(k)
                .ok()
                .flatten()
                .map(|v| ((*k).to_owned(), v.to_owned()))
        })
        .collect();
        return pages::logout_confirm(
            &session.user.username,
            &s.provider.logout_csrf(&session.record.sid),
            &carried,
        );
    }
    let done = match s
        .provider
        .browser_logout(&session, req.post_logout_redirect)
        .await
    {
        Ok(d) => d,
        Err(e) => return pages::error(&e),
    };
    let mut res = pages::logged_out(&done.frontchannel, &done.redirect);
    let h = res.headers_mut();
    cookies::set(
        h,
        cookies::SESSION,
        "",
        0,
        cookies::Kind::Session,
        secure(&s),
    );
    cookies::set(
        h,
        cookies::BROWSER_STATE,
        "",
        0,
        cookies::Kind::BrowserState,
        secure(&s),
    );
    res
}

/// OIDC Session Management §4.2: the OP iframe.
pub async fn check_session() -> Response {
    pages::check_session()
}

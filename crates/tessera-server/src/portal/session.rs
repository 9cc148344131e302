//! Signing in to the Admin Portal through Tessera itself: the portal is the public client
//! `tessera-admin-portal` (authorization code with PKCE, RFC 7636; only members of
//! `tessera-admins`). Its session is the access token it got, in an HttpOnly cookie sent to
//! `/admin` only; the CSRF token of its forms is derived from that token.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::admin::PORTAL_CLIENT;
use tessera_core::client_auth::ClientRequest;
use tessera_core::params::Params;
use tessera_core::secret::{b64url, constant_time_eq, random_bytes, sha256};

use super::{see_other, Form, Signed, SESSION};
use crate::admin::auth::caller_for_token;
use crate::interaction::ClientAddr;
use crate::pages::{html, Policy};
use crate::{cookies, AppState};

/// The pending sign-in: state, PKCE verifier and where to go back to.
const PENDING: &str = "tessera_admin_login";

fn secure(s: &AppState) -> bool {
    s.provider.settings.issuer.starts_with("https://")
}

/// Sends the browser to sign in, coming back to `back` afterwards.
pub fn sign_in_redirect(back: &str) -> Response {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return", back)
        .finish();
    see_other(&format!("/admin/login?{q}"))
}

/// The forms' CSRF token: a hash of the session's token, which another site cannot read.
pub fn csrf_for(token: &str) -> String {
    b64url(&sha256(format!("tessera-admin-csrf:{token}").as_bytes()))
}

/// Only a path inside the portal is a place to come back to.
fn local(back: &str) -> &str {
    if back.starts_with("/admin") && !back.starts_with("//") && !back.contains('\\') {
        back
    } else {
        "/admin"
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "return")]
    back: Option<String>,
}

/// RFC 6749 §4.1.1 with RFC 7636 §4.3: the authorization request of the portal's own client.
pub async fn login(State(s): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let p = &s.provider;
    let state = b64url(&random_bytes::<16>());
    let verifier = b64url(&random_bytes::<32>());
    let challenge = b64url(&sha256(verifier.as_bytes()));
    let back = local(q.back.as_deref().unwrap_or("/admin"));
    let pending = format!("{state}.{verifier}.{}", b64url(back.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", PORTAL_CLIENT)
        .append_pair("redirect_uri", &p.portal_callback())
        .append_pair("scope", "openid administrator")
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let mut res = see_other(&format!("{}?{query}", p.settings.endpoint("/authorize")));
    let h = res.headers_mut();
    cookies::set(h, PENDING, &pending, 600, cookies::Kind::Portal, secure(&s));
    res
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// RFC 6749 §4.1.2: the code comes back; it is redeemed in-process at the token endpoint's
/// use-case with the PKCE verifier, and the access token becomes the portal's session.
pub async fn callback(
    State(s): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let p = &s.provider;
    let pending = cookies::get(&headers, PENDING).and_then(|v| {
        let mut parts = v.splitn(3, '.');
        Some((
            parts.next()?.to_owned(),
            parts.next()?.to_owned(),
            parts.next()?.to_owned(),
        ))
    });
    let Some((state, verifier, back)) = pending else {
        return refused("This sign-in expired or was started elsewhere; start again.");
    };
    if !q
        .state
        .as_deref()
        .is_some_and(|st| constant_time_eq(st.as_bytes(), state.as_bytes()))
    {
        return refused("This sign-in does not match the one this browser started; start again.");
    }
    if let Some(error) = q.error {
        let why = match error.as_str() {
            "access_denied" => {
                "Only members of the tessera-admins group may use the Admin Portal.".to_owned()
            }
            _ => q.error_description.unwrap_or(error),
        };
        return refused(&why);
    }
    let Some(code) = q.code else {
        return refused("Tessera sent no authorization code back; start again.");
    };
    let callback = p.portal_callback();
    let req = ClientRequest {
        authorization: None,
        params: Params::from_pairs([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("client_id", PORTAL_CLIENT),
            ("code_verifier", verifier.as_str()),
        ]),
        address,
        dpop: None,
        certificate: None,
    };
    let tokens = match p.token(&req).await.result {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "admin portal sign-in: code refused");
            return refused(&format!(
                "The sign-in could not be completed: {}",
                e.description
            ));
        }
    };
    if caller_for_token(p, &tokens.access_token).await.is_err() {
        return refused("The sign-in did not give access to the admin API.");
    }
    let back = tessera_core::secret::b64url_decode(&back)
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| "/admin".into());
    let mut res = see_other(local(&back));
    let h = res.headers_mut();
    let secure = secure(&s);
    cookies::set(h, PENDING, "", 0, cookies::Kind::Portal, secure);
    let token = &tokens.access_token;
    cookies::set(
        h,
        SESSION,
        token,
        tokens.expires_in,
        cookies::Kind::Portal,
        secure,
    );
    res
}

/// Signs out of the portal: its token is revoked and the cookie goes; Tessera's own sign-out
/// page then offers to end the single sign-on session too.
pub async fn logout(
    State(s): State<AppState>,
    ClientAddr(address): ClientAddr,
    signed: Signed,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = signed.check(&Form::parse(&body)) {
        return r;
    }
    if let Some(token) = cookies::get(&headers, SESSION) {
        let req = ClientRequest {
            authorization: None,
            params: Params::from_pairs([("token", token), ("client_id", PORTAL_CLIENT)]),
            address,
            dpop: None,
            certificate: None,
        };
        if let Err(e) = s.provider.revoke(&req).await.result {
            tracing::warn!(error = %e, "admin portal sign-out: token not revoked");
        }
    }
    let mut res = see_other(&format!("/logout?client_id={PORTAL_CLIENT}"));
    cookies::set(
        res.headers_mut(),
        SESSION,
        "",
        0,
        cookies::Kind::Portal,
        secure(&s),
    );
    res
}

#[derive(Template)]
#[template(path = "admin/signin_refused.html")]
struct RefusedTpl<'a> {
    why: &'a str,
}

fn refused(why: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        RefusedTpl { why }.render(),
        Policy::Plain,
    )
}

//! Cookies of the browser flows: the SSO session (HttpOnly, SameSite=Lax), the paused request's
//! handle (HttpOnly, SameSite=Lax: the CSRF binding of the forms), and the browser state the
//! check_session iframe reads (not HttpOnly by design; it is no credential, so on an https issuer
//! it is SameSite=None so that the iframe can read it inside a relying party on another site).
//! The Admin Portal's cookies (HttpOnly, SameSite=Lax) are sent to `/admin` only. Secure whenever
//! the issuer is https.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

pub const SESSION: &str = "tessera_session";
pub const INTERACTION: &str = "tessera_interaction";
pub const BROWSER_STATE: &str = "tessera_browser_state";

/// The value of cookie `name` in the request, if sent once or more (the first wins).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What a cookie is for, which decides its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Session,
    Interaction,
    BrowserState,
    /// The Admin Portal's sign-in and its pending sign-in: sent to `/admin` only.
    Portal,
    /// The account page's pending sign-in: sent to `/account` only.
    Account,
}

/// Adds a `Set-Cookie`; `max_age` 0 deletes the cookie.
pub fn set(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    max_age: i64,
    kind: Kind,
    secure: bool,
) {
    let cross_site = secure && kind == Kind::BrowserState;
    let same_site = if cross_site { "None" } else { "Lax" };
    let path = match kind {
        Kind::Portal => "/admin",
        Kind::Account => "/account",
        _ => "/",
    };
    let mut c = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite={same_site}");
    if kind != Kind::BrowserState {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::{set, Kind};

    #[test]
    fn attributes_per_kind() {
        let mut h = http::HeaderMap::new();
        set(&mut h, "s", "v", 60, Kind::Session, true);
        set(&mut h, "b", "v", 60, Kind::BrowserState, true);
        set(&mut h, "i", "v", 60, Kind::Interaction, false);
        let all: Vec<&str> = h
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            all[0],
            "s=v; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure"
        );
        assert_eq!(all[1], "b=v; Path=/; Max-Age=60; SameSite=None; Secure");
        assert_eq!(all[2], "i=v; Path=/; Max-Age=60; SameSite=Lax; HttpOnly");
    }

    #[test]
    fn reads_cookies() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; tessera_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(super::get(&h, "tessera_session"), Some("xyz"));
        assert_eq!(super::get(&h, "c"), None);
    }
}

//! The access token of a request's `Authorization` header: `Bearer` (RFC 6750 §2.1) or `DPoP`
//! (RFC 9449 §7.1), and the request's one `DPoP` proof header (RFC 9449 §4.1).

use http::HeaderMap;
use tessera_core::resource::{DpopRequest, Presented};

/// The token of an `Authorization: Bearer` header (scheme case-insensitive), when there is one
/// and it is not empty.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    match presented_token(headers)? {
        (false, token) => Some(token),
        (true, _) => None,
    }
}

/// The token of an `Authorization` header with the `Bearer` or the `DPoP` scheme (case
/// insensitive), and whether it is the latter; none when there is no such header or it is empty.
pub fn presented_token(headers: &HeaderMap) -> Option<(bool, &str)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((false, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((true, token))
    } else {
        None
    }
}

/// RFC 9449 §4.3 step 1: the request's `DPoP` header; `Err` when there are several, or it is
/// not visible ASCII.
pub fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut all = headers.get_all("dpop").iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err("a request carries one DPoP header at most");
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| "the DPoP header is not visible ASCII")
}

/// The request a token reached a resource with: its method, and the resource's URL as Tessera
/// publishes it and at its mutual-TLS alias.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub alias: Option<&'a str>,
}

/// The presentation of `token` (with the DPoP scheme when `dpop`) in a request to `at` with the
/// given headers and client certificate.
pub fn presentation<'a>(
    headers: &'a HeaderMap,
    (dpop, token): (bool, &'a str),
    at: Target<'a>,
    certificate: Option<&'a [u8]>,
) -> Result<Presented<'a>, &'static str> {
    let proof = dpop_header(headers)?;
    Ok(Presented {
        token,
        dpop: dpop.then_some(DpopRequest {
            proof,
            method: at.method,
            url: at.url,
            alias: at.alias,
        }),
        certificate,
    })
}

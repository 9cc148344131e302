//! The bearer token of a request (RFC 6750 §2.1): `Authorization: Bearer <token>`.

use http::HeaderMap;

/// The token of an `Authorization: Bearer` header (scheme case-insensitive), when there is one
/// and it is not empty.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

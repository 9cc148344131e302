//! `response_type` values (OAuth 2.0 Multiple Response Type Encoding §3, OIDC Core §3): the set
//! Tessera implements, each in one canonical order.

/// Every `response_type` Tessera implements, in canonical order (code, id_token, token).
pub const RESPONSE_TYPES: [&str; 7] = [
    "code",
    "id_token",
    "token",
    "code id_token",
    "code token",
    "id_token token",
    "code id_token token",
];

/// A response type in canonical order, or `None` when it is not one Tessera implements.
pub fn canonical_response_type(value: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = value.split(' ').collect();
    let n = parts.len();
    parts.sort_by_key(|p| match *p {
        "code" => 0,
        "id_token" => 1,
        "token" => 2,
        _ => 3,
    });
    parts.dedup();
    if parts.len() != n {
        return None;
    }
    let joined = parts.join(" ");
    RESPONSE_TYPES.into_iter().find(|r| *r == joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types_are_canonical() {
        assert_eq!(
            canonical_response_type("token id_token"),
            Some("id_token token")
        );
        assert_eq!(
            canonical_response_type("id_token code token"),
            Some("code id_token token")
        );
        assert_eq!(canonical_response_type("code code"), None);
        assert_eq!(canonical_response_type("none"), None);
    }
}

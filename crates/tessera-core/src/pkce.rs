//! Proof Key for Code Exchange (RFC 7636): the challenge at `/authorize`, the verifier at `/token`.

use crate::error::{Error, Result};
use crate::secret::{b64url, constant_time_eq, sha256};

/// RFC 7636 §4.1: 43-128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_verifier_syntax(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.3: the challenge and its method; `plain` only when the settings allow it.
pub fn parse_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    plain_allowed: bool,
) -> Result<Option<(String, String)>> {
    let Some(c) = challenge else {
        if method.is_some() {
            return Err(Error::invalid_request(
                "code_challenge_method requires code_challenge",
            ));
        }
        return Ok(None);
    };
    let method = method.unwrap_or("plain");
    match method {
        "S256" => {}
        "plain" if plain_allowed => {}
        "plain" => {
            return Err(Error::invalid_request(
                "code_challenge_method plain is not allowed; use S256",
            ))
        }
        other => {
            return Err(Error::invalid_request(format!(
                "code_challenge_method {other} is not supported; use S256"
            )))
        }
    }
    if !is_verifier_syntax(c) {
        return Err(Error::invalid_request(
            "code_challenge must be 43-128 characters of [A-Za-z0-9-._~]",
        ));
    }
    Ok(Some((c.to_owned(), method.to_owned())))
}

/// RFC 7636 §4.6: the verifier transformed by the method equals the challenge.
pub fn verify(challenge: &str, method: &str, verifier: &str) -> bool {
    if !is_verifier_syntax(verifier) {
        return false;
    }
    let derived = match method {
        "S256" => b64url(&sha256(verifier.as_bytes())),
        "plain" => verifier.to_owned(),
        _ => return false,
    };
    constant_time_eq(derived.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(challenge, "S256", verifier));
        assert!(!verify(
            challenge,
            "S256",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"
        ));
        assert!(!verify(challenge, "plain", verifier));
        assert!(parse_challenge(Some(challenge), Some("plain"), false).is_err());
        assert!(
            parse_challenge(Some(challenge), None, false).is_err(),
            "plain is the default method"
        );
        assert!(parse_challenge(Some("short"), Some("S256"), false).is_err());
        assert!(parse_challenge(None, Some("S256"), false).is_err());
    }

    // The property-test twin of the `jws_and_authorize` fuzz target's PKCE and response-type part.
    proptest::proptest! {
        #[test]
        fn challenges_and_response_types_never_panic(
            challenge in "[ -~]{0,200}|[A-Za-z0-9._~-]{43,128}",
            method in proptest::sample::select(vec!["S256", "plain", "s256", "", "none"]),
            verifier in "[ -~]{0,200}",
            response_type in "((code|id_token|token|none|x)[ ]?){0,4}",
        ) {
            for plain in [false, true] {
                if let Ok(Some((c, m))) = parse_challenge(Some(&challenge), Some(method), plain) {
                    proptest::prop_assert!(is_verifier_syntax(&c));
                    proptest::prop_assert!(m == "S256" || (plain && m == "plain"));
                }
            }
            let _ = verify(&challenge, method, &verifier);
            if let Some(t) = crate::response_type::canonical_response_type(&response_type) {
                proptest::prop_assert_eq!(crate::response_type::canonical_response_type(t), Some(t));
            }
        }
    }
}

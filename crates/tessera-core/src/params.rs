//! `application/x-www-form-urlencoded` request parameters (RFC 6749 §3.1, §3.2: "Request and response
//! parameters MUST NOT be included more than once"): a small multimap that rejects duplicates on read.

use crate::error::{Error, Result};

/// Limits a parameter set must respect; anything larger is `invalid_request`.
pub const MAX_PARAMS: usize = 64;
pub const MAX_VALUE_LEN: usize = 8 * 1024;

#[derive(Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The parameters of a pushed authorization request (RFC 9126), never of a query or form.
    pushed: bool,
    /// The parameters of a request object the client signed (RFC 9101).
    signed: bool,
    /// The parameters of a device authorization request (RFC 8628) the user is deciding on,
    /// never of a query or form.
    device: bool,
}

/// Names only: values may be secrets or tokens.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    /// RFC 6749 Appendix B: parses a urlencoded body or query string.
    pub fn parse(body: &[u8]) -> Result<Params> {
        let mut pairs = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if pairs.len() >= MAX_PARAMS {
                return Err(Error::invalid_request("too many parameters"));
            }
            if v.len() > MAX_VALUE_LEN || k.len() > 256 {
                return Err(Error::invalid_request(format!("parameter {k} is too long")));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params {
            pairs,
            pushed: false,
            signed: false,
            device: false,
        })
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Params {
        Params {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            pushed: false,
            signed: false,
            device: false,
        }
    }

    /// These parameters as an authorization request pushed by its authenticated client.
    pub(crate) fn into_pushed(self) -> Params {
        Params {
            pushed: true,
            ..self
        }
    }

    /// These parameters as the verified request object of their client.
    pub(crate) fn into_signed(self) -> Params {
        Params {
            signed: true,
            ..self
        }
    }

    /// These parameters as the device authorization request a user entered the code of.
    pub(crate) fn into_device(self) -> Params {
        Params {
            device: true,
            ..self
        }
    }

    /// Whether these parameters are a device authorization request's (RFC 8628).
    pub fn is_device(&self) -> bool {
        self.device
    }

    /// Whether the client pushed these parameters itself (RFC 9126).
    pub fn is_pushed(&self) -> bool {
        self.pushed
    }

    /// Whether these parameters came from a request object the client signed (RFC 9101).
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The single value of `name`; an empty value counts as absent (RFC 6749 §3.1), twice is an error.
    pub fn get(&self, name: &str) -> Result<Option<&str>> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name {
                if found.is_some() {
                    return Err(Error::invalid_request(format!(
                        "parameter {name} is included more than once"
                    )));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)?
            .ok_or_else(|| Error::invalid_request(format!("parameter {name} is required")))
    }

    /// Every non-empty value of a parameter that may repeat (RFC 8707 `resource`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

/// RFC 6749 §3.3: a scope value is space-delimited, each token of NQCHAR %x21 / %x23-5B / %x5D-7E.
pub fn parse_scope(value: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for token in value.split(' ').filter(|t| !t.is_empty()) {
        if !token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(Error::invalid_scope(format!(
                "scope {token:?} contains characters RFC 6749 §3.3 does not allow"
            )));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_are_rejected_on_read() {
        let p = Params::parse(b"grant_type=client_credentials&scope=a&scope=b").unwrap();
        assert_eq!(p.get("grant_type").unwrap(), Some("client_credentials"));
        let e = p.get("scope").unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
        assert!(e.description.contains("scope"));
    }

    #[test]
    fn empty_means_absent_and_resource_repeats() {
        let p = Params::parse(b"scope=&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(p.get("scope").unwrap(), None);
        assert_eq!(p.all("resource"), vec!["https://a", "https://b"]);
        assert!(p.require("token").is_err());
    }

    #[test]
    fn scope_syntax() {
        assert_eq!(
            parse_scope("read  write read").unwrap(),
            vec!["read", "write"]
        );
        assert!(parse_scope("bad\"quote").is_err());
        assert!(parse_scope("back\\slash").is_err());
    }

    #[test]
    fn too_many_parameters() {
        let body: String = (0..100).map(|i| format!("p{i}=v&")).collect();
        assert!(Params::parse(body.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(p) = Params::parse(&body) {
                let _ = p.get("grant_type");
                let _ = p.all("resource");
            }
        }

        #[test]
        fn scope_parser_never_panics(s in ".{0,200}") {
            let _ = parse_scope(&s);
        }
    }
}

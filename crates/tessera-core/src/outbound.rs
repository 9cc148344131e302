//! Requests Tessera makes to other servers (client `jwks_uri`s, trusted issuers' keys, the token
//! exchange policy webhook, back-channel logout deliveries) go through the [`Outbound`] trait, so
//! the protocol never sees HTTP. The server implements it once, with timeouts, size limits, no
//! redirects and a refusal of non-public addresses ([`is_public`]); registration refuses such
//! destinations up front ([`check_destination`]).

use std::net::{IpAddr, Ipv4Addr};

use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{url} is not allowed (loopback, private or link-local address, or not http(s))", url = redact_url(.0))]
    Refused(String),
    #[error("{url} did not answer in time", url = redact_url(.0))]
    Timeout(String),
    #[error("{url}: {why}", url = redact_url(.0), why = .1)]
    Failed(String, String),
}

#[async_trait]
pub trait Outbound: Send + Sync + 'static {
    /// GETs a JSON document.
    async fn get_json(&self, url: &str) -> Result<Value, OutboundError>;
    /// POSTs a JSON document and reads the JSON answer.
    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, OutboundError>;
    /// POSTs an `application/x-www-form-urlencoded` body; any 2xx answer is success, its body is
    /// not read beyond the size limit.
    async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<(), OutboundError>;
    /// Any other request (a token request to an upstream, a userinfo call with a bearer token):
    /// the answer's status and body, whatever the status, up to the size limit.
    async fn send(&self, req: &Request) -> Result<Response, OutboundError> {
        Err(OutboundError::Refused(req.url.clone()))
    }
}

/// A request [`Outbound::send`] makes.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    /// A form body: the request is a POST (`application/x-www-form-urlencoded`); none: a GET.
    pub form: Option<Vec<(String, String)>>,
    /// The `Authorization` header (client credentials, a bearer token).
    pub authorization: Option<String>,
    /// The `Accept` header.
    pub accept: &'static str,
    /// A lower limit than `outbound.max_bytes` for this answer: reading stops past it.
    pub max_bytes: Option<usize>,
    /// A JSON body: the request is a POST (`application/json`); ignored with `form`.
    pub json: Option<Value>,
}

/// The URL only, redacted: the form and the header carry secrets.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("url", &redact_url(&self.url))
            .field("post", &self.form.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Outbound::send`] got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as a JSON object.
    pub fn json(&self) -> Option<serde_json::Map<String, Value>> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
    }
}

/// For processes that make no outbound requests (the CLI): every request is refused.
#[derive(Debug, Default)]
pub struct NoOutbound;

#[async_trait]
impl Outbound for NoOutbound {
    async fn get_json(&self, url: &str) -> Result<Value, OutboundError> {
        Err(OutboundError::Refused(url.to_owned()))
    }
    async fn post_json(&self, url: &str, _: &Value) -> Result<Value, OutboundError> {
        Err(OutboundError::Refused(url.to_owned()))
    }
    async fn post_form(&self, url: &str, _: &[(&str, &str)]) -> Result<(), OutboundError> {
        Err(OutboundError::Refused(url.to_owned()))
    }
}

/// A URL as it may be logged or shown: any `user:password@` replaced by `***@`, and a query
/// (which may carry a token) by `?redacted`. What is not a URL is shown as `<not a URL>`, never
/// verbatim (it could hold a secret too).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("***");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("redacted"));
            }
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// Whether an address is globally routable: not loopback, private, link-local, shared (CGNAT),
/// benchmarking, reserved, multicast, documentation, or an IPv6 form that embeds such an IPv4
/// address (mapped, compatible, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            let embedded = |hi: usize| {
                let (a, b) = (seg[hi], seg[hi + 1]);
                Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) carry an IPv4 address last.
            if seg[..6].iter().all(|s| *s == 0) || (seg[0] == 0x64 && seg[1] == 0xff9b) {
                return is_public(IpAddr::V4(embedded(6)));
            }
            // 6to4 (2002::/16) carries it right after the prefix.
            if seg[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(1)));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8))
        }
    }
}

/// Whether a URL Tessera will call may be registered: `https` with a host that is not a
/// loopback, private or link-local address literal nor `localhost`; with `allow_private`
/// (`outbound.allow_private_addresses`) also `http` and such hosts. A name that resolves to a
/// private address later is refused when the request is made. `Err` says why, for the field.
pub fn check_destination(uri: &str, allow_private: bool) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|_| "is not an absolute URI".to_owned())?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    let private = || {
        "names a loopback, private or link-local address, which Tessera does not call (set outbound.allow_private_addresses to allow it)".to_owned()
    };
    let host_private = match url.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(a)) => !is_public(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => !is_public(IpAddr::V6(a)),
    };
    match url.scheme() {
        "https" if !host_private || allow_private => Ok(()),
        "http" if allow_private => Ok(()),
        "https" => Err(private()),
        "http" if host_private => Err(private()),
        _ => Err("must use https".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "2001:4860:4860::8888"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn destinations_are_judged_at_registration() {
        for bad in [
            "http://127.0.0.1:9000/logout",
            "https://169.254.169.254/latest",
            "https://[::ffff:169.254.169.254]/x",
            "https://[::1]/x",
            "https://localhost/x",
            "https://app.localhost./x",
            "https://10.0.0.8/x",
            "http://rp.example.com/logout",
            "ftp://rp.example.com/x",
            "https://rp.example.com/x#f",
        ] {
            assert!(check_destination(bad, false).is_err(), "{bad}");
        }
        assert!(check_destination("https://rp.example.com/logout", false).is_ok());
        assert!(check_destination("http://127.0.0.1:9000/logout", true).is_ok());
        assert!(check_destination("ftp://127.0.0.1/x", true).is_err());
    }

    #[test]
    fn credentials_never_reach_a_log() {
        assert_eq!(
            redact_url("https://user:secret@keys.example.com/jwks"),
            "https://***@keys.example.com/jwks"
        );
        assert_eq!(
            redact_url("https://keys.example.com/jwks"),
            "https://keys.example.com/jwks"
        );
        assert_eq!(
            redact_url("https://keys.example.com/jwks?token=QSECRET"),
            "https://keys.example.com/jwks?redacted"
        );
        assert_eq!(redact_url("not a url: pw"), "<not a URL>");
    }
}

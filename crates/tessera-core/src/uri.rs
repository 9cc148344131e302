//! How the protocol compares the URIs and origins an application registered with what a request
//! carries: redirect URIs match exactly (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), a native app's
//! loopback redirect on any port (RFC 8252 §7.3), CORS origins exactly or by a `*.` subdomain
//! pattern (seed 002).

/// The hosts a loopback redirect URI may name (RFC 8252 §7.3; `localhost` is allowed though the
/// RFC prefers the literals).
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Whether `host` (as `url::Url::host_str` gives it) is a loopback host.
pub fn is_loopback_host(host: Option<&str>) -> bool {
    host.is_some_and(|h| LOOPBACK_HOSTS.contains(&h))
}

/// Whether `origin` (as a browser sends it) is allowed by the pattern `allowed`.
pub fn origin_matches(allowed: &str, origin: &str) -> bool {
    if allowed == origin {
        return true;
    }
    let (Some((a_scheme, a_rest)), Some((o_scheme, o_rest))) =
        (allowed.split_once("://"), origin.split_once("://"))
    else {
        return false;
    };
    let Some(suffix) = a_rest.strip_prefix("*.") else {
        return false;
    };
    a_scheme == o_scheme
        && o_rest.len() > suffix.len() + 1
        && o_rest.ends_with(suffix)
        && o_rest.as_bytes()[o_rest.len() - suffix.len() - 1] == b'.'
}

/// `http://<loopback host>` and what follows the authority of a registered loopback URI, its
/// own port left out; `None` when `uri` is not one.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let host = LOOPBACK_HOSTS.into_iter().find(|h| rest.starts_with(h))?;
    let (prefix, after) = uri.split_at("http://".len() + host.len());
    Some((prefix, strip_port(after)?))
}

/// `:<port>` taken off the front of what follows a host, when there is one; `None` when what
/// follows is neither a port nor the start of a path or query.
fn strip_port(after: &str) -> Option<&str> {
    let rest = match after.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 || p[..digits].parse::<u32>().ok()? > 65_535 {
                return None;
            }
            &p[digits..]
        }
        None => after,
    };
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

/// RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: a redirect URI matches a registered one exactly, as a
/// string. RFC 8252 §7.3: for a native app, a loopback URI matches on any port, the rest still
/// exactly (no normalisation: `127.1`, `0x7f000001` or `/./cb` are other URIs).
pub fn redirect_uri_matches(registered: &str, requested: &str, native: bool) -> bool {
    if registered == requested {
        return true;
    }
    if !native {
        return false;
    }
    match (loopback_parts(registered), loopback_parts(requested)) {
        (Some((reg_host, reg_rest)), Some((req_host, req_rest))) => {
            reg_host == req_host && reg_rest == req_rest
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(origin_matches(
            "https://*.example.com",
            "https://a.b.example.com"
        ));
        assert!(!origin_matches(
            "https://*.example.com",
            "https://example.com"
        ));
        assert!(!origin_matches(
            "https://*.example.com",
            "https://evilexample.com"
        ));
        assert!(!origin_matches(
            "https://*.example.com",
            "http://a.example.com"
        ));
        assert!(origin_matches(
            "http://localhost:3000",
            "http://localhost:3000"
        ));
    }

    #[test]
    fn loopback_redirects_match_exactly_but_for_the_port() {
        let reg = "http://127.0.0.1/cb";
        for ok in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1234/cb",
            "http://127.0.0.1:65535/cb",
        ] {
            assert!(redirect_uri_matches(reg, ok, true), "{ok}");
        }
        for bad in [
            "http://0x7f000001:1234/cb",
            "http://127.1:1234/cb",
            "http://127.0.0.1:1234/./cb",
            "http://127.0.0.1:1234/cb/",
            "http://127.0.0.1:1234/CB",
            "http://127.0.0.1:1234/cb?x=1",
            "http://127.0.0.1:1234/cb#f",
            "http://127.0.0.1:99999/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:12a/cb",
            "http://127.0.0.1.evil.com/cb",
            "http://[::1]:1234/cb",
            "HTTP://127.0.0.1:1234/cb",
            "http://user@127.0.0.1:1234/cb",
        ] {
            assert!(!redirect_uri_matches(reg, bad, true), "{bad}");
        }
        assert!(
            !redirect_uri_matches(reg, "http://127.0.0.1:1234/cb", false),
            "only native apps"
        );
        assert!(redirect_uri_matches(
            "http://[::1]:8000/cb?x=1",
            "http://[::1]:9/cb?x=1",
            true
        ));
        assert!(redirect_uri_matches(
            "http://localhost/cb",
            "http://localhost:5000/cb",
            true
        ));
    }
}

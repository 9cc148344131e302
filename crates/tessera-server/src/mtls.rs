//! The client certificate of a request (RFC 8705): from Tessera's own TLS connection, or from
//! the header a TLS-terminating proxy sets (the URL-encoded PEM, as nginx's
//! `$ssl_client_escaped_cert`), honoured only when the request comes from one of the proxies
//! Tessera is told to trust.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use http::{HeaderMap, HeaderName};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::AppState;

/// The client certificate (DER) a TLS connection presented: a request extension.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<Vec<u8>>);

/// An address or a network (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (a, p) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: IpAddr = a.parse().map_err(|_| format!("{s:?} is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has no valid prefix length"))?
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

/// A TLS-terminating proxy in front of Tessera that passes the client certificate on.
#[derive(Clone, Debug)]
pub struct CertificateProxy {
    pub header: HeaderName,
    pub trusted: Vec<Network>,
}

/// The request's client certificate: its own connection's, or the trusted proxy's header. A
/// header from anywhere else is ignored (and logged): the certificate would be anyone's claim.
pub fn presented_certificate(
    headers: &HeaderMap,
    extensions: &http::Extensions,
    s: &AppState,
) -> Option<Vec<u8>> {
    if let Some(PeerCertificate(der)) = extensions.get::<PeerCertificate>() {
        return Some(der.as_ref().clone());
    }
    let proxy = s.certificate_proxy.as_ref()?;
    let mut values = headers.get_all(&proxy.header).iter();
    let value = values.next()?;
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| proxy.trusted.iter().any(|n| n.contains(ip))) {
        tracing::warn!(peer = ?peer, header = %proxy.header, "client certificate header from an untrusted address ignored");
        return None;
    }
    // One certificate in one header, nothing else: a proxy that appends to a header the client
    // sent would otherwise let the client's own value through.
    if values.next().is_some() {
        tracing::warn!(header = %proxy.header, "more than one client certificate header; none taken");
        return None;
    }
    let text = value.to_str().ok()?;
    let pem: String = form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let pem = pem.trim();
    let single = pem.starts_with("-----BEGIN CERTIFICATE-----")
        && pem.ends_with("-----END CERTIFICATE-----")
        && pem.matches("-----BEGIN").count() == 1;
    if !single {
        tracing::warn!(header = %proxy.header, "the client certificate header is not one PEM certificate; none taken");
        return None;
    }
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|c| c.as_ref().to_vec())
}

/// [`presented_certificate`] as an extractor.
pub struct ClientCertificate(pub Option<Vec<u8>>);

impl axum::extract::FromRequestParts<AppState> for ClientCertificate {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        s: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientCertificate(presented_certificate(
            &parts.headers,
            &parts.extensions,
            s,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn networks_contain_their_addresses() {
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("nonsense".parse::<Network>().is_err());
    }
}

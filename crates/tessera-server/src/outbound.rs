//! The server's `Outbound`: HTTP(S) requests to client key sets, trusted issuers' keys and the
//! token exchange policy webhook, with a timeout, a size limit, no redirects, and no loopback, private or link-local
//! destinations unless `outbound.allow_private_addresses` is set (SSRF: a client's `jwks_uri`
//! must not reach into the network Tessera runs in).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_core::outbound::{Outbound, OutboundError};

#[derive(Debug, Clone)]
pub struct HttpOutbound {
    pub timeout: Duration,
    pub max_bytes: usize,
    pub allow_private: bool,
}

/// Whether an address is globally routable: not loopback, private, link-local, shared (CGNAT),
/// benchmarking, reserved, multicast, documentation, or an IPv6 form that embeds such an IPv4
/// address (mapped, compatible, NAT64, 6to4).
fn is_public(ip: IpAddr) -> bool {
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
                std::net::Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)
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

impl HttpOutbound {
    /// Resolves the URL's host and pins the request to an address that passed the check, so DNS
    /// cannot answer differently between the check and the connection.
    async fn client_for(&self, url: &str) -> Result<reqwest::Client, OutboundError> {
        let refused = || OutboundError::Refused(url.to_owned());
        let parsed = url::Url::parse(url).map_err(|_| refused())?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(refused());
        }
        let host = parsed.host_str().ok_or_else(refused)?.to_owned();
        let port = parsed.port_or_known_default().ok_or_else(refused)?;
        let lookup = tokio::time::timeout(
            self.timeout,
            tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
        )
        .await
        .map_err(|_| OutboundError::Timeout(url.to_owned()))?
        .map_err(|e| OutboundError::Failed(url.to_owned(), e.to_string()))?;
        let addrs: Vec<SocketAddr> = lookup.collect();
        let addr = addrs
            .iter()
            .copied()
            .find(|a| self.allow_private || is_public(a.ip()))
            .ok_or_else(refused)?;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(self.timeout)
            // A proxy would resolve the host itself, around the check above.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .map_err(|e| OutboundError::Failed(url.to_owned(), e.to_string()))
    }

    async fn read(&self, url: &str, res: reqwest::Response) -> Result<Value, OutboundError> {
        let failed = |why: String| OutboundError::Failed(url.to_owned(), why);
        if !res.status().is_success() {
            return Err(failed(format!("answered {}", res.status())));
        }
        if res
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(failed(format!(
                "the answer is larger than {} bytes",
                self.max_bytes
            )));
        }
        let mut res = res;
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| self.classify(url, e))? {
            body.extend_from_slice(&chunk);
            if body.len() > self.max_bytes {
                return Err(failed(format!(
                    "the answer is larger than {} bytes",
                    self.max_bytes
                )));
            }
        }
        serde_json::from_slice(&body).map_err(|_| failed("the answer is not JSON".into()))
    }

    fn classify(&self, url: &str, e: reqwest::Error) -> OutboundError {
        if e.is_timeout() {
            OutboundError::Timeout(url.to_owned())
        } else {
            OutboundError::Failed(url.to_owned(), e.to_string())
        }
    }
}

impl HttpOutbound {
    /// Sends a GET (no body) or a POST of `body`, and reads the JSON answer within the timeout.
    async fn exchange(&self, url: &str, body: Option<&Value>) -> Result<Value, OutboundError> {
        let client = self.client_for(url).await?;
        let request = match body {
            None => client.get(url),
            Some(b) => client.post(url).json(b),
        };
        let res = request
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| self.classify(url, e))?;
        tokio::time::timeout(self.timeout, self.read(url, res))
            .await
            .map_err(|_| OutboundError::Timeout(url.to_owned()))?
    }
}

#[async_trait]
impl Outbound for HttpOutbound {
    async fn get_json(&self, url: &str) -> Result<Value, OutboundError> {
        self.exchange(url, None).await
    }

    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, OutboundError> {
        self.exchange(url, Some(body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

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
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "2001:4860:4860::8888"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }
}

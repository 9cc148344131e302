//! The server's `Outbound`, the one HTTP client for every request Tessera makes (client key sets,
//! trusted issuers' keys, the token exchange policy webhook, back-channel logout deliveries): a
//! timeout, a size limit, no redirects, no proxy, and no loopback, private or link-local
//! destinations unless `outbound.allow_private_addresses` is set (SSRF: a registered URI must not
//! reach into the network Tessera runs in).

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_core::outbound::{is_public, Outbound, OutboundError, Request, Response};

#[derive(Debug, Clone)]
pub struct HttpOutbound {
    pub timeout: Duration,
    pub max_bytes: usize,
    pub allow_private: bool,
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
            .map_err(|e| OutboundError::Failed(url.to_owned(), e.without_url().to_string()))
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

    /// The error, its text without the URL (which may carry credentials; the error's own
    /// display shows it redacted).
    fn classify(&self, url: &str, e: reqwest::Error) -> OutboundError {
        if e.is_timeout() {
            OutboundError::Timeout(url.to_owned())
        } else {
            OutboundError::Failed(url.to_owned(), e.without_url().to_string())
        }
    }
}

impl HttpOutbound {
    /// Sends the request `build` makes with the guarded client, and reads the answer with
    /// `read` within the timeout.
    async fn exchange<T, F>(
        &self,
        url: &str,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
        read: impl FnOnce(reqwest::Response) -> F,
    ) -> Result<T, OutboundError>
    where
        F: std::future::Future<Output = Result<T, OutboundError>>,
    {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let span = tracing::trace_span!(target: crate::otel::TARGET, "outbound", otel.name = %format_args!("outbound {host}"), otel.kind = "client", server.address = %host);
        let exchange = async {
            let client = self.client_for(url).await?;
            // W3C Trace Context: the callee continues this trace (when traces are exported).
            let mut trace = http::HeaderMap::new();
            crate::otel::inject_current(&mut trace);
            let res = build(&client)
                .headers(trace)
                .send()
                .await
                .map_err(|e| self.classify(url, e))?;
            tokio::time::timeout(self.timeout, read(res))
                .await
                .map_err(|_| OutboundError::Timeout(url.to_owned()))?
        };
        tracing::Instrument::instrument(exchange, span).await
    }

    /// A 2xx answer, its body read up to the size limit and dropped.
    async fn accepted(&self, url: &str, mut res: reqwest::Response) -> Result<(), OutboundError> {
        if !res.status().is_success() {
            return Err(OutboundError::Failed(
                url.to_owned(),
                format!("answered {}", res.status()),
            ));
        }
        let mut read = 0;
        while let Some(chunk) = res.chunk().await.map_err(|e| self.classify(url, e))? {
            read += chunk.len();
            if read > self.max_bytes {
                break;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Outbound for HttpOutbound {
    async fn get_json(&self, url: &str) -> Result<Value, OutboundError> {
        self.exchange(
            url,
            |c| c.get(url).header("accept", "application/json"),
            |res| self.read(url, res),
        )
        .await
    }

    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, OutboundError> {
        self.exchange(
            url,
            |c| c.post(url).json(body).header("accept", "application/json"),
            |res| self.read(url, res),
        )
        .await
    }

    async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<(), OutboundError> {
        self.exchange(
            url,
            |c| c.post(url).form(fields),
            |res| self.accepted(url, res),
        )
        .await
    }

    async fn send(&self, req: &Request) -> Result<Response, OutboundError> {
        let url = req.url.as_str();
        self.exchange(
            url,
            |c| {
                let mut b = match (&req.form, &req.json) {
                    (Some(fields), _) => c.post(url).form(fields),
                    (None, Some(body)) => c.post(url).json(body),
                    (None, None) => c.get(url),
                };
                b = b
                    .header("accept", req.accept)
                    .header("user-agent", "Tessera");
                if let Some(a) = &req.authorization {
                    b = b.header("authorization", a);
                }
                b
            },
            |res| self.answer(url, res, req.max_bytes),
        )
        .await
    }
}

impl HttpOutbound {
    /// The status and the body up to the size limit, whatever the status.
    async fn answer(
        &self,
        url: &str,
        mut res: reqwest::Response,
        limit: Option<usize>,
    ) -> Result<Response, OutboundError> {
        let status = res.status().as_u16();
        let max = limit.map_or(self.max_bytes, |l| l.min(self.max_bytes));
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| self.classify(url, e))? {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                return Err(OutboundError::Failed(
                    url.to_owned(),
                    format!("the answer is larger than {max} bytes"),
                ));
            }
        }
        Ok(Response { status, body })
    }
}

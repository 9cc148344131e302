//! Requests Tessera makes to other servers (client `jwks_uri`s, trusted issuers' keys, the token
//! exchange policy webhook) go through this trait, so the protocol never sees HTTP. The server implements it with timeouts,
//! size limits and a refusal of private addresses.

use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0} is not allowed (loopback, private or link-local address, or not http(s))")]
    Refused(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("{0}: {1}")]
    Failed(String, String),
}

#[async_trait]
pub trait Outbound: Send + Sync + 'static {
    /// GETs a JSON document.
    async fn get_json(&self, url: &str) -> Result<Value, OutboundError>;
    /// POSTs a JSON document and reads the JSON answer.
    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, OutboundError>;
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
}

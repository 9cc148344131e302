//! Tessera's own protected resources (the userinfo endpoint, the admin API): an access token is
//! taken only as its binding asks: a bearer token as `Bearer` (RFC 6750 §2), a DPoP-bound one
//! with the `DPoP` scheme and a proof of its key (RFC 9449 §7), a certificate-bound one over a
//! connection with its certificate (RFC 8705 §3).

use crate::clock::Timestamp;
use crate::dpop::{invalid_proof, ProofContext};
use crate::error::{Error, ErrorCode, Result};
use crate::provider::Provider;
use crate::token::AccessClaims;
use crate::user_grant::ActiveGrant;

/// How an access token reached the resource.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    /// With the `DPoP` scheme (RFC 9449 §7.1): the request's proof, method and URL.
    pub dpop: Option<DpopRequest<'a>>,
    /// RFC 8705 §3: the TLS client certificate (DER) of the connection, or of a trusted proxy's.
    pub certificate: Option<&'a [u8]>,
}

/// The request a DPoP-scheme presentation came with.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The `DPoP` header.
    pub proof: Option<&'a str>,
    pub method: &'a str,
    /// The resource's URL as Tessera publishes it.
    pub url: &'a str,
    /// Its mutual-TLS alias (RFC 8705 §5), if any.
    pub alias: Option<&'a str>,
}

impl<'a> Presented<'a> {
    /// A bearer token, with no certificate (the Admin Portal's own session token).
    pub fn bearer(token: &'a str) -> Presented<'a> {
        Presented {
            token,
            dpop: None,
            certificate: None,
        }
    }
}

fn refused(description: &'static str) -> Error {
    Error::new(ErrorCode::InvalidToken, description)
}

impl Provider {
    /// An access token in force, presented as its binding asks: a certificate-bound token only
    /// with its certificate; a DPoP-bound token only with the DPoP scheme and a proof made with
    /// its key (a Bearer presentation of it is refused, RFC 9449 §7.2); an unbound one only as
    /// Bearer. `None` when the token is not in force.
    pub async fn presented_access_token(
        &self,
        presented: Presented<'_>,
        now: Timestamp,
    ) -> Result<Option<(AccessClaims, Option<ActiveGrant>)>> {
        let Some(found) = self.active_access_token(presented.token, None, now).await? else {
            return Ok(None);
        };
        if let Some(x5t) = found.0.certificate_x5t() {
            let shown = presented.certificate.map(crate::mtls::thumbprint);
            if shown.as_deref() != Some(x5t) {
                return Err(refused(
                    "the access token is bound to a client certificate: present it over mutual TLS",
                ));
            }
        }
        match (presented.dpop, found.0.dpop_jkt()) {
            (None, None) => Ok(Some(found)),
            (None, Some(_)) => Err(refused(
                "the access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof",
            )),
            (Some(_), None) => Err(refused(
                "the access token is not DPoP-bound: present it with the Bearer scheme",
            )),
            (Some(d), Some(jkt)) => {
                let proof = d.proof.ok_or_else(|| {
                    invalid_proof("the DPoP scheme needs a DPoP proof in the DPoP header")
                })?;
                let ctx = ProofContext {
                    method: d.method,
                    url: d.url,
                    alias: d.alias,
                    access_token: Some(presented.token),
                };
                if self.verify_dpop(proof, ctx, now).await? != jkt {
                    return Err(invalid_proof(
                        "the DPoP proof is not made with the key the access token is bound to",
                    ));
                }
                Ok(Some(found))
            }
        }
    }
}

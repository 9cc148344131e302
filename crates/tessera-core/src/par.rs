//! Pushed authorization requests (RFC 9126): a client posts its authorization request to `/par`,
//! authenticated as at the token endpoint, and receives a single-use `request_uri` for the
//! browser's trip to `/authorize`, which then reads only what was pushed.

use serde::Serialize;

use crate::authorize::Rejection;
use crate::client_auth::{Answered, ClientRequest};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Artifact, ArtifactKind};
use crate::params::Params;
use crate::provider::Provider;
use crate::secret::{handle_key, new_handle};
use crate::store::{Consume, Consumed};

/// RFC 9126 §2.2: what every `request_uri` Tessera hands out starts with.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Parameters that authenticate the push (RFC 6749 §2.3.1, RFC 7523 §2.2); not part of the
/// authorization request.
const AUTHENTICATION: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// RFC 9126 §2.2: the answer to a push.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

impl Provider {
    /// `POST /par` (RFC 9126 §2.1): the client authenticates as at the token endpoint; the request
    /// is checked as the authorization endpoint checks it, its errors answered here (§2.3).
    pub async fn push_authorization_request(&self, req: &ClientRequest) -> Answered<Pushed> {
        match self.authenticate_client(req).await {
            Ok(caller) => {
                let me = caller.client.client_id.clone();
                Answered::for_client(&me, self.push_for(&me, req).await)
            }
            Err(e) => Answered::anonymous(e),
        }
    }

    async fn push_for(&self, me: &str, req: &ClientRequest) -> Result<Pushed> {
        let now = self.now();
        let p = &req.params;
        let proven = self.request_binding(req, "/par", now).await?;
        if p.get("client_id")?.is_some_and(|id| id != me) {
            return Err(Error::invalid_request(
                "client_id is not the client that authenticated",
            ));
        }
        if p.contains("request_uri") {
            return Err(Error::invalid_request(
                "request_uri cannot be pushed (RFC 9126 §2.1)",
            ));
        }
        let mut pairs: Vec<(String, String)> = p
            .pairs()
            .iter()
            .filter(|(k, _)| k != "client_id" && !AUTHENTICATION.contains(&k.as_str()))
            .cloned()
            .collect();
        pairs.push(("client_id".into(), me.into()));
        let mut params = Params::from_pairs(pairs).into_pushed();
        // RFC 9126 §3: a request object is verified when it is pushed; its parameters are kept.
        if let Some(expanded) = self.request_object(&params, now).await? {
            params = expanded;
        }
        // RFC 9449 §10.1: a proof at the push binds the code to its key, as dpop_jkt does;
        // given both, they must agree.
        if let Some(jkt) = proven {
            match params.get("dpop_jkt")? {
                Some(j) if j != jkt => {
                    return Err(crate::dpop::invalid_proof(
                        "dpop_jkt is not the thumbprint of the DPoP proof's key",
                    ))
                }
                Some(_) => {}
                None => {
                    let signed = params.is_signed();
                    let mut pairs = params.pairs().to_vec();
                    // An empty dpop_jkt counts as omitted (RFC 6749 §3.1).
                    pairs.retain(|(k, _)| k != "dpop_jkt");
                    pairs.push(("dpop_jkt".into(), jkt));
                    params = Params::from_pairs(pairs).into_pushed();
                    if signed {
                        params = params.into_signed();
                    }
                }
            }
        }
        match self.authorize_request(&params).await {
            Ok(_) => {}
            Err(Rejection::Page(e) | Rejection::Redirect(_, e)) => return Err(e),
        }
        let (handle, key) = new_handle();
        let lifetime = self.settings.pushed_request_lifetime;
        self.store
            .insert_artifact(&Artifact {
                key,
                kind: ArtifactKind::PushedRequest,
                client_id: me.to_owned(),
                grant_id: None,
                user_id: None,
                expires_at: now.plus(lifetime),
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::json!({
                    "params": params.pairs(),
                    "signed": params.is_signed(),
                }),
            })
            .await?;
        Ok(Pushed {
            request_uri: format!("{REQUEST_URI_PREFIX}{handle}"),
            expires_in: lifetime,
        })
    }

    /// RFC 9126 §4: the pushed request a `request_uri` stands for, once, and only for the client
    /// that pushed it (its `client_id` is required beside it); the other parameters of the
    /// request are not read. `None` when the request names no pushed `request_uri`.
    pub(crate) async fn pushed_request(
        &self,
        p: &Params,
        now: Timestamp,
    ) -> std::result::Result<Option<Params>, Rejection> {
        let Some(handle) = p
            .get("request_uri")?
            .and_then(|u| u.strip_prefix(REQUEST_URI_PREFIX))
        else {
            return Ok(None);
        };
        let client_id = p.require("client_id")?;
        let gone = || {
            Rejection::Page(Error::new(
                ErrorCode::InvalidRequestUri,
                "the request_uri is unknown, expired, another client's or used already; the application pushes its request again",
            ))
        };
        let key = handle_key(handle).ok_or_else(gone)?;
        let consumed = self
            .store
            .consume_artifact(
                Consume {
                    key: &key,
                    kind: ArtifactKind::PushedRequest,
                    client_id,
                },
                now,
                None,
            )
            .await
            .map_err(Error::from)?;
        let Consumed::First(a) = consumed else {
            return Err(gone());
        };
        if a.expires_at <= now || a.revoked_at.is_some() {
            return Err(gone());
        }
        let pairs: Vec<(String, String)> =
            serde_json::from_value(a.payload["params"].clone()).map_err(Error::server)?;
        let pushed = Params::from_pairs(pairs).into_pushed();
        Ok(Some(if a.payload["signed"] == true {
            pushed.into_signed()
        } else {
            pushed
        }))
    }
}

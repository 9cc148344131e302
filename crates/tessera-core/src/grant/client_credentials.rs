//! The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707).

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::Caller;
use crate::grant::TokenResponse;
use crate::model::Client;
use crate::provider::Provider;
use crate::token::{Binding, TokenContent};

impl Provider {
    /// RFC 6749 §4.4.3: the access token is issued to the client itself (`sub` = client_id).
    pub(crate) async fn client_credentials(
        &self,
        caller: &Caller<'_>,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        self.client_token(&caller.client, scope, resources, caller.binding, now)
            .await
    }

    /// A token whose subject is the client itself (client credentials, or a JWT bearer
    /// assertion about the client).
    pub(crate) async fn client_token(
        &self,
        client: &Client,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
        binding: Binding<'_>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let aud = self.audience(client, resources)?;
        let scope = self.granted_scope(client, scope, &aud)?;
        let (access_token, expires_in) = self
            .issue_access_token(
                client,
                TokenContent {
                    sub: &client.client_id,
                    aud,
                    scope: scope.clone(),
                    grant_id: None,
                    not_after: None,
                    extra: serde_json::Map::new(),
                    binding,
                },
                now,
            )
            .await?;
        Ok(TokenResponse::issued(
            access_token,
            expires_in,
            &scope,
            binding,
        ))
    }

    /// RFC 6749 §3.3: requested scopes must all be allowed, and a scope an API defines only for the
    /// audience's APIs; with none requested, the client's scopes marked default (or all of them when
    /// none is marked) that fit the audience.
    pub(crate) fn granted_scope(
        &self,
        client: &Client,
        requested: Option<Vec<String>>,
        aud: &[String],
    ) -> Result<Vec<String>> {
        match requested {
            Some(req) => {
                if let Some(bad) = req.iter().find(|s| !client.scopes.contains(s)) {
                    return Err(Error::invalid_scope(format!(
                        "scope {bad} is not allowed for this client"
                    )));
                }
                if let Some(bad) = req.iter().find(|s| !self.scope_fits(s, aud)) {
                    return Err(Error::invalid_scope(format!(
                        "scope {bad} belongs to another API than the requested resource"
                    )));
                }
                Ok(req)
            }
            None => {
                let fitting: Vec<&String> = client
                    .scopes
                    .iter()
                    .filter(|s| self.scope_fits(s, aud))
                    .collect();
                let defaults: Vec<String> = fitting
                    .iter()
                    .filter(|s| self.scope(s).is_some_and(|sc| sc.default))
                    .map(|s| (*s).clone())
                    .collect();
                Ok(if defaults.is_empty() {
                    fitting.into_iter().cloned().collect()
                } else {
                    defaults
                })
            }
        }
    }

    /// The audience of a token for an identity the client asserted or exchanged (the JWT bearer
    /// grant with a user subject, token exchange): as [`Provider::audience`], but never the admin
    /// API, whose callers must have signed in themselves; when nothing else is left, the client.
    pub(crate) fn asserted_audience(
        &self,
        client: &Client,
        resources: Vec<String>,
    ) -> Result<Vec<String>> {
        if resources.iter().any(|r| self.is_admin_api(r)) {
            return Err(Error::invalid_target(
                "tokens for an asserted or exchanged identity are never issued for the admin API",
            ));
        }
        let mut aud = self.audience(client, resources)?;
        aud.retain(|a| !self.is_admin_api(a));
        if aud.is_empty() {
            // Not even for an application registered with the admin API's identifier as its
            // client_id.
            if self.is_admin_api(&client.client_id) {
                return Err(Error::invalid_target(
                    "tokens for an asserted or exchanged identity are never issued for the admin API",
                ));
            }
            aud.push(client.client_id.clone());
        }
        Ok(aud)
    }

    /// RFC 8707 §2, RFC 9068 §3: `aud` is the requested resources, each an API the client may use;
    /// without `resource`, the client's APIs (or its own id when it has none).
    pub(crate) fn audience(&self, client: &Client, resources: Vec<String>) -> Result<Vec<String>> {
        if resources.is_empty() {
            return Ok(if client.apis.is_empty() {
                vec![client.client_id.clone()]
            } else {
                client.apis.clone()
            });
        }
        for r in &resources {
            if self.api(r).is_none() {
                return Err(Error::invalid_target(format!(
                    "resource {r} is not a registered API"
                )));
            }
            if !client.apis.contains(r) {
                return Err(Error::invalid_target(format!(
                    "the client may not obtain tokens for resource {r}"
                )));
            }
        }
        Ok(resources)
    }
}

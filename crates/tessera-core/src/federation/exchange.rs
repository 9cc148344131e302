//! Token exchange of an upstream identity provider's ID token (RFC 8693 §2.1 with
//! `subject_token_type` `id_token` or `jwt`; seed 002 "Allowed IDPs"): an application allowed
//! the provider presents an ID token it holds from there (issued to Tessera's client, or to one
//! of the provider's `exchange_audiences`), verified as at a sign-in; the user it names here is
//! found, linked or made by the same rules as a sign-in there, and the exchanged token is that
//! user's, in a grant of their own (revoked with the user's other grants, and by blocking them).

use serde_json::Value;

use super::mapping::profile;
use super::IdentityProvider;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::model::User;
use crate::provider::{LoadedClient, Provider};
use crate::secret::{b64url, sha256};
use crate::user_grant::GrantRecord;

/// How far ahead an exchanged upstream ID token may expire.
const MAX_LIFETIME: i64 = 86_400;

/// The user an exchanged upstream ID token speaks for, in a grant made for the exchange.
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub user: User,
    pub grant_id: String,
    pub scope: Vec<String>,
    pub exp: Timestamp,
}

impl Provider {
    /// The identity provider of issuer `iss` the application may exchange ID tokens of.
    pub(crate) fn exchange_idp(
        &self,
        caller: &LoadedClient,
        iss: &str,
    ) -> Option<IdentityProvider> {
        caller
            .client
            .federation
            .exchange_identity_providers
            .iter()
            .filter_map(|n| self.idp(n))
            .find(|i| i.enabled && i.issuer.as_deref() == Some(iss))
    }

    /// Verifies the upstream ID token `token` of `idp` for an exchange by `caller` and finds its
    /// user here; the error (for the `subject_token` refusal) otherwise.
    pub(crate) async fn exchange_upstream_id_token(
        &self,
        caller: &LoadedClient,
        idp: &IdentityProvider,
        token: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Exchanged, String>> {
        let ep = match self.endpoints(idp, now).await {
            Ok(ep) => ep,
            Err(why) => {
                tracing::warn!(idp = %idp.name, error = ?why, "token exchange: the provider cannot be reached");
                return Ok(Err("the identity provider cannot be reached".into()));
            }
        };
        let mut audiences = vec![idp.client_id.clone()];
        audiences.extend(idp.exchange_audiences.iter().cloned());
        let claims = match self
            .verify_upstream_id_token(&ep, token, None, &audiences, now)
            .await
        {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let exp = Timestamp(claims.get("exp").and_then(Value::as_i64).unwrap_or(now.0));
        if exp.0 > now.0.saturating_add(MAX_LIFETIME) {
            return Ok(Err("the ID token expires too far in the future".into()));
        }
        // Used once: by its jti, or (ID tokens often have none) by the token itself.
        let once = match claims.get("jti").and_then(Value::as_str) {
            Some(j) if !j.is_empty() && j.len() <= 256 => j.to_owned(),
            _ => b64url(&sha256(token.as_bytes())),
        };
        let issuer = ep.issuer.clone().unwrap_or_default();
        if !self
            .first_use_of_jti("upstream-exchange", &issuer, &once, exp)
            .await?
        {
            return Ok(Err("this ID token was already exchanged".into()));
        }
        let p = match profile(idp, &claims) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let (user, _) = match self.upstream_user(idp, &p, now).await? {
            Ok(x) => x,
            Err(refusal) => {
                tracing::info!(idp = %idp.name, ?refusal, "token exchange: upstream identity refused");
                return Ok(Err(format!(
                    "the identity names no user here who may use it ({refusal:?})"
                )));
            }
        };
        if self.user_may_use(caller, &user).is_err() {
            return Ok(Err("the user is not allowed to use this application".into()));
        }
        let client = &caller.client;
        // The APIs' scopes the application may ask for; the exchange narrows them.
        let scope: Vec<String> = client
            .scopes
            .iter()
            .filter(|s| !crate::model::OPENID_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect();
        let record = GrantRecord {
            user_id: user.id.clone(),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            resources: Vec::new(),
            sid: String::new(),
            auth_time: now,
            amr: p.amr.clone(),
            acr: crate::scheme::ACR_PASSWORD.to_owned(),
            offline: false,
            claims_request: None,
            epoch: user.sign_out_epoch,
        };
        let (grant_id, _) = self.create_grant(client, &record, now).await?;
        Ok(Ok(Exchanged {
            user,
            grant_id,
            scope,
            exp,
        }))
    }
}

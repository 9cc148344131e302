//! The tokens a user's grant yields at the token endpoint: an access token, a refresh token when
//! the client may refresh, and an ID token for OpenID requests (OIDC Core §3.1.3.3, §12.2).

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::Caller;
use crate::grant::TokenResponse;
use crate::id_token::IdTokenParts;
use crate::model::{Artifact, ArtifactKind, GrantType};
use crate::provider::Provider;
use crate::secret::new_handle;
use crate::store::{Consume, Consumed};
use crate::token::TokenContent;
use crate::user_grant::ActiveGrant;

/// What a refresh token remembers: the grant's scope (RFC 6749 §6: a new refresh token keeps it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RefreshRecord {
    pub scope: Vec<String>,
    /// RFC 9449 §5: a public client's refresh token is bound to the DPoP key it was issued
    /// under (its thumbprint); each refresh must prove that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// RFC 8705 §4: a public client's refresh token is bound to its certificate (`x5t#S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
    /// Set when the token was rotated: the response it was answered with, encrypted, for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
}

impl Provider {
    /// Issues the tokens for `scope` (the grant's, or narrower) and `resources` (the grant's
    /// when empty, or narrower) from a grant in force, and stores the refresh token. A grant
    /// whose user was asserted (the JWT bearer grant) never yields a token for the admin API.
    pub(crate) async fn tokens_for_grant(
        &self,
        loaded: &Caller<'_>,
        grant: &ActiveGrant,
        scope: &[String],
        resources: &[String],
        nonce: Option<&str>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let minted = self
            .mint_for_grant(loaded, grant, scope, resources, nonce, now)
            .await?;
        if let Some(refresh) = &minted.refresh {
            self.store.insert_artifact(refresh).await?;
        }
        Ok(minted.response)
    }

    /// The tokens of a grant redeemed with a single-use artifact (an authorization code, a
    /// device code, a back-channel request), with the grant's scope: made first, then `spent`
    /// is consumed in the write that stores the refresh token (alone when there is none). A
    /// request that fails before that write (the store unavailable, 503) leaves the artifact
    /// unspent for the retry. The tokens are the caller's only when it spent the artifact
    /// ([`Consumed::First`]).
    pub(crate) async fn redeem_for_grant(
        &self,
        loaded: &Caller<'_>,
        grant: &ActiveGrant,
        nonce: Option<&str>,
        spent: Consume<'_>,
        now: Timestamp,
    ) -> Result<(Consumed, TokenResponse)> {
        let scope = grant.record.scope.clone();
        let minted = self
            .mint_for_grant(loaded, grant, &scope, &[], nonce, now)
            .await?;
        let consumed = match &minted.refresh {
            Some(refresh) => {
                self.store
                    .rotate_artifact(spent, now, None, refresh)
                    .await?
            }
            None => self.store.consume_artifact(spent, now, None).await?,
        };
        Ok((consumed, minted.response))
    }

    /// [`Provider::tokens_for_grant`] without storing the refresh token: the refresh grant
    /// stores it in the same write that consumes its predecessor.
    pub(crate) async fn mint_for_grant(
        &self,
        loaded: &Caller<'_>,
        grant: &ActiveGrant,
        scope: &[String],
        resources: &[String],
        nonce: Option<&str>,
        now: Timestamp,
    ) -> Result<Minted> {
        let client = &loaded.client;
        let sub = self.subject(client, &grant.user)?;
        let wanted = if resources.is_empty() {
            grant.record.resources.clone()
        } else {
            resources.to_vec()
        };
        let aud = if grant.record.asserted() {
            self.asserted_audience(client, wanted)?
        } else {
            self.audience(client, wanted)?
        };
        let (access_token, expires_in) = self
            .issue_access_token(
                client,
                TokenContent {
                    sub: &sub,
                    aud,
                    scope: scope.to_vec(),
                    grant_id: Some(&grant.id),
                    not_after: None,
                    extra: authentication_claims(&grant.record),
                    binding: loaded.binding,
                },
                now,
            )
            .await?;
        let public = !client.client_type.is_confidential();
        let (refresh_token, refresh) = if client.grant_types.contains(&GrantType::RefreshToken) {
            let (handle, key) = new_handle();
            let record = RefreshRecord {
                scope: grant.record.scope.clone(),
                // A confidential client's refresh tokens are bound to its authentication already.
                dpop_jkt: public
                    .then_some(loaded.binding.jkt)
                    .flatten()
                    .map(str::to_owned),
                x5t: public
                    .then_some(loaded.binding.x5t)
                    .flatten()
                    .map(str::to_owned),
                successor: None,
            };
            let artifact = Artifact {
                key,
                kind: ArtifactKind::RefreshToken,
                client_id: client.client_id.clone(),
                grant_id: Some(grant.id.clone()),
                user_id: None,
                // Refresh tokens live as long as the grant: rotation does not extend it.
                expires_at: grant.expires_at,
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::to_value(&record).map_err(Error::server)?,
            };
            (Some(handle), Some(artifact))
        } else {
            (None, None)
        };
        let id_token = if scope.iter().any(|s| s == "openid") {
            Some(
                self.issue_id_token(
                    IdTokenParts {
                        client,
                        client_secret: loaded.secret.as_deref(),
                        sub: &sub,
                        grant: &grant.record,
                        nonce,
                        access_token: Some(&access_token),
                        code: None,
                        user_claims: self.user_claims(
                            &grant.user,
                            &[],
                            &crate::claims::requested_claims(
                                grant.record.claims_request.as_ref(),
                                "id_token",
                            ),
                            scope,
                        ),
                    },
                    now,
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Minted {
            response: TokenResponse {
                refresh_token,
                id_token,
                ..TokenResponse::issued(access_token, expires_in, scope, loaded.binding)
            },
            refresh,
        })
    }
}

/// The tokens of a grant, the refresh token not stored yet.
pub(crate) struct Minted {
    pub response: TokenResponse,
    /// The refresh token's artifact, when the client may refresh.
    pub refresh: Option<Artifact>,
}

/// RFC 9068 §2.2.1: how the user authenticated (`auth_time`, `acr`, `amr`), in tokens of a grant
/// the user signed in for; what a resource server reads, or introspects, to ask for step-up
/// (RFC 9470). Asserted grants carry none.
pub(crate) fn authentication_claims(
    r: &crate::user_grant::GrantRecord,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if !r.asserted() {
        m.insert("auth_time".into(), r.auth_time.0.into());
        m.insert("acr".into(), r.acr.clone().into());
        m.insert("amr".into(), r.amr.clone().into());
    }
    m
}

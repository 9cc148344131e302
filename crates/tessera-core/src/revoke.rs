//! `POST /revoke` (RFC 7009): a client revokes its own tokens. An access token stops at once (a
//! revoked JWT's `jti` is remembered until its `exp`); a refresh token revokes its whole grant,
//! so the access tokens issued from it stop too (§2.1: "the authorization server ... SHOULD also
//! invalidate all access tokens based on the same authorization grant"). `token_type_hint` is
//! only a hint: both kinds are looked for.

use crate::client_auth::{Answered, ClientRequest};
use crate::error::{Error, Result};
use crate::model::{Artifact, ArtifactKind};
use crate::provider::Provider;
use crate::secret::handle_key;
use crate::store::StoreError;
use crate::token::{revoked_jti_key, FoundToken};

impl Provider {
    /// RFC 7009 §2.1-2.2: unknown or invalid tokens answer 200 as if revoked.
    pub async fn revoke(&self, req: &ClientRequest) -> Answered<()> {
        match self.authenticate_client(req).await {
            Ok(caller) => {
                let me = &caller.client.client_id;
                Answered::for_client(me, self.revoke_for(me, req).await)
            }
            Err(e) => Answered::anonymous(e),
        }
    }

    async fn revoke_for(&self, me: &str, req: &ClientRequest) -> Result<()> {
        let now = self.now();
        // RFC 9449: revoking needs no proof (it only takes power away), but one that is sent
        // must hold.
        self.request_binding(req, "/revoke", now).await?;
        let token = req.params.require("token")?;
        req.params.get("token_type_hint")?;
        if let Some(found) = self.find_access_token(token).await? {
            return self.revoke_access_token(me, &found).await;
        }
        // RFC 7009 §2.1: implementations MUST support the revocation of refresh tokens.
        let Some(key) = handle_key(token) else {
            return Ok(());
        };
        let Some(a) = self
            .store
            .get_artifact(&key)
            .await?
            .filter(|a| a.kind == ArtifactKind::RefreshToken)
        else {
            return Ok(());
        };
        // RFC 7009 §2.1: "verifies whether the token was issued to the client making the
        // revocation request".
        if a.client_id != me {
            return Err(Error::unauthorized_client(
                "the token was not issued to this client",
            ));
        }
        if a.revoked_at.is_some() || a.expires_at <= now {
            return Ok(());
        }
        match &a.grant_id {
            Some(g) => self.revoke_grant(g, now).await?,
            None => {
                self.store.revoke_artifact(&a.key, now).await?;
            }
        }
        tracing::info!(client_id = %me, "refresh token revoked with its grant");
        Ok(())
    }

    async fn revoke_access_token(&self, me: &str, found: &FoundToken) -> Result<()> {
        let now = self.now();
        let claims = found.claims();
        // RFC 7009 §2.1: "the authorization server first validates the client credentials ... and then
        // verifies whether the token was issued to the client making the revocation request".
        if claims.client_id != me {
            return Err(Error::unauthorized_client(
                "the token was not issued to this client",
            ));
        }
        if claims.exp <= now {
            return Ok(());
        }
        match found {
            FoundToken::Opaque { artifact, .. } => {
                self.store.revoke_artifact(&artifact.key, now).await?;
                // Cache the revoked state itself, so a read racing with this one cannot put back
                // an active copy.
                self.artifacts.put(std::sync::Arc::new(Artifact {
                    revoked_at: Some(now),
                    ..(**artifact).clone()
                }));
            }
            FoundToken::Jwt(c) => {
                let entry = Artifact {
                    key: revoked_jti_key(c),
                    kind: ArtifactKind::RevokedJti,
                    client_id: c.client_id.clone(),
                    grant_id: None,
                    user_id: None,
                    expires_at: c.exp,
                    revoked_at: Some(now),
                    consumed_at: None,
                    payload: serde_json::json!({ "jti": c.jti }),
                };
                match self.store.insert_artifact(&entry).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        tracing::info!(client_id = %me, jti = %claims.jti, "access token revoked");
        Ok(())
    }
}

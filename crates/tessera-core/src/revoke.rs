//! `POST /revoke` (RFC 7009): a client revokes its own access tokens; a revoked JWT's `jti` is
//! remembered until the token's `exp`.

use crate::client_auth::ClientRequest;
use crate::error::{Error, Result};
use crate::model::{Artifact, ArtifactKind};
use crate::provider::Provider;
use crate::store::StoreError;
use crate::token::{revoked_jti_key, FoundToken};

impl Provider {
    /// RFC 7009 §2.1-2.2: unknown or invalid tokens answer 200 as if revoked.
    pub async fn revoke(&self, req: &ClientRequest) -> Result<()> {
        let now = self.now();
        let caller = self.authenticate_client(req).await?;
        let token = req.params.require("token")?;
        req.params.get("token_type_hint")?;
        let Some(found) = self.find_access_token(token).await? else {
            return Ok(());
        };
        let claims = found.claims();
        // RFC 7009 §2.1: "the authorization server first validates the client credentials ... and then
        // verifies whether the token was issued to the client making the revocation request".
        if claims.client_id != caller.client.client_id {
            return Err(Error::unauthorized_client(
                "the token was not issued to this client",
            ));
        }
        if claims.exp <= now {
            return Ok(());
        }
        match &found {
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
        tracing::info!(client_id = %caller.client.client_id, jti = %claims.jti, "access token revoked");
        Ok(())
    }
}

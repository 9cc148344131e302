//! `POST /introspect` (RFC 7662): active tokens with their claims; everything else `{"active": false}`.

use serde_json::{json, Value};

use crate::client_auth::ClientRequest;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::token::{revoked_jti_key, FoundToken};

impl Provider {
    /// RFC 7662 §2.1-2.2.
    pub async fn introspect(&self, req: &ClientRequest) -> Result<Value> {
        let now = self.now();
        let caller = self.authenticate_client(req).await?;
        if !caller.client.introspection_allowed {
            return Err(Error::unauthorized_client(
                "the client is not allowed to introspect tokens",
            ));
        }
        let token = req.params.require("token")?;
        req.params.get("token_type_hint")?;
        let inactive = json!({ "active": false });
        let Some(found) = self.find_access_token(token).await? else {
            return Ok(inactive);
        };
        let claims = found.claims();
        if claims.exp <= now {
            return Ok(inactive);
        }
        let revoked = match &found {
            FoundToken::Opaque { artifact, .. } => artifact.revoked_at.is_some(),
            FoundToken::Jwt(c) => self
                .store
                .get_artifact(&revoked_jti_key(c))
                .await?
                .is_some(),
        };
        if revoked {
            return Ok(inactive);
        }
        // A user's token lives only while its grant does and the user is not blocked.
        if let Some(g) = claims.grant_id() {
            if self.active_grant(g, now).await?.is_none() {
                return Ok(inactive);
            }
        }
        // A token outlives neither its client nor the client's enabled state.
        if !self
            .client(&claims.client_id)
            .await?
            .is_some_and(|c| c.client.enabled)
        {
            return Ok(inactive);
        }
        let mut body = claims.to_json(&self.settings.issuer);
        body["active"] = json!(true);
        body["token_type"] = json!("Bearer");
        Ok(body)
    }
}

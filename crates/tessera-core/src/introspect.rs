//! `POST /introspect` (RFC 7662): active tokens with their claims; everything else `{"active": false}`.

use serde_json::{json, Value};

use crate::client_auth::ClientRequest;
use crate::error::{Error, Result};
use crate::provider::Provider;

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
        let Some((claims, _)) = self
            .active_access_token(token, Some(&caller.client.client_id), now)
            .await?
        else {
            return Ok(json!({ "active": false }));
        };
        let mut body = claims.to_json(&self.settings.issuer);
        body["active"] = json!(true);
        body["token_type"] = json!("Bearer");
        Ok(body)
    }
}

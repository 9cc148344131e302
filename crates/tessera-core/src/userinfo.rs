//! The UserInfo endpoint (OIDC Core §5.3): the claims of the user an access token was issued for,
//! by its scopes (§5.4), custom claim mappings and the `claims` request parameter (§5.5).

use serde_json::{json, Map, Value};

use crate::claims::requested_claims;
use crate::error::{Error, ErrorCode, Result};
use crate::provider::Provider;
use crate::token::{revoked_jti_key, FoundToken};

fn invalid_token() -> Error {
    Error::new(
        ErrorCode::InvalidToken,
        "the access token is invalid, expired or revoked",
    )
}

impl Provider {
    /// OIDC Core §5.3.1: `token` is the bearer access token (RFC 6750 §2.1 or §2.2).
    pub async fn userinfo(&self, token: &str) -> Result<Value> {
        let now = self.now();
        let found = self
            .find_access_token(token)
            .await?
            .ok_or_else(invalid_token)?;
        let claims = found.claims();
        if claims.exp <= now {
            return Err(invalid_token());
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
            return Err(invalid_token());
        }
        let grant_id = claims.grant_id().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidToken,
                "the access token was not issued for a user",
            )
        })?;
        if !self
            .client(&claims.client_id)
            .await?
            .is_some_and(|c| c.client.enabled)
        {
            return Err(invalid_token());
        }
        let grant = self
            .active_grant(grant_id, now)
            .await?
            .ok_or_else(invalid_token)?;
        if !claims.scope.iter().any(|s| s == "openid") {
            return Err(Error::new(
                ErrorCode::InsufficientScope,
                "the access token lacks the openid scope",
            ));
        }
        let extra = requested_claims(grant.record.claims_request.as_ref(), "userinfo");
        let mut body: Map<String, Value> =
            self.user_claims(&grant.user, &claims.scope, &extra, &claims.scope);
        body.insert("sub".into(), json!(claims.sub));
        Ok(Value::Object(body))
    }
}

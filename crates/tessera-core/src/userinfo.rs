//! The UserInfo endpoint (OIDC Core §5.3): the claims of the user an access token was issued for,
//! by its scopes (§5.4), custom claim mappings and the `claims` request parameter (§5.5).

use serde_json::{json, Map, Value};

use crate::claims::requested_claims;
use crate::client_auth::Answered;
use crate::error::{Error, ErrorCode, Result};
use crate::provider::Provider;
use crate::token::AccessClaims;
use crate::user_grant::ActiveGrant;

fn invalid_token() -> Error {
    Error::new(
        ErrorCode::InvalidToken,
        "the access token is invalid, expired or revoked",
    )
}

impl Provider {
    /// OIDC Core §5.3.1: `token` is the bearer access token (RFC 6750 §2.1 or §2.2). The answer
    /// is for the client the token was issued to, when it is valid.
    pub async fn userinfo(&self, token: &str) -> Answered<Value> {
        let found = match self.active_access_token(token, None, self.now()).await {
            Ok(Some(found)) => found,
            Ok(None) => return Answered::anonymous(invalid_token()),
            Err(e) => return Answered::anonymous(e),
        };
        let client_id = found.0.client_id.clone();
        Answered::for_client(&client_id, self.claims_of(found))
    }

    fn claims_of(&self, (claims, grant): (AccessClaims, Option<ActiveGrant>)) -> Result<Value> {
        let grant = grant.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidToken,
                "the access token was not issued for a user",
            )
        })?;
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

//! The UserInfo endpoint (OIDC Core §5.3): the claims of the user an access token was issued for,
//! by its scopes (§5.4), custom claim mappings and the `claims` request parameter (§5.5).

use serde_json::{json, Map, Value};

use crate::claims::requested_claims;
use crate::client_auth::Answered;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::provider::Provider;
use crate::resource::Presented;
use crate::token::AccessClaims;
use crate::user_grant::ActiveGrant;

fn invalid_token() -> Error {
    Error::new(
        ErrorCode::InvalidToken,
        "the access token is invalid, expired or revoked",
    )
}

/// OIDC Core §5.3.2: the UserInfo response, as the application asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum UserInfo {
    /// `application/json`.
    Json(Value),
    /// `application/jwt`: signed, encrypted, or both (§5.3.2).
    Jwt(String),
}

impl Provider {
    /// OIDC Core §5.3.1: the access token as presented (RFC 6750 §2.1 or §2.2, or RFC 9449
    /// §7.1 with a DPoP proof). The answer is for the client the token was issued to, when it
    /// is valid.
    pub async fn userinfo(&self, presented: Presented<'_>) -> Answered<UserInfo> {
        let now = self.now();
        let found = match self.presented_access_token(presented, now).await {
            Ok(Some(found)) => found,
            Ok(None) => return Answered::anonymous(invalid_token()),
            Err(e) => return Answered::anonymous(e),
        };
        let client_id = found.0.client_id.clone();
        let answer = match self.claims_of(found) {
            Ok(claims) => self.protect_userinfo(&client_id, claims, now).await,
            Err(e) => Err(e),
        };
        Answered::for_client(&client_id, answer)
    }

    /// OIDC Core §5.3.2: signed with `userinfo_signed_response_alg` (with `iss` and `aud`),
    /// then encrypted with `userinfo_encrypted_response_alg`; JSON when neither is set.
    async fn protect_userinfo(
        &self,
        client_id: &str,
        mut claims: Value,
        now: Timestamp,
    ) -> Result<UserInfo> {
        let Some(loaded) = self.client(client_id).await? else {
            return Err(invalid_token());
        };
        let (client, secret) = (&loaded.client, loaded.secret.as_deref());
        let p = &client.protection;
        let signed = match p.userinfo_signed_response_alg {
            Some(alg) => {
                claims["iss"] = json!(self.settings.issuer);
                claims["aud"] = json!(client.client_id);
                claims["iat"] = json!(now.0);
                Some(self.sign_for((client, secret), alg, "JWT", &claims, now)?)
            }
            None => None,
        };
        Ok(match (signed, p.userinfo()) {
            (None, None) => UserInfo::Json(claims),
            (Some(jws), e) => UserInfo::Jwt(self.seal_jwt(client, jws, e, now).await?),
            (None, Some(e)) => UserInfo::Jwt(
                self.encrypt_for(client, e, claims.to_string().as_bytes(), None, now)
                    .await?,
            ),
        })
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

//! `POST /introspect` (RFC 7662): active tokens with their claims; everything else, and every
//! token the calling client may not introspect, `{"active": false}` (§2.2, §4: a client learns
//! nothing about tokens it has no business with).
//!
//! Which tokens a client may introspect (§2.1 leaves it to the server): access tokens issued to
//! it, and those addressed to it as a resource server (its client_id is the identifier of the API
//! it serves, so it is in the token's `aud`); every access token only with the explicit
//! `introspect_any_token`; refresh tokens only its own, whatever its permissions.
//!
//! RFC 9701: asked for `application/token-introspection+jwt`, the same answer comes as a JWT
//! Tessera signs for the calling client.

use serde_json::{json, Value};

use crate::client_auth::ClientRequest;
use crate::error::{Error, Result};
use crate::grant::RefreshToken;
use crate::model::{Alg, Client, JwsAlg};
use crate::provider::Provider;
use crate::token::AccessClaims;

fn inactive() -> Value {
    json!({ "active": false })
}

/// Whether `client` may learn about the access token `claims` describes.
fn may_introspect(client: &Client, claims: &AccessClaims) -> bool {
    client.introspect_any_token
        || claims.client_id == client.client_id
        || claims.aud.contains(&client.client_id)
}

impl Provider {
    /// RFC 7662 §2.1-2.2. `token_type_hint` is only a hint: access and refresh tokens are both
    /// looked for.
    pub async fn introspect(&self, req: &ClientRequest) -> Result<Value> {
        let caller = self.authenticate_client(req).await?;
        self.introspect_for(&caller.client, req).await
    }

    /// RFC 9701 §5: the answer as a JWT (`typ` `token-introspection+jwt`) with `iss`, `aud` (the
    /// calling client), `iat` and the answer in `token_introspection`, signed with the key of
    /// the client's own JWT algorithm (RS256 for an application whose tokens use HS256).
    pub async fn introspect_jwt(&self, req: &ClientRequest) -> Result<String> {
        let now = self.now();
        let caller = self.authenticate_client(req).await?;
        let client = &caller.client;
        // A signed answer is something its holder can show others: only for a client that
        // proved who it is, not one that named itself (auth method none).
        if client.auth_method == crate::model::AuthMethod::None {
            return Err(Error::unauthorized_client(
                "a signed introspection answer is only for a client that authenticates",
            ));
        }
        let answer = self.introspect_for(client, req).await?;
        let alg = match client.signing_alg {
            JwsAlg::Key(a) => a,
            JwsAlg::HS256 => Alg::RS256,
        };
        let key = self.signer_for(client, alg, now)?;
        let claims = json!({
            "iss": self.settings.issuer,
            "aud": client.client_id,
            "iat": now.0,
            "token_introspection": answer,
        });
        let jws = key
            .sign_jwt_typed("token-introspection+jwt", &claims)
            .map_err(Error::server)?;
        // RFC 9701 §5: signed, then encrypted when the application asked for that.
        self.seal_jwt(client, jws, client.protection.introspection(), now)
            .await
    }

    async fn introspect_for(&self, client: &Client, req: &ClientRequest) -> Result<Value> {
        let now = self.now();
        if !client.introspection_allowed {
            return Err(Error::unauthorized_client(
                "the client is not allowed to introspect tokens",
            ));
        }
        let token = req.params.require("token")?;
        req.params.get("token_type_hint")?;
        if let Some((claims, _)) = self
            .active_access_token(token, Some(&client.client_id), now)
            .await?
        {
            if !may_introspect(client, &claims) {
                return Ok(inactive());
            }
            let mut body = claims.to_json(&self.settings.issuer);
            body["active"] = json!(true);
            // RFC 9449 §6.2: a bound token's `cnf.jkt` is among its claims.
            body["token_type"] = json!(if claims.dpop_jkt().is_some() {
                "DPoP"
            } else {
                "Bearer"
            });
            return Ok(body);
        }
        match self.active_refresh_token(token, client, now).await? {
            Some(rt) => Ok(self.refresh_token_claims(&rt)),
            None => Ok(inactive()),
        }
    }

    /// RFC 7662 §2.2 members of a refresh token in force.
    fn refresh_token_claims(&self, rt: &RefreshToken) -> Value {
        let mut body = json!({
            "active": true,
            "token_type": "refresh_token",
            "iss": self.settings.issuer,
            "client_id": rt.client_id,
            "sub": rt.sub,
            "exp": rt.expires_at.0,
        });
        if !rt.scope.is_empty() {
            body["scope"] = json!(rt.scope.join(" "));
        }
        body
    }
}

//! JWT Secured Authorization Response Mode (JARM, OpenID FAPI JARM §2): the authorization
//! response's parameters, success or error, travel as one `response` JWT that Tessera signs for
//! the application (and encrypts to it when it asked for that), in the query, the fragment or a
//! form post.

use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::provider::Provider;

/// JARM §2.1: the response JWT's lifetime ("10 minutes is recommended").
const JARM_LIFETIME: i64 = 600;

impl Provider {
    /// JARM §2.1-2.3: `params` as the one parameter `response`, for the application `client_id`:
    /// `iss`, `aud`, `exp` and every response parameter as a claim; signed with its
    /// `authorization_signed_response_alg` (by default its ID token algorithm), then encrypted
    /// with its `authorization_encrypted_response_alg` when set.
    pub(crate) async fn jarm(
        &self,
        client_id: &str,
        params: Vec<(String, String)>,
        now: Timestamp,
    ) -> Result<Vec<(String, String)>> {
        let loaded = self
            .client(client_id)
            .await?
            .ok_or_else(|| Error::invalid_request("client_id is not a registered client"))?;
        let client = &loaded.client;
        let mut claims = Map::new();
        for (k, v) in params {
            // RFC 9207's iss parameter is the JWT's iss claim here.
            claims.insert(k, Value::String(v));
        }
        claims.insert("iss".into(), json!(self.settings.issuer));
        claims.insert("aud".into(), json!(client.client_id));
        claims.insert("exp".into(), json!(now.plus(JARM_LIFETIME).0));
        let p = &client.protection;
        let alg = p
            .authorization_signed_response_alg
            .unwrap_or(client.browser.id_token_alg);
        let jws = self.sign_for(
            (client, loaded.secret.as_deref()),
            alg,
            "JWT",
            &Value::Object(claims),
            now,
        )?;
        let jwt = self.seal_jwt(client, jws, p.authorization(), now).await?;
        Ok(vec![("response".to_owned(), jwt)])
    }
}

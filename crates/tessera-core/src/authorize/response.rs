//! The authorization response (RFC 6749 §4.1.2, §4.2.2; OIDC Core §3.3.2.5): a grant is recorded,
//! then the code, the access token and the ID token are made in that order (the ID token hashes
//! the other two), and the response carries `iss` (RFC 9207) in the client's response mode.

use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::{AuthorizeRequest, ResponseMode};
use crate::claims::requested_claims;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::id_token::IdTokenParts;
use crate::model::{Artifact, ArtifactKind, GrantType};
use crate::provider::Provider;
use crate::secret::new_handle;
use crate::session::{session_grant_link, Session, SessionGrant};
use crate::token::TokenContent;
use crate::user_grant::{new_grant, GrantRecord};

/// A response for the client's redirect URI.
#[derive(Clone, PartialEq)]
pub struct AuthResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

/// Parameter names only: the values are codes and tokens.
impl std::fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResponse")
            .field("redirect_uri", &self.redirect_uri)
            .field("mode", &self.mode)
            .field(
                "params",
                &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl AuthResponse {
    /// The redirect for query and fragment modes (form_post is rendered as a page instead).
    pub fn location(&self) -> String {
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter())
            .finish();
        match self.mode {
            ResponseMode::Fragment => format!("{}#{encoded}", self.redirect_uri),
            _ => {
                let sep = if self.redirect_uri.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!("{}{sep}{encoded}", self.redirect_uri)
            }
        }
    }

    /// The value of one parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What an authorization code remembers for the token request (RFC 6749 §4.1.3, RFC 7636 §4.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    pub redirect_uri: String,
    /// The authorization request named the redirect URI (so the token request must, too).
    pub redirect_uri_given: bool,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// RFC 9449 §10: the DPoP key (thumbprint) the code is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

impl Provider {
    /// Records the grant and makes what the response type asks for.
    pub(crate) async fn issue_authorization(
        &self,
        req: &AuthorizeRequest,
        session: &Session,
        offline_ok: bool,
        now: Timestamp,
    ) -> Result<AuthResponse> {
        let loaded = &req.client;
        let client = &loaded.client;
        let sub = self.subject(client, &session.user)?;
        let can_refresh = client.grant_types.contains(&GrantType::RefreshToken);
        // OIDC Core §11: offline_access is ignored for a client that cannot use refresh tokens,
        // and unless the user was asked for it in this request (or the client is first-party).
        let scope: Vec<String> = req
            .scope
            .iter()
            .filter(|s| (can_refresh && offline_ok) || s.as_str() != "offline_access")
            .cloned()
            .collect();
        let record = GrantRecord {
            user_id: session.user.id.clone(),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            resources: req.resources.clone(),
            // A device's sign-in is the device's: it does not end when the browser that
            // approved it signs out (nor does its ID token name that browser's session).
            sid: if req.target.device.is_some() {
                String::new()
            } else {
                session.record.sid.clone()
            },
            auth_time: session.record.auth_time,
            amr: session.record.amr.clone(),
            acr: session.record.acr.clone(),
            offline: scope.iter().any(|s| s == "offline_access"),
            claims_request: req.claims.clone(),
            epoch: session.record.epoch,
        };
        if let Some(d) = &req.target.device {
            let (grant_id, _) = self.create_grant(client, &record, now).await?;
            return self.device_approved(d, &grant_id, now).await;
        }
        // The grant, its link to the session and the code: one write.
        let (grant_id, grant) = new_grant(client, &record, now)?;
        let link = session_grant_link(
            &record.sid,
            &client.client_id,
            &SessionGrant {
                grant_id: grant_id.clone(),
                offline: record.offline,
            },
            grant.expires_at.max(session.expires_at),
        )?;
        let mut new = vec![grant, link];
        let mut params: Vec<(String, String)> = Vec::new();
        let mut code = None;
        if req.wants("code") {
            let (handle, key) = new_handle();
            let payload = CodeRecord {
                redirect_uri: req.target.redirect_uri.clone(),
                redirect_uri_given: req.redirect_uri_given,
                nonce: req.nonce.clone(),
                code_challenge: req.pkce.as_ref().map(|p| p.0.clone()),
                code_challenge_method: req.pkce.as_ref().map(|p| p.1.clone()),
                dpop_jkt: req.dpop_jkt.clone(),
            };
            new.push(Artifact {
                key,
                kind: ArtifactKind::AuthorizationCode,
                client_id: client.client_id.clone(),
                grant_id: Some(grant_id.clone()),
                user_id: None,
                expires_at: now.plus(client.browser.code_ttl),
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::to_value(&payload).map_err(Error::server)?,
            });
            params.push(("code".into(), handle.clone()));
            code = Some(handle);
        }
        self.store.insert_artifacts(&new).await?;
        self.remember_grant(new.swap_remove(0));
        let mut access_token = None;
        if req.wants("token") {
            let aud = self.audience(client, record.resources.clone())?;
            let (token, ttl) = self
                .issue_access_token(
                    client,
                    TokenContent {
                        sub: &sub,
                        aud,
                        scope: scope.clone(),
                        grant_id: Some(&grant_id),
                        not_after: None,
                        extra: crate::grant::authentication_claims(&record),
                        binding: Default::default(),
                    },
                    now,
                )
                .await?;
            params.push(("access_token".into(), token.clone()));
            params.push(("token_type".into(), "Bearer".into()));
            params.push(("expires_in".into(), ttl.to_string()));
            params.push(("scope".into(), scope.join(" ")));
            access_token = Some(token);
        }
        if req.wants("id_token") {
            // OIDC Core §5.4: when no access token is issued at all (response_type id_token), the
            // scopes' claims go in the ID token.
            let mut user_claims = if req.response_type == "id_token" {
                self.user_claims(&session.user, &scope, &[], &scope)
            } else {
                Map::new()
            };
            let extra = requested_claims(req.claims.as_ref(), "id_token");
            user_claims.extend(self.user_claims(&session.user, &[], &extra, &scope));
            let id_token = self
                .issue_id_token(
                    IdTokenParts {
                        client,
                        client_secret: loaded.secret.as_deref(),
                        sub: &sub,
                        grant: &record,
                        nonce: req.nonce.as_deref(),
                        access_token: access_token.as_deref(),
                        code: code.as_deref(),
                        user_claims,
                    },
                    now,
                )
                .await?;
            params.push(("id_token".into(), id_token));
        }
        if let Some(s) = &req.target.state {
            params.push(("state".into(), s.clone()));
        }
        if req.is_openid() {
            params.push((
                "session_state".into(),
                self.session_state(&client.client_id, &req.target.redirect_uri, &record.sid),
            ));
        }
        params.push(("iss".into(), self.settings.issuer.clone()));
        tracing::info!(client_id = %client.client_id, user_id = %session.user.id, grant_id, "authorization granted");
        let params = match &req.target.jarm {
            Some(client_id) => self.jarm(client_id, params, now).await?,
            None => params,
        };
        Ok(AuthResponse {
            redirect_uri: req.target.redirect_uri.clone(),
            mode: req.target.mode,
            params,
        })
    }
}

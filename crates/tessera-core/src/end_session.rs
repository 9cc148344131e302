//! Logout (OIDC RP-Initiated Logout 1.0): ends the SSO session, revokes the grants made in it
//! without `offline_access`, and tells every application of the session, through the browser
//! (Front-Channel Logout §3) and directly (Back-Channel Logout §2.4, the logout token).

use serde_json::json;

use crate::error::{Error, Result};
use crate::outbound::Outbound;
use crate::params::Params;
use crate::provider::Provider;
use crate::secret::{b64url, constant_time_eq, new_jti};

/// Checked logout parameters.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    /// Where to send the user afterwards, with `state`; only a URI registered for the client.
    pub post_logout_redirect: Option<String>,
    /// A valid `id_token_hint` for the session's user: no need to ask the user to confirm.
    pub hinted: bool,
}

/// What ending a session produced for the browser: where to go, and the front-channel logout
/// pages to load (back-channel logout tokens are already on their way).
#[derive(Debug, Clone, Default)]
pub struct LoggedOut {
    pub redirect: Option<String>,
    /// Front-channel logout URIs to load in iframes (with `iss` and `sid`).
    pub frontchannel: Vec<String>,
}

/// Back-Channel Logout §2.5: POSTs one logout token (form-encoded `logout_token`) through the
/// guarded outbound path, so a registered URI never reaches a loopback, private or link-local
/// address. Failures are logged, not retried (§2.8).
async fn send_logout_token(outbound: &dyn Outbound, uri: &str, token: &str) {
    let shown = crate::outbound::redact_url(uri);
    match outbound.post_form(uri, &[("logout_token", token)]).await {
        Ok(()) => tracing::info!(uri = %shown, "back-channel logout delivered"),
        Err(e) => tracing::warn!(uri = %shown, error = %e, "back-channel logout failed"),
    }
}

impl Provider {
    /// Sends logout tokens in the background: whoever ended the session does not wait for the
    /// applications to answer.
    fn deliver_logout_tokens(&self, tokens: Vec<(String, String)>) {
        for (uri, token) in tokens {
            let outbound = self.outbound.clone();
            tokio::spawn(async move { send_logout_token(&*outbound, &uri, &token).await });
        }
    }

    /// RP-Initiated Logout §2: checks `id_token_hint`, `client_id`, `post_logout_redirect_uri`, `state`.
    pub async fn logout_request(
        &self,
        p: &Params,
        session_sub_of: Option<&crate::session::Session>,
    ) -> Result<LogoutRequest> {
        let hint = p.get("id_token_hint")?;
        let mut client_id = p.get("client_id")?.map(str::to_owned);
        let mut hinted = false;
        if let Some(h) = hint {
            let aud = crate::secret::b64url_decode(h.split('.').nth(1).unwrap_or(""))
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|c| match &c["aud"] {
                    serde_json::Value::String(a) => Some(a.clone()),
                    serde_json::Value::Array(a) => {
                        a.first().and_then(|x| x.as_str()).map(str::to_owned)
                    }
                    _ => None,
                });
            let hint_client = match &aud {
                Some(a) => self.client(a).await?,
                None => None,
            };
            let loaded = hint_client.ok_or_else(|| {
                Error::invalid_request("id_token_hint is not an ID token this server issued")
            })?;
            let claims = self.id_token_hint(h, &loaded).ok_or_else(|| {
                Error::invalid_request("id_token_hint is not an ID token this server issued")
            })?;
            if client_id
                .as_deref()
                .is_some_and(|c| c != loaded.client.client_id)
            {
                return Err(Error::invalid_request(
                    "client_id does not match the audience of id_token_hint",
                ));
            }
            // RP-Initiated Logout §2: without asking, only for an ID token of the current session.
            hinted = session_sub_of.is_some_and(|s| {
                self.subject(&loaded.client, &s.user).ok().as_deref() == claims["sub"].as_str()
                    && claims["sid"].as_str() == Some(s.record.sid.as_str())
            });
            client_id = Some(loaded.client.client_id.clone());
        }
        let post_logout_redirect = match p.get("post_logout_redirect_uri")? {
            None => None,
            Some(uri) => {
                let id = client_id.ok_or_else(|| {
                    Error::invalid_request(
                        "post_logout_redirect_uri needs id_token_hint or client_id",
                    )
                })?;
                let loaded = self.client(&id).await?.ok_or_else(|| {
                    Error::invalid_request("client_id is not a registered client")
                })?;
                if !loaded
                    .client
                    .browser
                    .post_logout_redirect_uris
                    .iter()
                    .any(|u| u == uri)
                {
                    return Err(Error::invalid_request(
                        "post_logout_redirect_uri is not registered for the client",
                    ));
                }
                let mut out = uri.to_owned();
                if let Some(state) = p.get("state")? {
                    let sep = if out.contains('?') { '&' } else { '?' };
                    let enc: String = form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", state)
                        .finish();
                    out = format!("{out}{sep}{enc}");
                }
                Some(out)
            }
        };
        Ok(LogoutRequest {
            post_logout_redirect,
            hinted,
        })
    }

    /// A token that lets the logout confirmation form be posted only by a page this server showed.
    pub fn logout_csrf(&self, sid: &str) -> String {
        b64url(
            &self
                .master
                .derive(format!("logout-confirm\0{sid}").as_bytes()),
        )
    }

    pub fn logout_csrf_ok(&self, sid: &str, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| constant_time_eq(p.as_bytes(), self.logout_csrf(sid).as_bytes()))
    }

    /// Ends the session `sid` of user `user_id`, sends the back-channel logout tokens and
    /// prepares the front-channel notifications.
    pub async fn logout(
        &self,
        session: &crate::session::Session,
        redirect: Option<String>,
    ) -> Result<LoggedOut> {
        let now = self.now();
        let sid = &session.record.sid;
        let clients = self.end_session(sid, now).await?;
        let mut out = LoggedOut {
            redirect,
            ..LoggedOut::default()
        };
        let mut backchannel = Vec::new();
        for id in clients {
            let Some(loaded) = self.client(&id).await? else {
                continue;
            };
            let c = &loaded.client;
            if let Some(uri) = &c.browser.frontchannel_logout_uri {
                let q: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("iss", &self.settings.issuer)
                    .append_pair("sid", sid)
                    .finish();
                let sep = if uri.contains('?') { '&' } else { '?' };
                out.frontchannel.push(format!("{uri}{sep}{q}"));
            }
            if let Some(uri) = &c.browser.backchannel_logout_uri {
                // Back-Channel Logout §2.4: the logout token.
                let claims = json!({
                    "iss": self.settings.issuer,
                    "sub": self.subject(c, &session.user).unwrap_or_default(),
                    "aud": c.client_id,
                    "iat": now.0,
                    "exp": now.plus(120).0,
                    "jti": new_jti(),
                    "sid": sid,
                    "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
                });
                // §2.4: signed, and encrypted, as the application's ID tokens are.
                let secret = loaded.secret.as_deref();
                let signed = self.sign_for(
                    (c, secret),
                    c.browser.id_token_alg,
                    "logout+jwt",
                    &claims,
                    now,
                );
                let token = match signed {
                    Ok(jws) => self.seal_jwt(c, jws, c.protection.id_token(), now).await,
                    Err(e) => Err(e),
                };
                match token {
                    Ok(t) => backchannel.push((uri.clone(), t)),
                    Err(e) => {
                        tracing::warn!(client_id = %c.client_id, error = %e, "no back-channel logout token could be made");
                    }
                }
            }
        }
        self.deliver_logout_tokens(backchannel);
        Ok(out)
    }
}

//! Logout across the federation, Tessera as the upstream's relying party: Tessera's logout goes
//! on to the upstream the session signed in at (OpenID Connect RP-Initiated Logout 1.0 §2, with
//! that sign-in's ID token as `id_token_hint`, back to `/federation/{idp}/logged-out`; or a SAML
//! LogoutRequest, answered at `/federation/{idp}/slo`); the upstream's logout token at
//! `/federation/{idp}/backchannel-logout` (Back-Channel Logout 1.0 §2.6) or its signed SAML
//! LogoutRequest at `/federation/{idp}/slo` ends the Tessera sessions its sign-in opened, which
//! tells their applications in turn.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{IdentityProvider, IdpProtocol};
use crate::admin::Caller;
use crate::clock::Timestamp;
use crate::end_session::LoggedOut;
use crate::error::{Error, Result};
use crate::model::{Artifact, ArtifactKey, ArtifactKind};
use crate::provider::Provider;
use crate::secret::{handle_key, new_handle, sha256};
use crate::session::Session;
use crate::store::{Consume, Consumed, StoreError};

/// How long Tessera waits for the browser to come back from the upstream's logout.
const LOGOUT_TTL: i64 = 900;

/// Back-Channel Logout 1.0 §2.4: the event a logout token carries.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What is kept while the browser is at the upstream's logout.
#[derive(Debug, Serialize, Deserialize)]
struct PendingLogout {
    /// The application's post-logout redirect, if it asked for one.
    then: Option<String>,
}

/// The key under which an upstream session id names the user signed in with it (for logout
/// tokens that carry only `sid`).
fn upstream_sid_key(idp: &str, sid: &str) -> ArtifactKey {
    let digest = sha256(format!("upstream-sid\0{idp}\0{sid}").as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    ArtifactKey::new(prefix, digest)
}

impl Provider {
    /// Ends the session as the browser's logout does; then, when the session signed in at an
    /// upstream that does RP-initiated logout, the browser goes there before `redirect`.
    pub async fn browser_logout(
        &self,
        session: &Session,
        redirect: Option<String>,
    ) -> Result<LoggedOut> {
        let mut out = self.logout(session, redirect).await?;
        if let Some(url) = self.upstream_logout(session, out.redirect.clone()).await? {
            out.redirect = Some(url);
        }
        Ok(out)
    }

    /// RP-Initiated Logout §2 at the upstream of the session's last upstream sign-in.
    async fn upstream_logout(
        &self,
        session: &Session,
        then: Option<String>,
    ) -> Result<Option<String>> {
        let now = self.now();
        let Some(proof) = session
            .record
            .uses()
            .into_iter()
            .rev()
            .find_map(|u| u.upstream)
        else {
            return Ok(None);
        };
        let Some(idp) = self
            .idp(&proof.idp)
            .filter(|i| i.enabled && i.upstream_logout && i.protocol != IdpProtocol::Oauth2)
        else {
            return Ok(None);
        };
        if idp.protocol == IdpProtocol::Saml {
            return self.saml_logout(&idp, &proof, then, now).await;
        }
        let end = match self.endpoints(&idp, now).await {
            Ok(ep) => ep.end_session.clone(),
            Err(why) => {
                tracing::warn!(idp = %idp.name, error = ?why, "upstream logout skipped: the provider cannot be reached");
                None
            }
        };
        let Some(end) = end else {
            return Ok(None);
        };
        let state = self.keep_logout(&idp, then, now).await?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &proof.id_token {
            q.append_pair("id_token_hint", t);
        }
        q.append_pair("client_id", &idp.client_id);
        q.append_pair(
            "post_logout_redirect_uri",
            &self.federation_endpoint(&idp.name, "logged-out"),
        );
        q.append_pair("state", &state);
        let sep = if end.contains('?') { '&' } else { '?' };
        Ok(Some(format!("{end}{sep}{}", q.finish())))
    }

    /// Keeps where to go once back from the upstream's logout; the `state` (RelayState).
    async fn keep_logout(
        &self,
        idp: &IdentityProvider,
        then: Option<String>,
        now: Timestamp,
    ) -> Result<String> {
        let (state, key) = new_handle();
        self.store
            .insert_artifact(&Artifact {
                key,
                kind: ArtifactKind::FederationLogout,
                client_id: idp.name.clone(),
                grant_id: None,
                user_id: None,
                expires_at: now.plus(LOGOUT_TTL),
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::to_value(PendingLogout { then }).map_err(Error::server)?,
            })
            .await?;
        Ok(state)
    }

    /// SAML single logout, Tessera first (Profiles §4.4.3.1): a LogoutRequest for the sign-in's
    /// NameID and SessionIndex to the provider's Redirect SingleLogoutService, if it has one.
    async fn saml_logout(
        &self,
        idp: &IdentityProvider,
        proof: &crate::factor::UpstreamProof,
        then: Option<String>,
        now: Timestamp,
    ) -> Result<Option<String>> {
        let slo = match self.saml_metadata(idp, now).await {
            Ok(md) => md.slo.clone(),
            Err(why) => {
                tracing::warn!(idp = %idp.name, error = ?why, "upstream logout skipped: the metadata cannot be read");
                None
            }
        };
        let Some(slo) = slo else {
            return Ok(None);
        };
        let state = self.keep_logout(idp, then, now).await?;
        super::saml::logout_request_url(
            &slo,
            &self.saml_entity_id(&idp.name),
            (&proof.subject, proof.name_id_format.as_deref()),
            proof.sid.as_deref(),
            &state,
            self.saml_request_key(now).as_deref(),
            now,
        )
        .map(Some)
        .map_err(Error::server)
    }

    /// `GET /federation/{idp}/slo` with a SAMLRequest: the provider's LogoutRequest (Profiles
    /// §4.4.3.2), its Redirect-binding signature verified with the metadata's certificates (an
    /// unsigned one is refused: anyone could send it). The sessions its NameID's sign-ins opened
    /// (its SessionIndex's, when given) end as a logout does; the browser goes back to the
    /// provider with a LogoutResponse.
    pub async fn saml_logout_request(&self, idp: &str, raw_query: &str) -> Result<String> {
        let now = self.now();
        let idp = self
            .idp(idp)
            .filter(|i| i.enabled && i.protocol == IdpProtocol::Saml)
            .ok_or_else(|| {
                Error::invalid_request("there is no enabled SAML identity provider of that name")
            })?;
        let md = self.saml_metadata(&idp, now).await.map_err(|why| {
            Error::server(format!(
                "the identity provider's metadata cannot be read: {why}"
            ))
        })?;
        let slo = md.slo.clone().ok_or_else(|| {
            Error::invalid_request("the identity provider has no single logout service")
        })?;
        let (q, m, mine) = (raw_query.to_owned(), md.clone(), self.saml_slo(&idp.name));
        let skew = self.settings.clock_skew;
        let (request_id, name_id, session_index) = tokio::task::spawn_blocking(move || {
            super::saml::verify_logout_request(&q, &m, &mine, (now, skew))
        })
        .await
        .map_err(Error::server)?
        .map_err(|why| Error::invalid_request(format!("the LogoutRequest is refused: {why}")))?;
        // Used once: a LogoutRequest seen again (from a log, a Referer) ends nothing more.
        let until = now.plus(2 * super::saml::logout_fresh(skew));
        if !self
            .first_use_of_jti("saml-logout-request", &md.entity_id, &request_id, until)
            .await?
        {
            return Err(Error::invalid_request(
                "the LogoutRequest is refused: it was used before",
            ));
        }
        if let Some(link) = self.store.find_identity(&idp.name, &name_id).await? {
            if let Some(user) = self.store.get_user(&link.user_id).await? {
                let ended = self
                    .admin(Caller::system())
                    .end_upstream_sessions(&user, &idp.name, session_index.as_deref())
                    .await
                    .map_err(Error::server)?;
                tracing::info!(idp = %idp.name, user_id = %user.id, ended, "SAML single logout");
            }
        }
        let relay = form_urlencoded::parse(raw_query.as_bytes())
            .find(|(k, _)| k == "RelayState")
            .map(|(_, v)| v.into_owned());
        super::saml::logout_response_url(
            &slo,
            &self.saml_entity_id(&idp.name),
            &request_id,
            relay.as_deref(),
            self.saml_request_key(now).as_deref(),
            now,
        )
        .map_err(Error::server)
    }

    /// `GET /federation/{idp}/logged-out`: back from the upstream's logout; the application's
    /// post-logout redirect, when it asked for one (once; an unknown `state` goes nowhere).
    pub async fn upstream_logged_out(
        &self,
        idp: &str,
        state: Option<&str>,
    ) -> Result<Option<String>> {
        let now = self.now();
        let Some(key) = state.and_then(handle_key) else {
            return Ok(None);
        };
        let consumed = self
            .store
            .consume_artifact(
                Consume {
                    key: &key,
                    kind: ArtifactKind::FederationLogout,
                    client_id: idp,
                },
                now,
                None,
            )
            .await?;
        Ok(match consumed {
            Consumed::First(a) if a.expires_at > now => {
                serde_json::from_value::<PendingLogout>(a.payload)
                    .ok()
                    .and_then(|p| p.then)
            }
            _ => None,
        })
    }

    /// Remembers that the upstream session `sid` at `idp` signed in `user_id`, until
    /// `expires_at`: a logout token naming only the `sid` then finds the user.
    pub(crate) async fn remember_upstream_sid(
        &self,
        idp: &str,
        sid: &str,
        user_id: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        let entry = Artifact {
            key: upstream_sid_key(idp, sid),
            kind: ArtifactKind::FederationLogout,
            client_id: idp.to_owned(),
            grant_id: None,
            user_id: Some(user_id.to_owned()),
            expires_at,
            revoked_at: None,
            consumed_at: None,
            payload: json!({}),
        };
        match self.store.insert_artifact(&entry).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /federation/{idp}/backchannel-logout` (Back-Channel Logout 1.0 §2.6): validates the
    /// upstream's logout token and ends the sessions its sign-in (its `sid`, or every one of
    /// the user's from it) opened. Returns how many ended.
    pub async fn upstream_backchannel_logout(
        &self,
        idp: &str,
        logout_token: Option<&str>,
    ) -> Result<usize> {
        let now = self.now();
        let token =
            logout_token.ok_or_else(|| Error::invalid_request("logout_token is required"))?;
        let idp = self
            .idp(idp)
            .filter(|i| i.enabled && i.protocol == IdpProtocol::Oidc)
            .ok_or_else(|| {
                Error::invalid_request("there is no enabled OpenID Connect provider of that name")
            })?;
        let ep = self.endpoints(&idp, now).await.map_err(|why| {
            Error::server(format!("the identity provider cannot be reached: {why}"))
        })?;
        let claims = self
            .verify_upstream_jwt(
                &ep,
                token,
                &["logout+jwt", "JWT"],
                std::slice::from_ref(&idp.client_id),
                now,
            )
            .await
            .map_err(|e| Error::invalid_request(format!("the logout token {e}")))?;
        let (sub, sid) = logout_claims(&claims)
            .map_err(|e| Error::invalid_request(format!("the logout token {e}")))?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let exp = Timestamp(claims.get("exp").and_then(Value::as_i64).unwrap_or(now.0));
        let issuer = ep.issuer.clone().unwrap_or_default();
        if !self
            .first_use_of_jti("backchannel-logout", &issuer, jti, exp)
            .await?
        {
            return Err(Error::invalid_request("the logout token was used before"));
        }
        let user_id = self.logout_user(&idp, sub, sid).await?;
        let Some(user) = (match user_id {
            Some(id) => self.store.get_user(&id).await?,
            None => None,
        }) else {
            tracing::info!(idp = %idp.name, "upstream logout names no user here");
            return Ok(0);
        };
        let ended = self
            .admin(Caller::system())
            .end_upstream_sessions(&user, &idp.name, sid)
            .await
            .map_err(Error::server)?;
        tracing::info!(idp = %idp.name, user_id = %user.id, ended, "upstream back-channel logout");
        Ok(ended)
    }

    /// The user a logout token names: by the identity `sub`, else by the session `sid`.
    async fn logout_user(
        &self,
        idp: &IdentityProvider,
        sub: Option<&str>,
        sid: Option<&str>,
    ) -> Result<Option<String>> {
        if let Some(sub) = sub {
            return Ok(self
                .store
                .find_identity(&idp.name, sub)
                .await?
                .map(|l| l.user_id));
        }
        let Some(sid) = sid else { return Ok(None) };
        Ok(self
            .store
            .get_artifact(&upstream_sid_key(&idp.name, sid))
            .await?
            .filter(|a| a.kind == ArtifactKind::FederationLogout && a.client_id == idp.name)
            .and_then(|a| a.user_id))
    }
}

/// Back-Channel Logout 1.0 §2.6 steps 4-7 on a verified token: the logout event, `iat`, `jti`,
/// `sub` and/or `sid`, and no `nonce` (which an ID token passed off as one would carry).
fn logout_claims(
    c: &Map<String, Value>,
) -> std::result::Result<(Option<&str>, Option<&str>), &'static str> {
    let event = c
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err("carries no back-channel logout event");
    }
    if c.contains_key("nonce") {
        return Err("carries a nonce: it is not a logout token");
    }
    if !c.get("iat").is_some_and(Value::is_i64) {
        return Err("has no iat");
    }
    if c.get("jti")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("has no jti");
    }
    let text = |k: &str| c.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Err("names neither sub nor sid");
    }
    Ok((sub, sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_token_has_its_event_and_no_nonce() {
        let ok = json!({"iat": 1, "jti": "j", "sub": "s",
            "events": {BACKCHANNEL_EVENT: {}}});
        let ok = ok.as_object().expect("object");
        assert_eq!(logout_claims(ok), Ok((Some("s"), None)));
        for (k, v) in [
            ("events", json!({})),
            ("events", json!({BACKCHANNEL_EVENT: "x"})),
            ("nonce", json!("n")),
            ("iat", json!("1")),
            ("jti", json!("")),
            ("sub", json!(null)),
        ] {
            let mut bad = ok.clone();
            bad.insert(k.into(), v);
            assert!(logout_claims(&bad).is_err(), "{k}");
        }
        let mut sid_only = ok.clone();
        sid_only.remove("sub");
        sid_only.insert("sid".into(), json!("u-sid"));
        assert_eq!(logout_claims(&sid_only), Ok((None, Some("u-sid"))));
    }
}

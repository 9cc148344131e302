//! The resource owner password credentials grant (RFC 6749 §4.3; seed 001 "Resource Owner
//! Credential Grant"): off unless the application enables it, and held to the login page's rules:
//! throttling, blocked users, the authorization policy.

use crate::clock::Timestamp;
use crate::credentials::CredentialCheck;
use crate::error::{Error, ErrorCode, Result};
use crate::grant::{Caller, TokenResponse};
use crate::model::{GrantType, OPENID_SCOPES};
use crate::provider::{LoadedClient, Provider};
use crate::user_grant::{ActiveGrant, GrantRecord};

impl Provider {
    /// RFC 6749 §4.3.2.
    pub(crate) async fn password_grant(
        &self,
        loaded: &Caller<'_>,
        username: &str,
        password: &str,
        scope: Option<Vec<String>>,
        address: &str,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let scope = self.user_grant_scope(loaded, scope)?;
        // A password proves one factor: an application whose scheme needs more signs its users
        // in through the browser, and the password is not even checked (no guessing through it).
        let pwd = [crate::factor::FactorUse::password(now)];
        if !self.scheme_of(client).satisfied_by(&pwd, now, None) {
            return Err(Error::invalid_grant(
                "this application's authentication scheme needs more than a password; users sign in through the authorization endpoint",
            ));
        }
        let user = match self
            .check_credentials(
                username,
                password,
                if address.is_empty() {
                    "unknown"
                } else {
                    address
                },
                &client.client_id,
                now,
            )
            .await?
        {
            CredentialCheck::Valid(u) => *u,
            CredentialCheck::Invalid => {
                return Err(Error::invalid_grant(
                    "the username or password is incorrect",
                ))
            }
            CredentialCheck::Throttled(after) => {
                return Err(Error::throttled(ErrorCode::InvalidGrant, after))
            }
        };
        self.user_may_use(loaded, &user)?;
        self.grant_for_user(loaded, user, scope, Vec::new(), vec!["pwd".into()], now)
            .await
    }

    /// The scope of a grant made at the token endpoint: the requested scopes (OpenID scopes
    /// and the client's), or the client's defaults; offline_access only with refresh tokens.
    pub(crate) fn user_grant_scope(
        &self,
        loaded: &LoadedClient,
        requested: Option<Vec<String>>,
    ) -> Result<Vec<String>> {
        let c = &loaded.client;
        let scope = match requested {
            Some(s) => s,
            None => self.granted_scope(c, None, &c.apis)?,
        };
        if let Some(bad) = scope
            .iter()
            .find(|s| !(OPENID_SCOPES.contains(&s.as_str()) || c.scopes.contains(s)))
        {
            return Err(Error::invalid_scope(format!(
                "scope {bad} is not allowed for this client"
            )));
        }
        let can_refresh = c.grant_types.contains(&GrantType::RefreshToken);
        Ok(scope
            .into_iter()
            .filter(|s| can_refresh || s != "offline_access")
            .collect())
    }

    /// The application's authorization policy (allowed groups), as at the login page.
    pub(crate) fn user_may_use(
        &self,
        loaded: &LoadedClient,
        user: &crate::model::User,
    ) -> Result<()> {
        let allowed = &loaded.client.browser.allowed_groups;
        if !allowed.is_empty() && !user.groups.iter().any(|g| allowed.contains(g)) {
            return Err(Error::invalid_grant(
                "the user is not allowed to use this application",
            ));
        }
        Ok(())
    }

    /// Records a grant for `user` made at the token endpoint (for `resources`, RFC 8707) and
    /// issues its tokens.
    pub(crate) async fn grant_for_user(
        &self,
        loaded: &Caller<'_>,
        user: crate::model::User,
        scope: Vec<String>,
        resources: Vec<String>,
        amr: Vec<String>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        self.subject(client, &user)?;
        // A password satisfies the application's scheme (checked by the password grant): its
        // acr. An asserted identity (JWT bearer) proved nothing here: "0".
        let acr = if amr.iter().any(|a| a == "pwd") {
            self.scheme_of(client).acr
        } else {
            crate::scheme::ACR_PASSWORD.to_owned()
        };
        let record = GrantRecord {
            user_id: user.id.clone(),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            resources,
            sid: String::new(),
            auth_time: now,
            amr,
            acr,
            offline: scope.iter().any(|s| s == "offline_access"),
            claims_request: None,
            epoch: user.sign_out_epoch,
        };
        let (id, expires_at) = self.create_grant(client, &record, now).await?;
        let grant = ActiveGrant {
            id,
            record,
            user,
            expires_at,
        };
        self.tokens_for_grant(loaded, &grant, &scope, &[], None, now)
            .await
    }
}

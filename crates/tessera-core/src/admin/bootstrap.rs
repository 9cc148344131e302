//! The admin API as one of Tessera's own APIs (resource servers): its identifier, the seed's
//! scopes that decide what a token may do there, and the first administrator of a fresh install.

use serde_json::json;

use super::permission::{AdminScope, Operation, TargetKind};
use super::targets::in_admin_group;
use super::{
    Admin, AdminError, AdminResult, ApiSpec, ClientPatch, ClientSpec, ScopeSpec, UserPatch,
    UserSpec,
};
use crate::model::{ClientType, ConsentMode, GrantType, TokenFormat, User};
use crate::names::ADMIN_GROUP;
use crate::provider::Provider;

/// The Admin Portal's own client: public, authorization code with PKCE, for administrators only.
pub const PORTAL_CLIENT: &str = "tessera-admin-portal";

/// The client of the self-service account page.
pub const ACCOUNT_CLIENT: &str = "tessera-account";

/// How long a portal sign-in lasts before the portal asks Tessera again (silently while the SSO
/// session lasts).
pub const PORTAL_SESSION_SECONDS: i64 = 3600;

impl Provider {
    /// The admin API's identifier, the `aud` its tokens carry: `<issuer>/admin/api`.
    pub fn admin_api(&self) -> String {
        self.settings.endpoint("/admin/api")
    }

    /// Tessera's own clients, made and kept by [`Admin::ensure_admin_api`] at every start: an
    /// export leaves them out and a prune leaves them alone.
    pub(crate) fn is_own_client(&self, client_id: &str) -> bool {
        client_id == PORTAL_CLIENT || client_id == ACCOUNT_CLIENT
    }

    /// The admin API, Tessera's own ([`Provider::is_own_client`]).
    pub(crate) fn is_own_api(&self, identifier: &str) -> bool {
        identifier == self.admin_api()
    }

    /// The admin API's scopes, Tessera's own ([`Provider::is_own_client`]).
    pub(crate) fn is_own_scope(&self, name: &str) -> bool {
        AdminScope::ALL.iter().any(|s| s.name() == name)
    }

    /// Where Tessera sends an administrator back to the Admin Portal after signing in.
    pub fn portal_callback(&self) -> String {
        self.settings.endpoint("/admin/callback")
    }
}

impl Admin<'_> {
    /// Creates the admin API and its scopes when they are missing; true when it created them.
    /// Scopes an administrator edited are left as they are.
    pub async fn ensure_admin_api(&self) -> AdminResult<bool> {
        let created = self.ensure_api_and_scopes().await?;
        self.ensure_portal_client().await?;
        self.ensure_account_client().await?;
        Ok(created)
    }

    async fn ensure_api_and_scopes(&self) -> AdminResult<bool> {
        let identifier = self.admin_api();
        if self.store.get_api(&identifier).await?.is_some() {
            return Ok(false);
        }
        for scope in AdminScope::ALL {
            let (name, (display, description)) = (scope.name(), scope.describe());
            if self.store.get_scope(name).await?.is_none() {
                let created = self
                    .create_scope(&ScopeSpec {
                        name: name.into(),
                        display_name: display.into(),
                        description: description.into(),
                        discoverable: Some(false),
                        ..ScopeSpec::default()
                    })
                    .await;
                match created {
                    // Another node created it meanwhile.
                    Ok(_) | Err(AdminError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let api = ApiSpec {
            identifier,
            name: "Tessera admin API".into(),
            scopes: AdminScope::ALL
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
        };
        match self.create_api(&api).await {
            Ok(_) => Ok(true),
            // Another node created it meanwhile.
            Err(AdminError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The Admin Portal's client (seed 000's Admin Portal signs in through Tessera itself): created
    /// when missing, its redirect URI moved when the issuer changed.
    async fn ensure_portal_client(&self) -> AdminResult<()> {
        let callback = self.portal_callback();
        let done = match self.store.get_client(PORTAL_CLIENT).await? {
            Some(c) if c.browser.redirect_uris == [callback.clone()] => return Ok(()),
            Some(_) => {
                let patch = ClientPatch {
                    redirect_uris: Some(vec![callback]),
                    ..ClientPatch::default()
                };
                self.update_client(PORTAL_CLIENT, &patch).await.map(|_| ())
            }
            None => {
                let spec = ClientSpec {
                    client_id: Some(PORTAL_CLIENT.into()),
                    description:
                        "The Admin Portal at /admin; only members of tessera-admins sign in".into(),
                    grant_types: Some(vec![GrantType::AuthorizationCode]),
                    scopes: vec!["administrator".into()],
                    apis: vec![self.admin_api()],
                    token_format: Some(TokenFormat::Opaque),
                    access_token_ttl: Some(PORTAL_SESSION_SECONDS),
                    redirect_uris: vec![callback],
                    consent: Some(ConsentMode::AutoAccept),
                    allowed_groups: vec![ADMIN_GROUP.into()],
                    ..ClientSpec::new("Tessera Admin Portal", ClientType::Spa)
                };
                self.create_client(&spec).await.map(|_| ())
            }
        };
        match done {
            // Another node did it meanwhile.
            Ok(()) | Err(AdminError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The account page's client (`/account` signs in through Tessera like the Portal): created
    /// when missing, its redirect URI moved when the issuer changed.
    async fn ensure_account_client(&self) -> AdminResult<()> {
        let callback = self.settings.endpoint("/account/callback");
        let done = match self.store.get_client(ACCOUNT_CLIENT).await? {
            Some(c) if c.browser.redirect_uris == [callback.clone()] => return Ok(()),
            Some(_) => {
                let patch = ClientPatch {
                    redirect_uris: Some(vec![callback]),
                    ..ClientPatch::default()
                };
                self.update_client(ACCOUNT_CLIENT, &patch).await.map(|_| ())
            }
            None => {
                let spec = ClientSpec {
                    client_id: Some(ACCOUNT_CLIENT.into()),
                    description: "The self-service account page at /account".into(),
                    grant_types: Some(vec![GrantType::AuthorizationCode]),
                    redirect_uris: vec![callback],
                    consent: Some(ConsentMode::AutoAccept),
                    ..ClientSpec::new("Your account", ClientType::Spa)
                };
                self.create_client(&spec).await.map(|_| ())
            }
        };
        match done {
            Ok(()) | Err(AdminError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes `username` an administrator: creates the user with `password`, or, only when
    /// `existing` says so, adds the existing user to [`ADMIN_GROUP`] (and sets the password when
    /// one is given), so that a typo naming someone else's account never promotes it.
    pub async fn make_administrator(
        &self,
        username: &str,
        password: Option<&str>,
        existing: bool,
    ) -> AdminResult<User> {
        self.authorize(Operation::AddMember, TargetKind::Protected)?;
        let user = match self.provider.find_user(username).await {
            Ok(u) if !existing => {
                return Err(AdminError::Conflict(format!(
                    "a user {} already exists (created at {} Unix seconds, groups: {}); pass --existing to make that account an administrator (it is signed out everywhere)",
                    u.username,
                    u.created_at.0,
                    u.groups.join(", ")
                )))
            }
            Err(AdminError::NotFound(_)) if existing => {
                return Err(AdminError::NotFound(format!(
                    "user {username}, to make an administrator"
                )))
            }
            Err(AdminError::NotFound(_)) if password.is_none() => {
                return Err(super::invalid(
                    "password",
                    "a new administrator needs a password (--password or TESSERA_NEW_PASSWORD)",
                ))
            }
            Ok(u) => {
                let mut groups = u.groups.clone();
                if !in_admin_group(&groups) {
                    groups.push(ADMIN_GROUP.into());
                }
                let patch = UserPatch {
                    groups: Some(groups),
                    ..UserPatch::default()
                };
                let u = self.update_user(&u.id, &patch).await?;
                if let Some(p) = password {
                    let change = super::PasswordChange {
                        password: p.to_owned(),
                        current_password: None,
                    };
                    self.set_user_password(&u.id, &change).await?;
                }
                u
            }
            Err(AdminError::NotFound(_)) => {
                self.create_user(&UserSpec {
                    username: username.into(),
                    password: password.map(str::to_owned),
                    groups: vec![ADMIN_GROUP.into()],
                    ..UserSpec::default()
                })
                .await?
            }
            Err(e) => return Err(e),
        };
        self.audit(
            "user.made_administrator",
            &format!("user:{}", user.id),
            None,
            json!({ "group": ADMIN_GROUP }),
        )
        .await;
        Ok(user)
    }
}

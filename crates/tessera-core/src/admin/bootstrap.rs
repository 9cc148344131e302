//! The admin API as one of Tessera's own APIs (resource servers): its identifier, the seed's
//! scopes that decide what a token may do there, and the first administrator of a fresh install.

use serde_json::json;

use super::{Admin, AdminError, AdminResult, ApiSpec, ScopeSpec, UserPatch, UserSpec};
use crate::model::User;
use crate::provider::Provider;

/// The group whose members are administrators (the Admin Portal signs in only its members).
pub const ADMIN_GROUP: &str = "tessera-admins";

/// The admin API's scopes: name, display name, description.
pub const ADMIN_SCOPES: [(&str, &str, &str); 7] = [
    (
        "administrator",
        "Administrator",
        "Everything the admin API offers, the audit log included",
    ),
    (
        "config:read",
        "Read configuration",
        "Read applications, APIs, scopes, signing keys and settings",
    ),
    (
        "config:write",
        "Change configuration",
        "Create, change and delete applications, APIs, scopes and signing keys",
    ),
    ("users:read", "Read users", "Read users and groups"),
    (
        "users:write",
        "Manage users",
        "Create, change, block and delete users and set their passwords",
    ),
    (
        "users:self",
        "Your own profile",
        "Read and change your own profile",
    ),
    (
        "consents",
        "Consents",
        "List and revoke the consents users gave applications",
    ),
];

impl Provider {
    /// The admin API's identifier, the `aud` its tokens carry: `<issuer>/admin/api`.
    pub fn admin_api(&self) -> String {
        self.settings.endpoint("/admin/api")
    }
}

impl Admin<'_> {
    /// Creates the admin API and its scopes when they are missing; true when it created them.
    /// Scopes an administrator edited are left as they are.
    pub async fn ensure_admin_api(&self) -> AdminResult<bool> {
        let identifier = self.admin_api();
        if self.store.get_api(&identifier).await?.is_some() {
            return Ok(false);
        }
        for (name, display, description) in ADMIN_SCOPES {
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
            scopes: ADMIN_SCOPES.iter().map(|s| s.0.to_owned()).collect(),
        };
        match self.create_api(&api).await {
            Ok(_) => Ok(true),
            // Another node created it meanwhile.
            Err(AdminError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes `username` an administrator: creates the user with `password`, or adds an existing
    /// user to [`ADMIN_GROUP`] (and sets the password when one is given).
    pub async fn make_administrator(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> AdminResult<User> {
        let user = match self.find_user(username).await {
            Ok(u) => {
                let mut groups = u.groups.clone();
                if !groups.iter().any(|g| g == ADMIN_GROUP) {
                    groups.push(ADMIN_GROUP.into());
                }
                let patch = UserPatch {
                    groups: Some(groups),
                    ..UserPatch::default()
                };
                let u = self.update_user(&u.id, &patch).await?;
                if let Some(p) = password {
                    self.set_user_password(&u.id, p).await?;
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

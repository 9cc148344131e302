//! The user an upstream sign-in names: the one its identity is linked to (its mapped claims
//! brought up to date), else the one user whose email the upstream verified when the identity
//! provider is trusted for email, else a new user (just-in-time provisioning). An email another
//! account holds is never taken over silently: that account's owner links the identity from the
//! account page. Administrators are never linked by email, and an upstream never gives or takes
//! the administrators' group. New and changed users pass the same subject and username checks
//! as an administrator's writes.

use serde_json::{json, Map, Value};

use super::mapping::Profile;
use super::{IdentityProvider, LinkedIdentity};
use crate::admin::{AdminError, Caller};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::User;
use crate::provider::Provider;
use crate::secret::{b64url, random_bytes};
use crate::store::StoreError;

/// Why an upstream sign-in names no user who may sign in; what the sign-in page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The linked user is blocked.
    Blocked,
    /// Another account holds the email, and the identity provider may not link by it.
    EmailTaken,
    /// Several accounts hold the verified email: which one is not for an upstream to pick.
    Ambiguous,
    /// The email is an administrator's: administrators link identities themselves.
    Administrator,
    /// No linked user, and the identity provider creates none.
    NotLinked,
}

impl Refusal {
    pub fn message(self, idp: &str) -> String {
        match self {
            Refusal::Blocked => "This account cannot sign in. Ask your administrator.".into(),
            Refusal::EmailTaken | Refusal::Ambiguous | Refusal::Administrator => format!(
                "An account with this email address exists already. Sign in to it another way, then link {idp} on your account page."
            ),
            Refusal::NotLinked => format!(
                "No account here is linked to your {idp} identity. Ask your administrator, or sign in another way and link it on your account page."
            ),
        }
    }
}

/// How many holders of an email are read at most; as many is too many to pick from.
const HOLDERS: i64 = 20;

fn store_err(e: StoreError) -> Error {
    e.into()
}

fn admin_err(e: AdminError) -> Error {
    match e {
        AdminError::Store(s) => s.into(),
        other => Error::server(other),
    }
}

/// The username a new user starts from: the mapped one or the email, in its normal form; else
/// the provider's name and the upstream subject.
fn username_from(idp: &IdentityProvider, p: &Profile) -> String {
    p.username
        .as_deref()
        .or(p.email.as_deref())
        .and_then(|u| crate::names::username(u).ok())
        .unwrap_or_else(|| {
            let sub: String = p
                .subject
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(64)
                .collect();
            format!("{}-{sub}", idp.name)
        })
}

impl Provider {
    /// The user `p` names at `idp`, made or brought up to date; or why there is none.
    pub(crate) async fn upstream_user(
        &self,
        idp: &IdentityProvider,
        p: &Profile,
        now: Timestamp,
    ) -> Result<std::result::Result<(User, LinkedIdentity), Refusal>> {
        if let Some(link) = self
            .store
            .find_identity(&idp.name, &p.subject)
            .await
            .map_err(store_err)?
        {
            if let Some(user) = self
                .store
                .get_user(&link.user_id)
                .await
                .map_err(store_err)?
            {
                if user.blocked {
                    return Ok(Err(Refusal::Blocked));
                }
                return self.sync_linked(idp, user, link, p, now).await.map(Ok);
            }
            // The user is gone; the link went with it unless deleted in between.
            self.store
                .unlink_identity(&idp.name, &p.subject)
                .await
                .map_err(store_err)?;
        }
        if let Some(email) = &p.email {
            let holders = self
                .store
                .find_users_by_email(email, HOLDERS)
                .await
                .map_err(store_err)?;
            if !holders.is_empty() {
                if !(idp.link_by_email && p.email_verified) {
                    return Ok(Err(Refusal::EmailTaken));
                }
                if holders.iter().any(crate::admin::is_administrator) {
                    return Ok(Err(Refusal::Administrator));
                }
                // An address its holder never had verified (an untrusted upstream gave it) is
                // not theirs: linking by it would hand the verified owner's identity to them.
                let owners: Vec<&User> = holders
                    .iter()
                    .filter(|u| u.claims.get("email_verified") != Some(&Value::Bool(false)))
                    .collect();
                match owners.as_slice() {
                    [] if holders.len() < HOLDERS as usize => {}
                    [user] if holders.len() < HOLDERS as usize => {
                        if user.blocked {
                            return Ok(Err(Refusal::Blocked));
                        }
                        let link = self.link(idp, user, p, now).await?;
                        self.record_link(user, &link, "email").await;
                        return self
                            .sync_linked(idp, (*user).clone(), link, p, now)
                            .await
                            .map(Ok);
                    }
                    _ => return Ok(Err(Refusal::Ambiguous)),
                }
            }
        }
        if !idp.jit {
            return Ok(Err(Refusal::NotLinked));
        }
        self.provision(idp, p, now).await.map(Ok)
    }

    /// Links the identity `p` to `user`.
    pub(crate) async fn link(
        &self,
        idp: &IdentityProvider,
        user: &User,
        p: &Profile,
        now: Timestamp,
    ) -> Result<LinkedIdentity> {
        let link = LinkedIdentity {
            idp: idp.name.clone(),
            subject: p.subject.clone(),
            user_id: user.id.clone(),
            email: p.email.clone(),
            groups: p.groups.clone(),
            linked_at: now,
            last_sign_in: None,
        };
        self.store.link_identity(&link).await.map_err(store_err)?;
        Ok(link)
    }

    pub(crate) async fn record_link(&self, user: &User, link: &LinkedIdentity, how: &str) {
        tracing::info!(user_id = %user.id, idp = %link.idp, how, "identity linked");
        self.record(
            &crate::audit::Actor::user(&user.id),
            "user.identity_linked",
            &format!("user:{}", user.id),
            None,
            json!({"idp": link.idp, "subject": link.subject, "how": how}),
        )
        .await;
    }

    /// JIT provisioning: a new user from the profile, linked to the identity.
    async fn provision(
        &self,
        idp: &IdentityProvider,
        p: &Profile,
        now: Timestamp,
    ) -> Result<(User, LinkedIdentity)> {
        let admin = self.admin(Caller::system());
        let base = username_from(idp, p);
        let mut attempt = 0;
        let user = loop {
            let username = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{}", &b64url(&random_bytes::<6>())[..6])
            };
            let user = User {
                id: b64url(&random_bytes::<16>()),
                username,
                password_hash: None,
                rehashed_from: None,
                claims: p.claims.clone(),
                attributes: p.attributes.clone(),
                groups: p.groups.clone(),
                blocked: false,
                sign_out_epoch: 0,
                factors: Default::default(),
                created_at: now,
                updated_at: now,
                revision: 0,
            };
            let taken = self
                .store
                .find_user(&user.username)
                .await
                .map_err(store_err)?
                .is_some();
            if !taken {
                match admin
                    .insert_checked_user(&user, json!({"username": user.username, "idp": idp.name}))
                    .await
                {
                    Ok(()) => break user,
                    // A look-alike username, or one taken in between: another name.
                    Err(AdminError::Conflict(_))
                    | Err(AdminError::Store(StoreError::Conflict(_)))
                        if attempt < 4 => {}
                    Err(e) => return Err(admin_err(e)),
                }
            }
            attempt += 1;
            if attempt > 4 {
                return Err(Error::server("no free username for the upstream user"));
            }
        };
        let link = match self.link(idp, &user, p, now).await {
            Ok(l) => l,
            Err(e) => {
                // Another sign-in linked the identity at the same moment: its user stands.
                let _ = self.store.delete_user(&user.id).await;
                return Err(e);
            }
        };
        Ok((user, link))
    }

    /// Brings a linked user up to date with the profile: mapped claims and attributes replace
    /// theirs (the email and its verification only from a provider trusted for email), and the
    /// groups the provider gave last time are replaced by those it gives now.
    async fn sync_linked(
        &self,
        idp: &IdentityProvider,
        mut user: User,
        mut link: LinkedIdentity,
        p: &Profile,
        now: Timestamp,
    ) -> Result<(User, LinkedIdentity)> {
        let before = user.clone();
        // A changed email is taken only when no other account holds it: an upstream does not
        // hand out another user's (an administrator's) address as verified.
        let email_free = match p.email.as_deref() {
            Some(e)
                if !user
                    .claims
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|old| old.eq_ignore_ascii_case(e)) =>
            {
                self.store
                    .find_users_by_email(e, 2)
                    .await
                    .map_err(store_err)?
                    .iter()
                    .all(|u| u.id == user.id)
            }
            _ => true,
        };
        if !email_free {
            tracing::info!(user_id = %user.id, idp = %idp.name, "an email another account holds was not taken from the upstream");
        }
        for (k, v) in &p.claims {
            let email = matches!(k.as_str(), "email" | "email_verified");
            if !email || (idp.link_by_email && email_free) {
                user.claims.insert(k.clone(), v.clone());
            }
        }
        merge(&mut user.attributes, &p.attributes);
        user.groups.retain(|g| !link.groups.contains(g));
        for g in &p.groups {
            if !user.groups.contains(g) {
                user.groups.push(g.clone());
            }
        }
        if user != before {
            user.updated_at = now;
            let claims_changed =
                user.claims != before.claims || user.attributes != before.attributes;
            match self
                .admin(Caller::system())
                .update_checked_user(&user, claims_changed)
                .await
            {
                Ok(()) => user.revision += 1,
                // Mapped values that would collide with another user's subject, or a write
                // that raced: the user signs in as they are; the next sign-in tries again.
                Err(e) => {
                    tracing::warn!(user_id = %user.id, idp = %idp.name, error = ?e.to_string(), "the upstream's claims were not applied");
                    user = before;
                }
            }
        }
        link.groups = p.groups.clone();
        link.email = p.email.clone().or(link.email);
        link.last_sign_in = Some(now);
        self.store.update_identity(&link).await.map_err(store_err)?;
        Ok((user, link))
    }
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

impl Provider {
    /// Links the identity `p` at `idp` to `user_id`, who signed in and asked on the account page;
    /// the message for them either way.
    pub(crate) async fn link_from_account(
        &self,
        idp: &IdentityProvider,
        user_id: &str,
        p: &Profile,
        now: Timestamp,
    ) -> Result<std::result::Result<String, String>> {
        let taken = || {
            Err(format!(
                "This {} identity is linked to another account already.",
                idp.label()
            ))
        };
        if let Some(existing) = self
            .store
            .find_identity(&idp.name, &p.subject)
            .await
            .map_err(store_err)?
        {
            if existing.user_id != user_id {
                return Ok(taken());
            }
            return Ok(Ok(format!("{} is linked to your account.", idp.label())));
        }
        let Some(user) = self.store.get_user(user_id).await.map_err(store_err)? else {
            return Ok(Err("Your account is gone.".into()));
        };
        let link = match self.link(idp, &user, p, now).await {
            Ok(l) => l,
            Err(_) => return Ok(taken()),
        };
        self.record_link(&user, &link, "account").await;
        Ok(Ok(format!(
            "{} is now linked to your account.",
            idp.label()
        )))
    }
}

//! Users: create (with a password or a pre-hashed argon2 value), read, update, set a password,
//! block, unblock, delete. Standard claims are checked by name and type (OIDC Core §5.1); names
//! and groups must be in their normal form ([`crate::names`]). With `users:self` alone a user
//! edits their own profile claims, and changes their password only with the current one.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::permission::{Operation, TargetKind};
use super::subjects::Written;
use super::targets::in_admin_group;
use super::{invalid, protocol_error, rules, Admin, AdminError, AdminResult};
use crate::credentials::CredentialCheck;
use crate::model::{Consent, User};
use crate::password;
use crate::provider::Provider;
use crate::secret::{b64url, random_bytes};

/// A user as an administrator describes it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub username: String,
    /// A password in clear, hashed with argon2id before it is stored.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// A hash made by another system, to migrate users without knowing their passwords: argon2,
    /// bcrypt, PBKDF2 or scrypt in the forms [`crate::password::stored_form`] reads; the first
    /// successful sign-in replaces it with argon2id at Tessera's cost.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// OIDC standard claims: name, given_name, email, email_verified, address, …
    #[serde(default)]
    pub claims: Map<String, Value>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub blocked: bool,
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSpec")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A partial update: set fields replace the stored ones; `claims` and `attributes` are merged
/// key by key, a `null` value removing the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub username: Option<String>,
    #[serde(default)]
    pub claims: Map<String, Value>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    pub groups: Option<Vec<String>>,
    pub blocked: Option<bool>,
}

/// A new password; `current_password` is required when a user changes their own with
/// `users:self` alone.
#[derive(Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
    #[serde(default)]
    pub current_password: Option<String>,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange")
    }
}

/// OIDC Core §5.4: a profile claim a user may edit with `users:self` alone; never what
/// identifies them to applications (email, phone, verified flags, attributes, the username that
/// `preferred_username` mirrors) or what Tessera keeps (`updated_at`).
fn self_editable(claim: &str) -> bool {
    crate::claims::scope_claims("profile").contains(&claim)
        && !matches!(claim, "preferred_username" | "updated_at")
}

const STRING_CLAIMS: [&str; 15] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
];
const BOOL_CLAIMS: [&str; 2] = ["email_verified", "phone_number_verified"];
const ADDRESS_FIELDS: [&str; 6] = [
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// OIDC Core §5.1: each standard claim with its JSON type.
fn check_claims(claims: &Map<String, Value>) -> AdminResult<()> {
    for (k, v) in claims {
        let ok = if STRING_CLAIMS.contains(&k.as_str()) {
            v.as_str().is_some_and(|s| s.chars().count() <= 1000)
        } else if BOOL_CLAIMS.contains(&k.as_str()) {
            v.is_boolean()
        } else if k == "address" {
            v.as_object().is_some_and(|a| {
                a.iter()
                    .all(|(f, x)| ADDRESS_FIELDS.contains(&f.as_str()) && x.is_string())
            })
        } else {
            return Err(invalid(
                "claims",
                format!(
                    "{k} is not an OpenID Connect standard claim; use attributes for custom data"
                ),
            ));
        };
        if !ok {
            return Err(invalid("claims", format!("{k} has the wrong type")));
        }
    }
    Ok(())
}

/// Custom attributes: named apart from the standard claims (an attribute `email` would stand in
/// for the `email` claim wherever an application reads an attribute) and from what every user
/// has (`id`, `username`, `groups`), at most 4 KiB each.
fn check_attributes(attrs: &Map<String, Value>) -> AdminResult<()> {
    for (k, v) in attrs {
        rules::attribute_name("attributes", k)?;
        if crate::claims::reserved_claim(k) || matches!(k.as_str(), "id" | "username" | "groups") {
            return Err(invalid(
                "attributes",
                format!("{k} is a standard or protocol claim or a user field; set standard claims in claims, or name the attribute otherwise"),
            ));
        }
        if v.to_string().len() > 4096 {
            return Err(invalid("attributes", format!("{k} is larger than 4 KiB")));
        }
    }
    Ok(())
}

/// Whether `name` is an OpenID Connect standard claim a user record holds (OIDC Core §5.1).
pub(crate) fn standard_claim(name: &str) -> bool {
    STRING_CLAIMS.contains(&name) || BOOL_CLAIMS.contains(&name) || name == "address"
}

/// [`check_claims`] for callers outside administration (an upstream's mapped claims).
pub(crate) fn check_claim_values(claims: &Map<String, Value>) -> Result<(), String> {
    check_claims(claims).map_err(|e| e.to_string())
}

/// [`check_attributes`] for callers outside administration (an upstream's mapped attributes).
pub(crate) fn check_attribute_names(attrs: &Map<String, Value>) -> Result<(), String> {
    check_attributes(attrs).map_err(|e| e.to_string())
}

/// A username in its normal form ([`crate::names::username`]); unique regardless of case.
fn username(u: &str) -> AdminResult<String> {
    crate::names::username(u).map_err(|m| invalid("username", m))
}

/// Group names in their normal form ([`crate::names::group`]), each once.
pub(crate) fn groups(field: &str, g: &[String]) -> AdminResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for x in g {
        let x = crate::names::group(x).map_err(|m| invalid(field, m))?;
        if !out.contains(&x) {
            out.push(x);
        }
    }
    Ok(out)
}

/// Whether a change of the user from `before` to `after` signs them out everywhere (moves the
/// sign-out epoch on): a new password, a block, joining or leaving the administrators.
fn signs_out(before: &User, after: &User) -> bool {
    before.password_hash != after.password_hash
        || (after.blocked && !before.blocked)
        || admins_change(&before.groups, &after.groups).is_some()
}

/// Whether membership of the administrators' group differs between two group lists.
fn admins_change(before: &[String], after: &[String]) -> Option<Operation> {
    match (in_admin_group(before), in_admin_group(after)) {
        (false, true) => Some(Operation::AddMember),
        (true, false) => Some(Operation::RemoveMember),
        _ => None,
    }
}

/// What `users:self` alone may change of its own user: profile claims.
fn self_service_patch(patch: &UserPatch) -> AdminResult<()> {
    let refuse = |what: String| AdminError::Forbidden {
        need: super::Need::UsersWrite,
        reason: format!("{what} can be changed only with users:write"),
    };
    if let Some(k) = patch.claims.keys().find(|k| !self_editable(k)) {
        return Err(refuse(format!("claims.{k}")));
    }
    if !patch.attributes.is_empty() {
        return Err(refuse("attributes".into()));
    }
    for (set, field) in [
        (patch.username.is_some(), "username"),
        (patch.groups.is_some(), "groups"),
        (patch.blocked.is_some(), "blocked"),
    ] {
        if set {
            return Err(refuse(field.into()));
        }
    }
    Ok(())
}

pub(crate) fn check_password(p: &str) -> AdminResult<()> {
    let n = p.chars().count();
    let (lo, hi) = password::PASSWORD_LENGTH;
    if n < lo || n > hi {
        return Err(invalid("password", format!("must be {lo}-{hi} characters")));
    }
    Ok(())
}

fn merge(into: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            into.remove(k);
        } else {
            into.insert(k.clone(), v.clone());
        }
    }
}

impl Provider {
    /// The stored password hash a spec asks for.
    pub(crate) async fn spec_password_hash(spec: &UserSpec) -> AdminResult<Option<String>> {
        match (&spec.password, &spec.password_hash) {
            (Some(_), Some(_)) => Err(invalid(
                "password",
                "give either password or password_hash, not both",
            )),
            (Some(p), None) => {
                check_password(p)?;
                password::hash_blocking(p.clone())
                    .await
                    .map(Some)
                    .map_err(|e| invalid("password", e))
            }
            (None, Some(h)) => password::stored_form(h)
                .map(Some)
                .map_err(|why| invalid("password_hash", why)),
            (None, None) => Ok(None),
        }
    }

    /// A user record from a spec; `existing` keeps id, hash and creation time. A new password, a
    /// change of administrator membership or a block signs the user out everywhere (the epoch
    /// moves on).
    pub(crate) fn user_from_spec(
        &self,
        spec: &UserSpec,
        existing: Option<&User>,
        password_hash: Option<String>,
    ) -> AdminResult<User> {
        check_claims(&spec.claims)?;
        check_attributes(&spec.attributes)?;
        let now = self.now();
        let mut user = User {
            id: existing.map_or_else(|| b64url(&random_bytes::<16>()), |e| e.id.clone()),
            username: username(&spec.username)?,
            rehashed_from: existing
                .filter(|_| password_hash.is_none())
                .and_then(|e| e.rehashed_from.clone()),
            password_hash: password_hash.or_else(|| existing.and_then(|e| e.password_hash.clone())),
            claims: spec.claims.clone(),
            attributes: spec.attributes.clone(),
            groups: groups("groups", &spec.groups)?,
            blocked: spec.blocked,
            sign_out_epoch: existing.map_or(0, |e| e.sign_out_epoch),
            factors: existing.map(|e| e.factors.clone()).unwrap_or_default(),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
            revision: existing.map_or(0, |e| e.revision),
        };
        if existing.is_some_and(|e| signs_out(e, &user)) {
            user.sign_out_epoch += 1;
        }
        Ok(user)
    }

    /// A user by id or, failing that, by username.
    pub(crate) async fn find_user(&self, id_or_username: &str) -> AdminResult<User> {
        if let Some(u) = self.store.get_user(id_or_username).await? {
            return Ok(u);
        }
        self.store
            .find_user(id_or_username)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user {id_or_username}")))
    }
}

impl Admin<'_> {
    pub async fn users(&self) -> AdminResult<Vec<User>> {
        self.authorize(Operation::ListUsers, TargetKind::Ordinary)?;
        Ok(self.store.list_users().await?)
    }

    /// A user by id or username; the caller's own by its id with `users:self`.
    pub async fn user(&self, id_or_username: &str) -> AdminResult<User> {
        Ok(self.reach(Operation::ReadUser, id_or_username).await?.0)
    }

    /// The consents a user gave, by client (`consents`, or `users:self` for one's own).
    pub async fn user_consents(&self, id_or_username: &str) -> AdminResult<Vec<Consent>> {
        let (u, _) = self
            .reach(Operation::ListUserConsents, id_or_username)
            .await?;
        Ok(self.store.list_consents(&u.id).await?)
    }

    /// Every user's consent for one application, by user.
    pub async fn client_consents(&self, client_id: &str) -> AdminResult<Vec<Consent>> {
        self.authorize(Operation::ListApplicationConsents, TargetKind::Ordinary)?;
        self.provider.get_client(client_id).await?;
        Ok(self.store.client_consents(client_id).await?)
    }

    pub async fn create_user(&self, spec: &UserSpec) -> AdminResult<User> {
        self.authorize(Operation::CreateUser, TargetKind::Ordinary)?;
        let mut user = self.user_from_spec(spec, None, None)?;
        // Judged before the password is hashed, which is the costly part.
        self.authorize(Operation::CreateUser, self.as_other(&user))?;
        user.password_hash = Provider::spec_password_hash(spec).await?;
        self.insert_checked_user(&user, json!({"username": user.username}))
            .await?;
        Ok(user)
    }

    /// Stores a new user once its subjects and username collide with no one's, and audits it
    /// (`detail` says how it came: an administrator, an upstream sign-in).
    pub(crate) async fn insert_checked_user(&self, user: &User, detail: Value) -> AdminResult<()> {
        let one_at_a_time = self.subject_writes.lock().await;
        self.check_subjects(&Written::user(user, true)).await?;
        self.store.insert_user(user).await?;
        drop(one_at_a_time);
        tracing::info!(user_id = %user.id, "user created");
        self.audit_user("user.created", user, detail).await;
        Ok(())
    }

    /// Writes a changed user (at the revision it was read) once its subjects collide with no
    /// one's; `claims_changed` says whether a subject could have moved.
    pub(crate) async fn update_checked_user(
        &self,
        user: &User,
        claims_changed: bool,
    ) -> AdminResult<()> {
        let one_at_a_time = self.subject_writes.lock().await;
        if claims_changed {
            self.check_subjects(&Written::user(user, false)).await?;
        }
        self.store.update_user(user).await?;
        drop(one_at_a_time);
        Ok(())
    }

    /// Changes what `patch` sets; blocking or unblocking alone is audited as `user.blocked` or
    /// `user.unblocked`.
    pub async fn update_user(&self, id_or_username: &str, patch: &UserPatch) -> AdminResult<User> {
        let mut fields: Vec<&str> = Vec::new();
        for (set, name) in [
            (patch.username.is_some(), "username"),
            (!patch.claims.is_empty(), "claims"),
            (!patch.attributes.is_empty(), "attributes"),
            (patch.groups.is_some(), "groups"),
            (patch.blocked.is_some(), "blocked"),
        ] {
            if set {
                fields.push(name);
            }
        }
        let (op, action) = match (fields.as_slice(), patch.blocked) {
            (["blocked"], Some(true)) => (Operation::BlockUser, "user.blocked"),
            (["blocked"], Some(false)) => (Operation::UnblockUser, "user.unblocked"),
            _ => (Operation::ChangeUser, "user.updated"),
        };
        let (u, signed_out) = self
            .settle(|| self.try_update_user(op, id_or_username, patch))
            .await?;
        if patch.blocked == Some(true) {
            tracing::info!(user_id = %u.id, "user blocked");
        }
        self.audit_user(action, &u, json!({ "fields": fields }))
            .await;
        // Blocked, or joining or leaving the administrators: sessions and grants from before do
        // not carry over (a session someone else opened on an account that is now an
        // administrator's; a thief's session, back on unblocking). The epoch moved on in the
        // same write; this revokes their records and tells applications.
        if signed_out {
            self.sign_out_everywhere(&u).await?;
        }
        Ok(u)
    }

    /// The change, and whether it signed the user out everywhere (blocked the user, or made or
    /// unmade an administrator).
    async fn try_update_user(
        &self,
        op: Operation,
        id_or_username: &str,
        patch: &UserPatch,
    ) -> AdminResult<(User, bool)> {
        let (mut u, kind) = self.reach(op, id_or_username).await?;
        if self.self_service_only(op, &u, kind) {
            self_service_patch(patch)?;
            self.check_subject_self_edit(&patch.claims).await?;
        }
        self.precondition(&u)?;
        let renamed = patch.username.as_ref().is_some_and(|n| *n != u.username);
        if let Some(n) = &patch.username {
            u.username = username(n)?;
        }
        merge(&mut u.claims, &patch.claims);
        merge(&mut u.attributes, &patch.attributes);
        check_claims(&u.claims)?;
        check_attributes(&u.attributes)?;
        let before = u.clone();
        if let Some(g) = &patch.groups {
            let g = groups("groups", g)?;
            if let Some(op) = admins_change(&u.groups, &g) {
                self.authorize(op, TargetKind::Protected)?;
            }
            u.groups = g;
        }
        u.blocked = patch.blocked.unwrap_or(u.blocked);
        let sign_out = signs_out(&before, &u);
        if sign_out {
            u.sign_out_epoch += 1;
        }
        u.updated_at = self.now();
        let mut one_at_a_time = None;
        if renamed || !patch.claims.is_empty() || !patch.attributes.is_empty() {
            one_at_a_time = Some(self.subject_writes.lock().await);
            self.check_subjects(&Written::user(&u, renamed)).await?;
        }
        self.store.update_user(&u).await?;
        drop(one_at_a_time);
        u.revision += 1;
        Ok((u, sign_out))
    }

    /// Sets a user's password, then signs them out everywhere (sessions end, grants are revoked).
    /// A user changing their own with `users:self` alone proves the current one first (a stolen
    /// session must not be enough); its failures count toward the account's sign-in throttling.
    pub async fn set_user_password(
        &self,
        id_or_username: &str,
        change: &PasswordChange,
    ) -> AdminResult<()> {
        let (u, kind) = self.reach(Operation::SetPassword, id_or_username).await?;
        check_password(&change.password)?;
        if self.self_service_only(Operation::SetPassword, &u, kind) {
            // A password alone must not change the password of an account with a second factor
            // (and sign its owner out everywhere): the account page asks for the factor first.
            if u.factors.has_second_factor() && !self.caller().proved_second_factor() {
                return Err(AdminError::Conflict(
                    "this account has a second factor: change its password on the account page (/account), which asks for it".into(),
                ));
            }
            let current = change.current_password.as_deref().ok_or_else(|| {
                invalid(
                    "current_password",
                    "is required to change your own password",
                )
            })?;
            self.verify_current_password(&u, current).await?;
        }
        // A stale copy is refused before the hashing is paid for.
        self.precondition(&u)?;
        let hash = &password::hash_blocking(change.password.clone())
            .await
            .map_err(|e| invalid("password", e))?;
        let id = u.id.clone();
        let u = self
            .settle(|| {
                let id = id.clone();
                async move {
                    let (mut u, _) = self.reach(Operation::SetPassword, &id).await?;
                    self.precondition(&u)?;
                    // An imported hash this replaces stays known, so the file that imported it
                    // does not put it back.
                    if let Some(old) = u
                        .password_hash
                        .as_deref()
                        .filter(|h| password::needs_rehash(h))
                    {
                        u.rehashed_from = Some(password::rehash_mark(old));
                    }
                    u.password_hash = Some(hash.clone());
                    u.sign_out_epoch += 1;
                    u.updated_at = self.now();
                    self.store.update_user(&u).await?;
                    Ok(u)
                }
            })
            .await?;
        tracing::info!(user_id = %u.id, "password set");
        self.audit_user("user.password_set", &u, Value::Null).await;
        // Whoever signed in with the old password is signed out, and what they were granted
        // stops (the caller's own token too, when it changed its own password): the epoch
        // moved on in the same write; this revokes their records and tells applications.
        self.sign_out_everywhere(&u).await
    }

    /// The user's current password, checked like a sign-in: throttled per account, each
    /// failure counted.
    async fn verify_current_password(&self, u: &User, current: &str) -> AdminResult<()> {
        let check = self
            .check_own_password(u, current, self.now())
            .await
            .map_err(protocol_error)?;
        match check {
            CredentialCheck::Valid(_) => Ok(()),
            CredentialCheck::Throttled(after) => Err(invalid(
                "current_password",
                format!("too many wrong passwords; retry in {after} s"),
            )),
            CredentialCheck::Invalid => {
                self.audit_user(
                    "user.password_check_failed",
                    u,
                    json!({ "reason": "current_password" }),
                )
                .await;
                Err(invalid("current_password", "does not match"))
            }
        }
    }

    pub async fn delete_user(&self, id_or_username: &str) -> AdminResult<()> {
        let (u, _) = self.reach(Operation::DeleteUser, id_or_username).await?;
        self.precondition(&u)?;
        self.store.delete_user(&u.id).await?;
        tracing::info!(user_id = %u.id, "user deleted");
        self.audit_user("user.deleted", &u, json!({"username": u.username}))
            .await;
        Ok(())
    }

    /// Forgets a user's consent for a client: the application asks again at its next sign-in,
    /// and the grants the consent allowed are revoked (their refresh tokens stop working).
    pub async fn revoke_consent(&self, id_or_username: &str, client_id: &str) -> AdminResult<()> {
        let (u, _) = self.reach(Operation::RevokeConsent, id_or_username).await?;
        self.forget_consent(&u.id, client_id).await
    }

    /// Revokes every user's consent for the application (and the grants they allowed).
    pub async fn revoke_client_consents(&self, client_id: &str) -> AdminResult<()> {
        self.authorize(Operation::RevokeApplicationConsents, TargetKind::Ordinary)?;
        self.provider.get_client(client_id).await?;
        let consents = self.store.client_consents(client_id).await?;
        // Every consent is judged before any is revoked: an administrator's among them needs
        // administrator.
        for consent in &consents {
            if let Some(u) = self.store.get_user(&consent.user_id).await? {
                self.authorize(Operation::RevokeApplicationConsents, self.as_other(&u))?;
            }
        }
        for consent in consents {
            match self.forget_consent(&consent.user_id, client_id).await {
                // Revoked meanwhile by someone else: nothing left to do.
                Ok(()) | Err(AdminError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn forget_consent(&self, user_id: &str, client_id: &str) -> AdminResult<()> {
        if self.store.get_consent(user_id, client_id).await?.is_none() {
            return Err(AdminError::NotFound(format!(
                "consent of user {user_id} for client {client_id}"
            )));
        }
        // The grants first: should the store fail between the two, a retry still finds the
        // consent and revokes what is left.
        self.revoke_grants_of(user_id, Some(client_id)).await?;
        if !self.store.delete_consent(user_id, client_id).await? {
            // Revoked meanwhile by someone else, who recorded it.
            return Ok(());
        }
        let target = format!("user:{user_id}");
        self.audit("consent.revoked", &target, Some(client_id), Value::Null)
            .await;
        Ok(())
    }

    pub(crate) async fn audit_user(&self, action: &str, u: &User, detail: Value) {
        self.audit(action, &format!("user:{}", u.id), None, detail)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn standard_claims_are_typed() {
        let ok = json!({"email": "a@example.com", "email_verified": true,
            "address": {"locality": "Gent", "country": "BE"}});
        assert!(check_claims(ok.as_object().unwrap()).is_ok());
        for bad in [
            json!({"email_verified": "yes"}),
            json!({"favourite_colour": "blue"}),
            json!({"address": {"planet": "Mars"}}),
        ] {
            assert!(check_claims(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}

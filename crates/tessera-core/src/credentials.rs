//! Checking a username and password, for the login page and the password grant alike: argon2id
//! off the async threads, the same cost for unknown users, one answer for every failure, and
//! failures counted per account and per address ([`crate::throttle`]; the window and limits are
//! `settings.throttle`).

use serde_json::json;

use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::User;
use crate::password;
use crate::provider::Provider;
use crate::usage;

/// The outcome of a credential check.
#[derive(Debug)]
pub(crate) enum CredentialCheck {
    Valid(Box<User>),
    /// Wrong username, wrong password, no password set, or a blocked user: never told apart.
    Invalid,
    /// Too many failures: retry after this many seconds.
    Throttled(i64),
}

/// The throttling key of an account's failed sign-ins, whatever the username's case.
pub(crate) fn account_key(username: &str) -> String {
    format!("login:account:{}", username.to_lowercase())
}

/// The throttling key of an account's failed second factors: a correct password does not clear
/// it (else knowing the password would reset the count of wrong codes), a correct factor does.
pub(crate) fn factor_key(username: &str) -> String {
    format!("login:factor:{}", username.to_lowercase())
}

/// The throttling key of an address's failed sign-ins.
pub(crate) fn address_key(address: &str) -> String {
    format!("login:address:{address}")
}

/// Who a sign-in event is by and about: the address acts (a failure is not the named user's
/// doing); the target is the user when the username names one, otherwise the username as typed.
fn sign_in_parties(address: &str, username: &str, user: Option<&User>) -> (Actor, String) {
    let actor = Actor(format!("address:{address}"));
    match user {
        Some(u) => (actor, format!("user:{}", u.id)),
        None => {
            let typed: String = username.chars().take(256).collect();
            (actor, format!("username:{typed}"))
        }
    }
}

impl Provider {
    pub(crate) async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        address: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<CredentialCheck> {
        let t = &self.settings.throttle;
        let username = username.trim();
        let account_key = account_key(username);
        let address_key = address_key(address);
        let limits = [
            (account_key.as_str(), t.per_account),
            (address_key.as_str(), t.per_address),
        ];
        // The counters are read once this check has a place, not before it queues: every failure
        // counted while it waited counts against it. The place is kept until this check's own
        // failure is counted, so at most the limit plus the places are ever judged.
        let place = password::place()
            .await
            .ok_or_else(|| Error::unavailable("password hashing is shut down"))?;
        let tally = self.tally(&limits, now).await?;
        if let Some(retry_after) = tally.retry_after {
            tracing::warn!(address, "sign-in throttled");
            // The hashing place goes back before the audit write.
            drop(place);
            // Once per paused key and window: retrying while paused adds nothing to the log.
            let news = tally
                .paused
                .as_ref()
                .is_some_and(|(key, until)| self.throttle_notes.first(key, *until, now));
            if news {
                let (actor, target) = sign_in_parties(address, username, None);
                let detail = json!({"address": address, "retry_after": retry_after});
                self.record(
                    &actor,
                    "sign_in.throttled",
                    &target,
                    Some(client_id),
                    detail,
                )
                .await;
            }
            return Ok(CredentialCheck::Throttled(retry_after));
        }
        let user = if username.is_empty() || username.len() > 256 {
            None
        } else {
            self.store.find_user(username).await?
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = password::verify_blocking(&place, hash, password.to_owned())
            .await
            .ok_or_else(|| Error::unavailable("no password hashing thread answered"))?;
        let checked = match user {
            Some(u) if ok && !u.blocked => {
                // A success clears the account's failures (not the address's); none, no write.
                if tally.counts.first().is_some_and(|&n| n > 0) {
                    self.store.clear_failures(&account_key).await?;
                }
                let (actor, target) = (Actor::user(&u.id), format!("user:{}", u.id));
                let detail = json!({"address": address});
                self.record(
                    &actor,
                    "sign_in.succeeded",
                    &target,
                    Some(client_id),
                    detail,
                )
                .await;
                let u = self.rehash(u, password).await;
                self.usage
                    .count(usage::SIGN_IN_SUCCEEDED, Some(client_id), now);
                Ok(CredentialCheck::Valid(Box::new(u)))
            }
            other => {
                let blocked = other.as_ref().is_some_and(|u| u.blocked && ok);
                if let Some(u) = other.as_ref().filter(|_| blocked) {
                    tracing::info!(user_id = %u.id, "blocked user refused");
                }
                self.count_failures(&[&account_key, &address_key], now)
                    .await?;
                let (actor, target) = sign_in_parties(address, username, other.as_ref());
                let reason = if blocked {
                    "blocked"
                } else {
                    "invalid_credentials"
                };
                let detail = json!({"address": address, "reason": reason});
                self.record(&actor, "sign_in.failed", &target, Some(client_id), detail)
                    .await;
                self.usage
                    .count(usage::SIGN_IN_FAILED, Some(client_id), now);
                Ok(CredentialCheck::Invalid)
            }
        };
        drop(place);
        checked
    }

    /// After a successful sign-in: an imported hash, or argon2 at another cost, is replaced by
    /// argon2id at Tessera's cost ([`password::needs_rehash`]), remembering which hash it replaced
    /// ([`User::rehashed_from`]). The write lands only on the record as it was read, so a password
    /// set meanwhile stays; a failure is logged, never the sign-in's.
    async fn rehash(&self, mut user: User, password: &str) -> User {
        let Some(old) = user
            .password_hash
            .clone()
            .filter(|h| password::needs_rehash(h))
        else {
            return user;
        };
        let hash = match password::hash_blocking(password.to_owned()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(user_id = %user.id, error = %e, "cannot rehash a password");
                return user;
            }
        };
        let before = user.clone();
        user.password_hash = Some(hash);
        user.rehashed_from = Some(password::rehash_mark(&old));
        match self.store.update_user(&user).await {
            Ok(()) => {
                user.revision += 1;
                tracing::info!(user_id = %user.id, "imported password hash replaced with argon2id");
                let detail = json!({"from": password::scheme_of(&old)});
                self.record(
                    &Actor::user(&user.id),
                    "user.password_rehashed",
                    &format!("user:{}", user.id),
                    None,
                    detail,
                )
                .await;
                user
            }
            Err(e) => {
                tracing::warn!(user_id = %user.id, error = %e, "password rehash not written");
                before
            }
        }
    }

    /// A signed-in user's password proved again (to change it): throttled and counted against
    /// the account as a sign-in is, in the same order (a hashing place first, then the
    /// counters); a success clears the account's failures. `Invalid` and `Throttled` only.
    pub(crate) async fn check_own_password(
        &self,
        user: &User,
        password: &str,
        now: Timestamp,
    ) -> Result<CredentialCheck> {
        let key = account_key(&user.username);
        let place = password::place()
            .await
            .ok_or_else(|| Error::unavailable("password hashing is shut down"))?;
        let tally = self
            .tally(&[(key.as_str(), self.settings.throttle.per_account)], now)
            .await?;
        if let Some(retry_after) = tally.retry_after {
            return Ok(CredentialCheck::Throttled(retry_after));
        }
        let ok = password::verify_blocking(&place, user.password_hash.clone(), password.to_owned())
            .await
            .ok_or_else(|| Error::unavailable("no password hashing thread answered"))?;
        let checked = if ok {
            if tally.counts.first().is_some_and(|&n| n > 0) {
                self.store.clear_failures(&key).await?;
            }
            CredentialCheck::Valid(Box::new(user.clone()))
        } else {
            self.count_failures(&[&key], now).await?;
            CredentialCheck::Invalid
        };
        drop(place);
        Ok(checked)
    }
}

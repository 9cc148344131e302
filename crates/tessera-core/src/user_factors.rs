//! Writing a user's factors, the one way for the sign-in steps and the account page: every
//! change reads the user, judges, and writes on the revision it read (again on a concurrent
//! write, so a single-use answer is accepted once); a new authenticator app or passkey is
//! added only once verified, and the first second factor comes with recovery codes.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::factor::webauthn::NewCredential;
use crate::factor::{recovery, PasskeyFactor, RecoveryCodes, TotpFactor};
use crate::model::User;
use crate::provider::Provider;
use crate::secret::b64url;
use crate::store::StoreError;

/// Why a factor could not be added: the user has it already.
pub(crate) const ALREADY_ENROLLED: &str = "already_enrolled";
pub(crate) const ALREADY_REGISTERED: &str = "already_registered";

/// The store's encryption context of a user's TOTP secret.
pub(crate) fn totp_context(user_id: &str) -> String {
    format!("totp\0{user_id}")
}

/// A passkey's name: trimmed, without control characters, at most 64 characters; "Passkey"
/// when nothing is left.
pub(crate) fn passkey_name(name: &str) -> String {
    let clean: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if clean.is_empty() {
        "Passkey".into()
    } else {
        clean
    }
}

impl Provider {
    /// Changes the user `user_id` with `change` on the revision read, reading and judging again
    /// when another write came first. `missing` is the refusal when there is no such user.
    pub(crate) async fn change_user<T, R>(
        &self,
        user_id: &str,
        now: Timestamp,
        missing: impl Fn() -> R,
        mut change: impl FnMut(&mut User) -> std::result::Result<T, R>,
    ) -> Result<std::result::Result<(User, T), R>> {
        for _ in 0..5 {
            let Some(mut user) = self.store.get_user(user_id).await? else {
                return Ok(Err(missing()));
            };
            let out = match change(&mut user) {
                Ok(out) => out,
                Err(r) => return Ok(Err(r)),
            };
            user.updated_at = now;
            match self.store.update_user(&user).await {
                Ok(()) => {
                    user.revision += 1;
                    return Ok(Ok((user, out)));
                }
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::unavailable(
            "the account is changing too often; try again",
        ))
    }

    /// New recovery codes for `u` when it has none: the codes, to show once.
    fn first_codes(&self, u: &mut User, now: Timestamp) -> Option<Vec<String>> {
        if u.factors.recovery.is_some() {
            return None;
        }
        Some(self.new_codes(u, now))
    }

    /// A new set of recovery codes for `u`, replacing any: the codes, to show once.
    pub(crate) fn new_codes(&self, u: &mut User, now: Timestamp) -> Vec<String> {
        let (codes, digests) = recovery::generate(&self.master, &u.id);
        u.factors.recovery = Some(RecoveryCodes {
            digests,
            created_at: now,
        });
        codes
    }

    /// Adds the authenticator app whose secret a code of `step` just verified; returns the first
    /// recovery codes when the user had none.
    pub(crate) fn add_totp(
        &self,
        u: &mut User,
        secret: &[u8],
        step: i64,
        now: Timestamp,
    ) -> std::result::Result<Option<Vec<String>>, &'static str> {
        if u.factors.totp.is_some() {
            return Err(ALREADY_ENROLLED);
        }
        u.factors.totp = Some(TotpFactor {
            secret_ciphertext: self.master.encrypt(&totp_context(&u.id), secret),
            last_step: step,
            created_at: now,
            last_used_at: Some(now),
        });
        u.factors.enrolment_required = false;
        Ok(self.first_codes(u, now))
    }

    /// Adds the passkey a registration just verified; returns the first recovery codes when the
    /// user had none.
    pub(crate) fn add_passkey(
        &self,
        u: &mut User,
        cred: &NewCredential,
        name: &str,
        now: Timestamp,
    ) -> std::result::Result<Option<Vec<String>>, &'static str> {
        let id = b64url(&cred.id);
        if u.factors.passkeys.iter().any(|p| p.id == id) {
            return Err(ALREADY_REGISTERED);
        }
        u.factors.passkeys.push(PasskeyFactor {
            id,
            name: passkey_name(name),
            public_key: b64url(&cred.public_key),
            alg: cred.alg,
            sign_count: cred.sign_count,
            backup_eligible: cred.backup_eligible,
            created_at: now,
            last_used_at: Some(now),
        });
        u.factors.enrolment_required = false;
        Ok(self.first_codes(u, now))
    }
}

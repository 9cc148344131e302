//! The self-service account page's use-cases (`/account`): a signed-in user sees and manages
//! their own factors, recovery codes, password, sessions and consents. The user acts as a caller
//! holding `users:self` on their own account, so the permission model decides as it does for
//! the admin API for sessions, consents and the password (which also needs the current one).
//! Changing how one signs in (a factor added or removed, new recovery codes, the password) is
//! ruled here, on the user's own record: it needs a recent sign-in that proved a second factor
//! when the user holds one, so a session left open, or a password alone, is not enough.

use serde_json::json;

use crate::admin::{AdminError, Caller, PasswordChange, SessionView};
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::factor::webauthn;
use crate::factor::{recovery, totp, FactorView};
use crate::model::{Consent, User};
use crate::provider::Provider;
use crate::secret::{b64url, b64url_decode, random_bytes};
use crate::session::Session;
use crate::store::StoreError;

pub use crate::factor::RECENT;
/// How long a factor being set up on the account page waits for its confirmation, in seconds.
const PENDING_TTL: i64 = 900;

/// What the account page shows.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub username: String,
    pub factors: Vec<FactorView>,
    pub sessions: Vec<SessionView>,
    pub consents: Vec<Consent>,
    /// The sign-in is recent enough to change factors.
    pub recent: bool,
    pub has_password: bool,
    /// An authenticator app or a passkey (recovery codes stand in for one).
    pub has_second_factor: bool,
    pub has_totp: bool,
    /// The upstream identities linked to the account.
    pub identities: Vec<crate::federation::LinkedIdentity>,
    /// CIBA requests of applications waiting for the user's decision.
    pub backchannel: Vec<crate::ciba::PendingBackchannel>,
    /// Enabled identity providers the user may link (those not linked yet).
    pub linkable: Vec<crate::authorize::IdpButton>,
}

/// A factor being set up: what the page shows and the sealed state its form posts back.
#[derive(Debug, Clone)]
pub struct PendingFactor {
    /// Sealed (encrypted, bound to the user and the session, expiring): posted back as is.
    pub state: String,
    pub totp: Option<crate::authorize::TotpSetup>,
    pub passkey: Option<crate::authorize::PasskeyCreation>,
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The sign-in is older than [`RECENT`]: sign in again first.
    #[error("sign in again to change how you sign in")]
    NotRecent,
    /// A wrong code, or a passkey that did not verify: one message for all.
    #[error("That did not work. Check the code or try again.")]
    Wrong(&'static str),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl From<crate::error::Error> for AccountError {
    fn from(e: crate::error::Error) -> Self {
        AccountError::Admin(AdminError::Store(StoreError::Other(Box::new(e))))
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Admin(e.into())
    }
}

type AccountResult<T> = Result<T, AccountError>;

fn sealed_context(s: &Session) -> String {
    format!("account-pending\0{}\0{}", s.user.id, s.record.sid)
}

impl Provider {
    /// A recent sign-in: a second factor (an app code, a passkey or a recovery code) proved within
    /// [`RECENT`] when the user holds one, any factor when they do not.
    fn recent(&self, s: &Session, now: Timestamp) -> bool {
        let fresh = |u: &crate::factor::FactorUse| now.0 - u.at.0 < RECENT;
        let uses = s.record.uses();
        if s.user.factors.has_second_factor() {
            uses.iter().any(|u| fresh(u) && u.proof.is_second())
        } else {
            uses.iter().any(fresh)
        }
    }

    /// What the account page shows of the session's user.
    pub async fn account(&self, s: &Session) -> AccountResult<AccountView> {
        let admin = self.admin(Caller::account(&s.user.id, self.recent(s, self.now())));
        let identities = admin.identities(&s.user.id).await?;
        Ok(AccountView {
            username: s.user.username.clone(),
            factors: s.user.factors.views(),
            sessions: admin.user_sessions(&s.user.id).await?,
            consents: admin.user_consents(&s.user.id).await?,
            recent: self.recent(s, self.now()),
            has_password: s.user.password_hash.is_some(),
            has_second_factor: s.user.factors.has_second_factor(),
            has_totp: s.user.factors.totp.is_some(),
            identities: identities.clone(),
            backchannel: self.pending_backchannel(&s.user.id).await?,
            linkable: self
                .account_idps()
                .into_iter()
                .filter(|i| !identities.iter().any(|l| l.idp == i.name))
                .map(|i| crate::authorize::IdpButton {
                    label: i.label().to_owned(),
                    name: i.name,
                })
                .collect(),
        })
    }

    /// Starts linking an identity at `idp` (after a recent sign-in): where the browser goes, or
    /// a message when the provider cannot be used right now. An identity linked to an
    /// administrator opens the Admin Portal to whoever holds it, so an administrator links one
    /// only in a recent sign-in the Portal's own scheme accepts.
    pub async fn account_link(
        &self,
        s: &Session,
        idp: &str,
    ) -> AccountResult<std::result::Result<String, String>> {
        let now = self.now();
        if !self.recent(s, now) {
            return Err(AccountError::NotRecent);
        }
        let idp = self
            .account_idps()
            .into_iter()
            .find(|i| i.name == idp)
            .ok_or_else(|| AdminError::NotFound(format!("identity provider {idp}")))?;
        if crate::admin::is_administrator(&s.user) {
            let portal = self
                .store
                .get_client(crate::admin::PORTAL_CLIENT)
                .await?
                .map(|c| self.scheme_of(&c))
                .unwrap_or_else(crate::scheme::AuthScheme::password);
            let since = Timestamp(now.0 - RECENT);
            if !portal.satisfied_by(&s.record.uses(), now, Some(since)) {
                return Err(AccountError::Admin(AdminError::Conflict(
                    "an administrator links an identity only after signing in as the Admin Portal asks: sign in to the Admin Portal, then come back".into(),
                )));
            }
        }
        Ok(self
            .start_link(&s.user.id, &s.record.sid, &idp, now)
            .await?)
    }

    /// Unlinks one of the user's identities (after a recent sign-in).
    pub async fn account_unlink(&self, s: &Session, idp: &str, subject: &str) -> AccountResult<()> {
        if !self.recent(s, self.now()) {
            return Err(AccountError::NotRecent);
        }
        self.admin(Caller::account(&s.user.id, true))
            .unlink_identity(&s.user.id, idp, subject)
            .await?;
        Ok(())
    }

    /// Changes the password: the current one is proved first (and counted as a sign-in is).
    pub async fn account_password(
        &self,
        s: &Session,
        current: &str,
        new: &str,
    ) -> AccountResult<()> {
        if !self.recent(s, self.now()) {
            return Err(AccountError::NotRecent);
        }
        let change = PasswordChange {
            password: new.to_owned(),
            current_password: Some(current.to_owned()),
        };
        self.admin(Caller::account(&s.user.id, self.recent(s, self.now())))
            .set_user_password(&s.user.id, &change)
            .await?;
        Ok(())
    }

    /// CIBA: approves or denies one of the user's backchannel requests (approving, after a recent
    /// sign-in, as other account changes).
    pub async fn account_decide_backchannel(
        &self,
        s: &Session,
        id: &str,
        approve: bool,
    ) -> AccountResult<()> {
        let recent = self.recent(s, self.now());
        if approve && !recent {
            return Err(AccountError::NotRecent);
        }
        self.decide_backchannel(s, id, approve, recent)
            .await
            .map_err(|e| {
                AccountError::Admin(AdminError::Invalid {
                    field: "request".into(),
                    message: e.description.into_owned(),
                })
            })
    }

    /// Revokes the consent given to `client_id`.
    pub async fn account_revoke_consent(&self, s: &Session, client_id: &str) -> AccountResult<()> {
        self.admin(Caller::account(&s.user.id, self.recent(s, self.now())))
            .revoke_consent(&s.user.id, client_id)
            .await?;
        Ok(())
    }

    /// Starts setting up an authenticator app or a passkey: nothing is stored until confirmed.
    pub fn account_pending(&self, s: &Session, passkey: bool) -> AccountResult<PendingFactor> {
        let now = self.now();
        if !self.recent(s, now) {
            return Err(AccountError::NotRecent);
        }
        if passkey && !self.passkeys_available() {
            return Err(AccountError::Admin(AdminError::Conflict(
                "passkeys need an issuer whose host is a domain name (localhost will do), not an IP address".into(),
            )));
        }
        let secret = random_bytes::<{ totp::SECRET_LEN }>();
        let payload = json!({
            "until": now.0 + PENDING_TTL,
            "kind": if passkey { "passkey" } else { "totp" },
            "secret": b64url(&secret),
            "challenge": b64url(&random_bytes::<32>()),
        });
        let state = self
            .master
            .encrypt(&sealed_context(s), payload.to_string().as_bytes());
        self.account_reopen(s, &state)
    }

    /// The factor being set up that `state` seals, shown again (after a wrong code).
    pub fn account_reopen(&self, s: &Session, state: &str) -> AccountResult<PendingFactor> {
        let v = self.open_pending(s, state, None)?;
        let passkey = v["kind"] == "passkey";
        let secret = v["secret"]
            .as_str()
            .and_then(b64url_decode)
            .ok_or(AccountError::Wrong("pending_state"))?;
        let challenge = v["challenge"].as_str().unwrap_or_default();
        let label = self.relying_party().id;
        Ok(PendingFactor {
            state: state.to_owned(),
            totp: (!passkey).then(|| crate::authorize::TotpSetup {
                secret: totp::base32(&secret),
                uri: totp::uri(&label, &s.user.username, &secret),
            }),
            passkey: passkey.then(|| self.passkey_creation(challenge, &s.user)),
        })
    }

    fn open_pending(
        &self,
        s: &Session,
        state: &str,
        kind: Option<&str>,
    ) -> AccountResult<serde_json::Value> {
        let plain = self
            .master
            .decrypt(&sealed_context(s), state)
            .map_err(|_| AccountError::Wrong("pending_state"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&plain).map_err(|_| AccountError::Wrong("pending_state"))?;
        let fresh = v["until"].as_i64().is_some_and(|u| u > self.now().0);
        if !fresh || kind.is_some_and(|k| v["kind"] != k) {
            return Err(AccountError::Wrong("pending_expired"));
        }
        Ok(v)
    }

    /// Confirms the authenticator app with its first code; returns new recovery codes when the
    /// user had none (shown once).
    pub async fn account_confirm_totp(
        &self,
        s: &Session,
        state: &str,
        code: &str,
    ) -> AccountResult<Option<Vec<String>>> {
        let now = self.now();
        if !self.recent(s, now) {
            return Err(AccountError::NotRecent);
        }
        let v = self.open_pending(s, state, Some("totp"))?;
        let secret = v["secret"]
            .as_str()
            .and_then(b64url_decode)
            .ok_or(AccountError::Wrong("pending_state"))?;
        let Some(step) = totp::verify(&secret, code, now, 0) else {
            self.account_failed(s, "totp", "wrong_code").await;
            return Err(AccountError::Wrong("wrong_code"));
        };
        self.change_own(s, "factor.enrolled", json!({"factor": "totp"}), |u| {
            self.add_totp(u, &secret, step, now).map_err(|_| {
                AccountError::Admin(AdminError::Conflict(
                    "you already have an authenticator app; remove it first to set up another"
                        .into(),
                ))
            })
        })
        .await
    }

    /// Registers a passkey from its WebAuthn registration; returns new recovery codes when the
    /// user had none.
    pub async fn account_add_passkey(
        &self,
        s: &Session,
        state: &str,
        client_data_json: &str,
        attestation_object: &str,
        name: &str,
    ) -> AccountResult<Option<Vec<String>>> {
        let now = self.now();
        if !self.recent(s, now) {
            return Err(AccountError::NotRecent);
        }
        let v = self.open_pending(s, state, Some("passkey"))?;
        let challenge = v["challenge"]
            .as_str()
            .and_then(b64url_decode)
            .ok_or(AccountError::Wrong("pending_state"))?;
        let (Some(cd), Some(att)) = (
            b64url_decode(client_data_json),
            b64url_decode(attestation_object),
        ) else {
            return Err(AccountError::Wrong("client_data"));
        };
        let cred = match webauthn::verify_registration(&self.relying_party(), &challenge, &cd, &att)
        {
            Ok(c) => c,
            Err(e) => {
                self.account_failed(s, "passkey", e.reason()).await;
                return Err(AccountError::Wrong(e.reason()));
            }
        };
        let id = b64url(&cred.id);
        self.change_own(
            s,
            "factor.enrolled",
            json!({"factor": "passkey", "credential": id}),
            |u| {
                self.add_passkey(u, &cred, name, now)
                    .map_err(AccountError::Wrong)
            },
        )
        .await
    }

    /// Removes one of one's own factors (removing the last second factor removes the recovery
    /// codes too), and signs the user out everywhere, this browser included: a session that
    /// proved the factor must not outlive it.
    pub async fn account_remove_factor(&self, s: &Session, factor_id: &str) -> AccountResult<()> {
        if !self.recent(s, self.now()) {
            return Err(AccountError::NotRecent);
        }
        let u = self
            .change_own(s, "factor.removed", json!({"factor": factor_id}), |u| {
                if u.factors.remove(factor_id) {
                    u.sign_out_epoch += 1;
                    Ok(u.clone())
                } else {
                    Err(AccountError::Admin(AdminError::NotFound(format!(
                        "factor {factor_id}"
                    ))))
                }
            })
            .await?;
        self.admin(Caller::system()).sign_out_everywhere(&u).await?;
        Ok(())
    }

    /// New recovery codes, replacing the old ones (shown once), and the user signed out
    /// everywhere: a session that used an old code must not outlive it.
    pub async fn account_new_codes(&self, s: &Session) -> AccountResult<Vec<String>> {
        let now = self.now();
        if !self.recent(s, now) {
            return Err(AccountError::NotRecent);
        }
        let (codes, u) = self
            .change_own(
                s,
                "recovery_codes.generated",
                json!({"count": recovery::COUNT}),
                |u| {
                    if !u.factors.has_second_factor() {
                        return Err(AccountError::Admin(AdminError::Conflict(
                            "recovery codes stand in for a second factor; set one up first".into(),
                        )));
                    }
                    u.sign_out_epoch += 1;
                    Ok((self.new_codes(u, now), u.clone()))
                },
            )
            .await?;
        self.admin(Caller::system()).sign_out_everywhere(&u).await?;
        Ok(codes)
    }

    /// Changes the session's user with `change` on the revision read (again on a concurrent
    /// write), and audits `action` as the user's.
    async fn change_own<T>(
        &self,
        s: &Session,
        action: &str,
        detail: serde_json::Value,
        change: impl FnMut(&mut User) -> AccountResult<T>,
    ) -> AccountResult<T> {
        let missing = || AccountError::Admin(AdminError::NotFound("user".into()));
        let (u, out) = self
            .change_user(&s.user.id, self.now(), missing, change)
            .await??;
        let target = format!("user:{}", u.id);
        self.record(&Actor::user(&u.id), action, &target, None, detail)
            .await;
        Ok(out)
    }

    async fn account_failed(&self, s: &Session, factor: &str, reason: &str) {
        let target = format!("user:{}", s.user.id);
        let detail = json!({"factor": factor, "reason": reason, "where": "account"});
        self.record(
            &Actor::user(&s.user.id),
            "factor.enrolment_failed",
            &target,
            None,
            detail,
        )
        .await;
    }
}

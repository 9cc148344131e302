//! The factors a user can hold besides a password (TOTP, passkeys, recovery codes), how each is
//! stored on the user, and the record of a factor used in a sign-in (RFC 8176 `amr` values).
//! [`totp`], [`webauthn`] and [`recovery`] own the checks; [`crate::authorize`] the sign-in steps.

pub mod recovery;
pub mod soft_authenticator;
pub mod totp;
pub mod webauthn;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How recently a second factor must have been proved for a change of how one signs in (a
/// factor added, removed, new recovery codes, a new password), in seconds.
pub const RECENT: i64 = 600;

/// Whether `uses` hold a second factor (an app code, a passkey, a recovery code) proved within
/// [`RECENT`] of `now`.
pub fn second_factor_recent(uses: &[FactorUse], now: crate::clock::Timestamp) -> bool {
    uses.iter()
        .any(|u| u.proof.is_second() && now.0 - u.at.0 < RECENT)
}

/// A way of proving who one is, as an authentication scheme names it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Password,
    Totp,
    Passkey,
    /// A sign-in at one of the scheme's upstream identity providers (a first factor).
    Upstream,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Password,
        Method::Totp,
        Method::Passkey,
        Method::Upstream,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Totp => "totp",
            Method::Passkey => "passkey",
            Method::Upstream => "upstream",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What a sign-in step proved: a method, or a recovery code standing in for a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    Password,
    Totp,
    Passkey,
    Recovery,
    Upstream,
}

impl Proof {
    /// A second factor (an app code, a passkey, a recovery code), not a first one (a password,
    /// an upstream sign-in).
    pub fn is_second(self) -> bool {
        matches!(self, Proof::Totp | Proof::Passkey | Proof::Recovery)
    }
}

/// A factor proved in a session, and when (a scheme counts it for a while only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorUse {
    pub proof: Proof,
    pub at: Timestamp,
    /// RFC 8176 values this use adds: `pwd`; `otp`; `hwk` or `swk`, with `user` and `pin`;
    /// `fed` and what an upstream's values map to.
    pub amr: Vec<String>,
    /// A sign-in at an upstream: where, and what its logout needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamProof>,
}

/// The upstream sign-in a [`FactorUse`] records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamProof {
    /// The identity provider's name.
    pub idp: String,
    /// The user's subject there.
    pub subject: String,
    /// The upstream's session id (`sid`), for its back-channel logout.
    #[serde(default)]
    pub sid: Option<String>,
    /// The upstream's ID token: the `id_token_hint` of a logout there.
    #[serde(default)]
    pub id_token: Option<String>,
    /// SAML: the NameID's format, which a LogoutRequest names again.
    #[serde(default)]
    pub name_id_format: Option<String>,
}

impl FactorUse {
    pub fn password(at: Timestamp) -> FactorUse {
        FactorUse {
            proof: Proof::Password,
            at,
            amr: vec!["pwd".into()],
            upstream: None,
        }
    }

    pub fn totp(at: Timestamp) -> FactorUse {
        FactorUse {
            proof: Proof::Totp,
            at,
            amr: vec!["otp".into()],
            upstream: None,
        }
    }

    /// A recovery code is a one-time password (RFC 8176 `otp`).
    pub fn recovery(at: Timestamp) -> FactorUse {
        FactorUse {
            proof: Proof::Recovery,
            at,
            amr: vec!["otp".into()],
            upstream: None,
        }
    }

    /// RFC 8176: a key that may be synced to other devices is software-secured (`swk`), one that
    /// may not is hardware-secured (`hwk`); the authenticator saw the user (`user`) and, when it
    /// verified them, by a PIN or alike (`pin`).
    pub fn passkey(at: Timestamp, backup_eligible: bool, user_verified: bool) -> FactorUse {
        let mut amr = vec![if backup_eligible { "swk" } else { "hwk" }.to_owned()];
        amr.push("user".into());
        if user_verified {
            amr.push("pin".into());
        }
        FactorUse {
            proof: Proof::Passkey,
            at,
            amr,
            upstream: None,
        }
    }

    /// A sign-in at an upstream identity provider, with the RFC 8176 values it maps to.
    pub fn upstream(at: Timestamp, amr: Vec<String>, proof: UpstreamProof) -> FactorUse {
        FactorUse {
            proof: Proof::Upstream,
            at,
            amr,
            upstream: Some(proof),
        }
    }

    /// Whether this use proves `method` (a recovery code proves a second factor, never a first).
    pub fn proves(&self, method: Method, as_second: bool) -> bool {
        match (self.proof, method) {
            (Proof::Password, Method::Password)
            | (Proof::Totp, Method::Totp)
            | (Proof::Passkey, Method::Passkey)
            | (Proof::Upstream, Method::Upstream) => true,
            (Proof::Recovery, Method::Totp | Method::Passkey) => as_second,
            _ => false,
        }
    }
}

/// A TOTP authenticator, once confirmed by a first code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpFactor {
    /// AES-256-GCM ciphertext of the shared secret (bound to the user id), never the secret.
    pub secret_ciphertext: String,
    /// The last step a code was accepted for: no code of it or before counts again.
    pub last_step: i64,
    pub created_at: Timestamp,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
}

/// A registered WebAuthn credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyFactor {
    /// The credential id, base64url.
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// The COSE_Key, base64url.
    pub public_key: String,
    pub alg: i64,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub created_at: Timestamp,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
}

/// The digests of the recovery codes not used yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    pub digests: Vec<String>,
    pub created_at: Timestamp,
}

/// Everything a user holds besides a password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Factors {
    pub totp: Option<TotpFactor>,
    pub passkeys: Vec<PasskeyFactor>,
    pub recovery: Option<RecoveryCodes>,
    /// An administrator asked the user to set up a second factor at their next sign-in.
    pub enrolment_required: bool,
}

impl Factors {
    pub fn is_empty(&self) -> bool {
        *self == Factors::default()
    }

    /// Whether the user can prove `method` with what they hold (the password is checked apart).
    pub fn holds(&self, method: Method) -> bool {
        match method {
            Method::Password => true,
            Method::Totp => self.totp.is_some(),
            Method::Passkey => !self.passkeys.is_empty(),
            // Whether the user has an identity there is known only once they sign in at it.
            Method::Upstream => true,
        }
    }

    /// A second factor: TOTP or a passkey.
    pub fn has_second_factor(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }

    /// Unused recovery codes.
    pub fn recovery_left(&self) -> usize {
        self.recovery.as_ref().map_or(0, |r| r.digests.len())
    }
}

/// One factor as an administrator or the user sees it: never a secret or a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FactorView {
    /// `totp`, `recovery_codes`, or `passkey:{credential id}`: what removing it names.
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    /// Recovery codes: how many are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<usize>,
}

/// The id of a passkey's factor.
pub fn passkey_factor_id(credential_id: &str) -> String {
    format!("passkey:{credential_id}")
}

impl Factors {
    pub fn views(&self) -> Vec<FactorView> {
        let mut out = Vec::new();
        if let Some(t) = &self.totp {
            out.push(FactorView {
                id: "totp".into(),
                kind: "totp",
                name: "Authenticator app".into(),
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                remaining: None,
            });
        }
        for p in &self.passkeys {
            out.push(FactorView {
                id: passkey_factor_id(&p.id),
                kind: "passkey",
                name: p.name.clone(),
                created_at: p.created_at,
                last_used_at: p.last_used_at,
                remaining: None,
            });
        }
        if let Some(r) = &self.recovery {
            out.push(FactorView {
                id: "recovery_codes".into(),
                kind: "recovery_codes",
                name: "Recovery codes".into(),
                created_at: r.created_at,
                last_used_at: None,
                remaining: Some(r.digests.len()),
            });
        }
        out
    }

    /// Removes the factor `id` names; false when there is none. Removing the last second factor
    /// removes the recovery codes with it (they stand in for a second factor only).
    pub fn remove(&mut self, id: &str) -> bool {
        let removed = match id {
            "totp" => self.totp.take().is_some(),
            "recovery_codes" => self.recovery.take().is_some(),
            _ => match id.strip_prefix("passkey:") {
                Some(cid) => {
                    let before = self.passkeys.len();
                    self.passkeys.retain(|p| p.id != cid);
                    self.passkeys.len() != before
                }
                None => false,
            },
        };
        if removed && !self.has_second_factor() {
            self.recovery = None;
        }
        removed
    }
}

#[cfg(test)]
mod tests;

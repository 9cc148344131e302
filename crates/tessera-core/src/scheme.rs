//! Authentication schemes (seeds 001/002 "Authentication Scheme: … how the user can
//! authenticate"): the methods that satisfy an application's sign-in, the `acr` that yields, how
//! long a proved factor counts; and the judging of a session's factors against them (OIDC Core
//! §3.1.2.1 `acr_values` and `max_age`, RFC 8176 `amr`).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::factor::{FactorUse, Factors, Method, Proof};

pub use crate::model::DEFAULT_SCHEME;

/// The name of the account page's own requirement ([`AuthScheme::second_factor`]), reserved.
pub const SECOND_FACTOR: &str = "second-factor";

/// The `acr` of the built-in scheme, a password: no assurance level beyond the default.
pub const ACR_PASSWORD: &str = "0";

/// A named way of signing in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuthScheme {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// The alternatives that satisfy it, each a set of methods proved together:
    /// `[["password","totp"],["password","passkey"],["passkey"]]`.
    pub methods: Vec<Vec<Method>>,
    /// The `acr` value a session satisfying it reaches (OIDC Core §2).
    pub acr: String,
    /// Seconds a proved factor counts for in the SSO session; none: as long as the session.
    #[serde(default)]
    pub factor_lifetime: Option<i64>,
    /// A user who lacks a factor it needs may set one up while signing in.
    #[serde(default)]
    pub enrolment: bool,
    /// The upstream identity providers whose sign-in is the `upstream` method, by name.
    #[serde(default)]
    pub identity_providers: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl AuthScheme {
    /// The built-in default: a password.
    pub fn password() -> AuthScheme {
        AuthScheme {
            name: DEFAULT_SCHEME.into(),
            display_name: "Password".into(),
            description: "A username and password".into(),
            methods: vec![vec![Method::Password]],
            acr: ACR_PASSWORD.into(),
            factor_lifetime: None,
            enrolment: false,
            identity_providers: Vec::new(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    /// A second factor, or a passkey alone (what the account page asks of a user who holds one;
    /// not a scheme applications pick).
    pub fn second_factor() -> AuthScheme {
        AuthScheme {
            name: SECOND_FACTOR.into(),
            display_name: "A second factor".into(),
            description: String::new(),
            methods: vec![
                vec![Method::Password, Method::Totp],
                vec![Method::Password, Method::Passkey],
                vec![Method::Passkey],
            ],
            enrolment: false,
            ..AuthScheme::password()
        }
    }

    /// Whether `u` still counts: younger than the scheme's factor lifetime and made after
    /// `fresh_after` (what `max_age` or `prompt=login` ask for).
    pub(crate) fn counts(
        &self,
        u: &FactorUse,
        now: Timestamp,
        fresh_after: Option<Timestamp>,
    ) -> bool {
        self.accepts(u)
            && self.factor_lifetime.is_none_or(|l| now.0 - u.at.0 < l)
            && fresh_after.is_none_or(|t| u.at >= t)
    }

    /// The methods of `alternative` not yet proved by `uses`, in its order.
    pub fn unproved(
        &self,
        alternative: &[Method],
        uses: &[FactorUse],
        now: Timestamp,
        fresh_after: Option<Timestamp>,
    ) -> Vec<Method> {
        let as_second = alternative.len() > 1;
        let counted: Vec<&FactorUse> = uses
            .iter()
            .filter(|u| self.counts(u, now, fresh_after))
            .collect();
        // A recovery code stands in for one second factor of the set, never for two.
        let mut recovery_left = as_second && counted.iter().any(|u| u.proof == Proof::Recovery);
        let mut missing = Vec::new();
        for m in alternative.iter().copied() {
            let genuine = counted
                .iter()
                .any(|u| u.proof != Proof::Recovery && u.proves(m, as_second));
            if genuine {
                continue;
            }
            if recovery_left && matches!(m, Method::Totp | Method::Passkey) {
                recovery_left = false;
                continue;
            }
            missing.push(m);
        }
        missing
    }

    /// Whether a use counts for this scheme at all: an upstream sign-in only at one of its
    /// identity providers.
    fn accepts(&self, u: &FactorUse) -> bool {
        match &u.upstream {
            Some(p) => self.identity_providers.contains(&p.idp),
            None => true,
        }
    }

    /// The identity providers users may sign in at for it (when an alternative has `upstream`).
    pub fn upstream_idps(&self) -> &[String] {
        if self.methods.iter().any(|a| a.contains(&Method::Upstream)) {
            &self.identity_providers
        } else {
            &[]
        }
    }

    /// Whether a password is a first factor of one of its alternatives.
    pub fn takes_password(&self) -> bool {
        self.methods.iter().any(|a| a.contains(&Method::Password))
    }

    pub fn satisfied_by(
        &self,
        uses: &[FactorUse],
        now: Timestamp,
        fresh_after: Option<Timestamp>,
    ) -> bool {
        self.methods
            .iter()
            .any(|alt| self.unproved(alt, uses, now, fresh_after).is_empty())
    }

    /// What the user can still do to satisfy it: for each alternative whose every method the
    /// user holds, the methods still to prove (fewest first).
    pub fn reachable(
        &self,
        factors: &Factors,
        uses: &[FactorUse],
        now: Timestamp,
        fresh_after: Option<Timestamp>,
    ) -> Vec<Vec<Method>> {
        let mut out: Vec<Vec<Method>> = self
            .methods
            .iter()
            .filter(|alt| alt.iter().all(|m| factors.holds(*m)))
            .map(|alt| self.unproved(alt, uses, now, fresh_after))
            .collect();
        out.sort_by_key(Vec::len);
        out
    }

    /// The second factors a user who holds none could set up to satisfy it (when it allows
    /// enrolment): those of alternatives whose other methods the user holds.
    pub fn enrollable(&self, factors: &Factors) -> Vec<Method> {
        let mut out = Vec::new();
        for alt in &self.methods {
            let others_held = alt
                .iter()
                .all(|m| matches!(m, Method::Totp | Method::Passkey) || factors.holds(*m));
            if !others_held {
                continue;
            }
            for m in alt {
                if matches!(m, Method::Totp | Method::Passkey)
                    && !factors.holds(*m)
                    && !out.contains(m)
                {
                    out.push(*m);
                }
            }
        }
        out
    }

    /// Whether a passkey alone satisfies it (the sign-in page then offers "Sign in with a passkey").
    pub fn passkey_alone(&self) -> bool {
        self.methods
            .iter()
            .any(|a| a.as_slice() == [Method::Passkey])
    }
}

/// RFC 8176 `amr` of a session: every value its factor uses add, and `mfa` when a second factor
/// joins another kind or a passkey verified its user (possession and a PIN or biometric).
pub fn amr(uses: &[FactorUse]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in uses.iter().flat_map(|u| u.amr.iter()) {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    let mut kinds: Vec<Proof> = uses.iter().map(|u| u.proof).collect();
    kinds.sort_by_key(|p| *p as u8);
    kinds.dedup();
    let verified_passkey = uses
        .iter()
        .any(|u| u.proof == Proof::Passkey && u.amr.iter().any(|a| a == "pin"));
    // Two first factors (a password and an upstream sign-in) are not two kinds of factor.
    let second = kinds.iter().any(|k| k.is_second());
    if (kinds.len() > 1 && second) || verified_passkey {
        out.push("mfa".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::TotpFactor;

    fn mfa() -> AuthScheme {
        AuthScheme {
            name: "mfa".into(),
            methods: vec![
                vec![Method::Password, Method::Totp],
                vec![Method::Password, Method::Passkey],
                vec![Method::Passkey],
            ],
            acr: "urn:tessera:mfa".into(),
            factor_lifetime: Some(600),
            enrolment: true,
            ..AuthScheme::password()
        }
    }

    fn with_totp() -> Factors {
        Factors {
            totp: Some(TotpFactor {
                secret_ciphertext: String::new(),
                last_step: 0,
                created_at: Timestamp(0),
                last_used_at: None,
            }),
            ..Factors::default()
        }
    }

    #[test]
    fn a_scheme_is_satisfied_by_one_alternative_with_every_factor_fresh() {
        let s = mfa();
        let now = Timestamp(10_000);
        let pwd = FactorUse::password(Timestamp(9_900));
        let otp = FactorUse::totp(Timestamp(9_950));
        assert!(!s.satisfied_by(std::slice::from_ref(&pwd), now, None));
        assert!(s.satisfied_by(&[pwd.clone(), otp.clone()], now, None));
        // The factor lifetime (600 s) and max_age (fresh_after) both age factors out.
        assert!(!s.satisfied_by(&[pwd.clone(), otp.clone()], Timestamp(10_500), None));
        assert!(!s.satisfied_by(&[pwd.clone(), otp.clone()], now, Some(Timestamp(9_920))));
        // A recovery code stands in for the second factor, never for the first.
        let rec = FactorUse::recovery(Timestamp(9_950));
        assert!(s.satisfied_by(&[pwd.clone(), rec.clone()], now, None));
        assert!(!s.satisfied_by(&[rec], now, None));
        // One recovery code is one second factor, never two of a set.
        let all = [Method::Password, Method::Totp, Method::Passkey];
        let with_code = [pwd.clone(), FactorUse::recovery(Timestamp(9_950))];
        assert_eq!(s.unproved(&all, &with_code, now, None).len(), 1);
        let two = [Method::Passkey, Method::Totp];
        assert_eq!(s.unproved(&two, &with_code[1..], now, None).len(), 1);
        // A passkey alone is an alternative of its own.
        assert!(s.satisfied_by(&[FactorUse::passkey(now, false, true)], now, None));
        assert!(AuthScheme::password().satisfied_by(std::slice::from_ref(&pwd), now, None));
        assert!(!AuthScheme::password().satisfied_by(&[otp], now, None));

        // Reachable: the alternatives the user holds, with only what is missing.
        assert_eq!(
            s.reachable(&with_totp(), &[pwd], now, None),
            vec![vec![Method::Totp]]
        );
        assert!(s.reachable(&Factors::default(), &[], now, None).is_empty());
        assert_eq!(
            s.enrollable(&Factors::default()),
            vec![Method::Totp, Method::Passkey]
        );
        assert_eq!(s.enrollable(&with_totp()), vec![Method::Passkey]);
        assert!(s.passkey_alone() && !AuthScheme::password().passkey_alone());
    }

    #[test]
    fn amr_names_every_factor_and_mfa_when_there_are_two() {
        let t = Timestamp(1);
        assert_eq!(amr(&[FactorUse::password(t)]), ["pwd"]);
        assert_eq!(
            amr(&[FactorUse::password(t), FactorUse::totp(t)]),
            ["pwd", "otp", "mfa"]
        );
        assert_eq!(
            amr(&[FactorUse::passkey(t, false, true)]),
            ["hwk", "user", "pin", "mfa"]
        );
        assert_eq!(amr(&[FactorUse::passkey(t, true, false)]), ["swk", "user"]);
    }
}

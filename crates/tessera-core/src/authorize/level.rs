//! The authentication level a request needs and what the session still lacks for it: the
//! application's scheme, and the scheme whose `acr` the request asks for (step-up, OIDC Core
//! §3.1.2.1 `acr_values`, RFC 9470); a factor counts while its scheme's lifetime, `max_age` and
//! `prompt=login` allow. The sign-in then asks only for what is missing.

use super::{AuthorizeRequest, Prompt, Settled};
use crate::clock::Timestamp;
use crate::factor::{FactorUse, Factors, Method};
use crate::provider::Provider;
use crate::scheme::AuthScheme;

/// What a request needs: every scheme of `schemes` satisfied; the ID token then says `acr`.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub schemes: Vec<AuthScheme>,
    pub acr: String,
    /// The scheme asked for by `acr`, when it is not the application's own.
    pub asked: Option<AuthScheme>,
    /// Asked as an essential claim: unreachable is a failed sign-in, not a lower level.
    pub essential: bool,
}

impl Level {
    /// Whether a password is a way in for every scheme (the sign-in page's password form).
    pub fn takes_password(&self) -> bool {
        self.schemes.iter().all(AuthScheme::takes_password)
    }

    /// Without the level the request asked for (a voluntary level the user cannot reach is
    /// dropped); the application's scheme, and any added to it, stay.
    pub fn application_only(&self) -> Level {
        let asked = self.asked.as_ref().map(|a| a.name.as_str());
        let schemes: Vec<AuthScheme> = self
            .schemes
            .iter()
            .filter(|s| Some(s.name.as_str()) != asked)
            .cloned()
            .collect();
        Level {
            acr: schemes[0].acr.clone(),
            schemes,
            asked: None,
            essential: false,
        }
    }
}

/// The next step of a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Every scheme is satisfied.
    Met,
    /// Sign in from the first factor (a password, or a passkey where it suffices).
    FirstFactor,
    /// Prove one of these second factors (a recovery code stands in for either).
    SecondFactor(Vec<Method>),
    /// Set up one of these factors (the scheme allows enrolment; the user holds none).
    Enrol(Vec<Method>),
    /// The user holds nothing that satisfies the scheme, and may not enrol.
    Unreachable,
}

/// What `factors` and `uses` still lack for `schemes`.
pub(crate) fn next(
    schemes: &[AuthScheme],
    factors: &Factors,
    uses: &[FactorUse],
    now: Timestamp,
    fresh_after: Option<Timestamp>,
) -> Next {
    for s in schemes {
        if s.satisfied_by(uses, now, fresh_after) {
            continue;
        }
        // Nothing of the session counts any more: sign in from the start.
        if !uses.iter().any(|u| s.counts(u, now, fresh_after)) {
            return Next::FirstFactor;
        }
        let reachable = s.reachable(factors, uses, now, fresh_after);
        let mut second: Vec<Method> = Vec::new();
        // What is left once a first factor (a password, an upstream sign-in) is proved.
        let first = |m: &Method| matches!(m, Method::Password | Method::Upstream);
        for missing in reachable.iter().filter(|m| !m.iter().any(first)) {
            for m in missing {
                if !second.contains(m) {
                    second.push(*m);
                }
            }
        }
        if !second.is_empty() {
            return Next::SecondFactor(second);
        }
        if !reachable.is_empty() {
            return Next::FirstFactor;
        }
        let enrollable = s.enrollable(factors);
        if !s.enrolment || enrollable.is_empty() {
            return Next::Unreachable;
        }
        // Enrolment comes once the rest of an alternative is proved: after the password; and a
        // user who holds a second factor proves it before adding another (else the password
        // alone would add one and pass for two factors from then on).
        let first_proved = uses.iter().any(|u| {
            (u.proves(Method::Password, false) || u.proves(Method::Upstream, false))
                && s.counts(u, now, fresh_after)
        });
        if !first_proved {
            return Next::FirstFactor;
        }
        let second_proved = crate::factor::second_factor_recent(uses, now)
            && uses
                .iter()
                .any(|u| u.proof.is_second() && s.counts(u, now, fresh_after));
        if factors.has_second_factor() && !second_proved {
            let held: Vec<Method> = [Method::Totp, Method::Passkey]
                .into_iter()
                .filter(|m| factors.holds(*m))
                .collect();
            return Next::SecondFactor(held);
        }
        return Next::Enrol(enrollable);
    }
    Next::Met
}

impl Provider {
    /// The level `req` needs: its application's scheme, and the first scheme whose `acr` it
    /// asks for (in its order of preference).
    pub(crate) fn level(&self, req: &AuthorizeRequest) -> Level {
        let mut app = self.scheme_of(&req.client.client);
        // The account page lets a user in through the identity providers users sign in with:
        // their linked identity names them as well as their password does.
        if req.client.client.client_id == crate::admin::ACCOUNT_CLIENT {
            let enabled: Vec<String> = self.account_idps().into_iter().map(|i| i.name).collect();
            if !enabled.is_empty() && !app.methods.iter().any(|m| m == &[Method::Upstream]) {
                app.methods.push(vec![Method::Upstream]);
                app.identity_providers = enabled;
            }
        }
        let asked = req
            .acr
            .values
            .iter()
            .find_map(|v| self.scheme_by_acr(v))
            .filter(|s| s.name != app.name);
        let acr = asked
            .as_ref()
            .map_or_else(|| app.acr.clone(), |s| s.acr.clone());
        let mut schemes = vec![app];
        schemes.extend(asked.clone());
        Level {
            schemes,
            acr,
            asked,
            essential: req.acr.essential,
        }
    }
}

/// The moment factors must be proved after to count: `max_age` seconds ago (OIDC Core
/// §3.1.2.1; an elapsed time equal to it is too old, auth_time having one-second resolution),
/// or, with `prompt=login`, when this request began.
/// Factors proved while this request waited count, whatever `max_age` says.
pub(crate) fn fresh_after(
    req: &AuthorizeRequest,
    settled: &Settled,
    now: Timestamp,
) -> Option<Timestamp> {
    let started = settled.started;
    let by_age = req.max_age.map(|m| {
        let t = Timestamp(now.0 - m + 1);
        started.map_or(t, |s| t.min(s))
    });
    let by_prompt = req
        .prompt
        .contains(&Prompt::Login)
        .then(|| started.unwrap_or(Timestamp(now.0 + 1)));
    match (by_age, by_prompt) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

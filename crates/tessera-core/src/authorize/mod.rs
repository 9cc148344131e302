//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3): checks the request, signs the user in
//! and asks for consent when needed (pausing the request as an interaction), then answers the
//! client. [`request`] parses, [`interaction`] owns the login and consent steps, [`response`]
//! issues the code and tokens.

mod interaction;
mod jarm;
pub(crate) mod level;
mod request;
mod response;
mod steps;
mod upstream;

pub use interaction::{
    ConsentForm, ConsentPage, LoginForm, LoginOutcome, LoginPage, PasskeyRequest, ScopeLine,
    THROTTLED, WRONG_CREDENTIALS,
};
pub use request::{
    AcrRequest, AuthorizeRequest, DeviceTarget, Prompt, Rejection, ResponseMode, Target,
};
pub use response::AuthResponse;
pub(crate) use response::CodeRecord;
pub use steps::{
    CodesPage, EnrolPage, Enrolment, FactorPage, PasskeyAnswer, PasskeyCreation, StepForm,
    TotpSetup, WRONG_FACTOR,
};
pub use upstream::{IdpButton, UpstreamForm, UpstreamOutcome, UpstreamReturn};

use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::factor::{FactorUse, Method};
use crate::model::ConsentMode;
use crate::params::Params;
use crate::provider::Provider;
use crate::scheme::AuthScheme;
use crate::session::Session;
use level::Next;

/// What the browser is shown next.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted: an error page, no redirect.
    ErrorPage(Error),
    /// Back to the client: a response or an error.
    Respond(AuthResponse),
    /// The request is paused; the user signs in.
    Login(LoginPage),
    /// The request is paused; the user approves scopes.
    Consent(ConsentPage),
    /// The request is paused; the user proves a second factor.
    Factor(FactorPage),
    /// The request is paused; the user sets up a factor.
    Enrol(EnrolPage),
    /// New recovery codes, shown once; the request goes on after.
    Codes(CodesPage),
    /// The request is paused; the user signs in at an upstream identity provider: the browser
    /// goes to `url`, holding the interaction's cookie for its return.
    Upstream { interaction: String, url: String },
}

/// What was settled while the request was paused.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settled {
    /// When the request first paused for the user: factors proved since satisfy
    /// `prompt=login` and `max_age`.
    pub started: Option<Timestamp>,
    /// The user approved the scopes for this very request (satisfies prompt=consent).
    pub consented: bool,
}

impl Provider {
    /// `GET/POST /authorize`: `cookie` is the SSO session cookie, if the browser sent one.
    pub async fn authorize(&self, params: &Params, cookie: Option<&str>) -> AuthorizeOutcome {
        let now = self.now();
        let pushed = match self.pushed_request(params, now).await {
            Ok(p) => p,
            Err(Rejection::Page(e)) => return AuthorizeOutcome::ErrorPage(e),
            Err(Rejection::Redirect(t, e)) => return self.error_response(&t, &e).await,
        };
        let params = pushed.as_ref().unwrap_or(params);
        let expanded = match self.request_object(params, now).await {
            Ok(p) => p,
            Err(e) => return AuthorizeOutcome::ErrorPage(e),
        };
        let params = expanded.as_ref().unwrap_or(params);
        let req = match self.authorize_request(params).await {
            Ok(r) => r,
            Err(Rejection::Page(e)) => return AuthorizeOutcome::ErrorPage(e),
            Err(Rejection::Redirect(t, e)) => return self.error_response(&t, &e).await,
        };
        let session = match self.session(cookie, now).await {
            Ok(s) => s,
            Err(e) => return self.error_response(&req.target, &e).await,
        };
        self.proceed(&req, params, session, Settled::default(), now)
            .await
    }

    /// Decides the next step for a checked request.
    pub(crate) async fn proceed(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        session: Option<Session>,
        settled: Settled,
        now: Timestamp,
    ) -> AuthorizeOutcome {
        match self.next_step(req, params, session, settled, now).await {
            Ok(o) => o,
            Err(e) => self.error_response(&req.target, &e).await,
        }
    }

    async fn next_step(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        session: Option<Session>,
        settled: Settled,
        now: Timestamp,
    ) -> Result<AuthorizeOutcome> {
        let client = &req.client.client;
        let prompt_none = req.prompt.contains(&Prompt::None);
        let session = session.filter(|s| {
            let select = req.prompt.contains(&Prompt::SelectAccount) && settled.started.is_none();
            // OIDC Core §3.1.2.1: an id_token_hint for another user means this session will not do.
            let other_user = req
                .hint_sub
                .as_ref()
                .is_some_and(|sub| self.subject(client, &s.user).ok().as_ref() != Some(sub));
            !(select || other_user)
        });
        let Some(mut session) = session else {
            if prompt_none {
                return Err(Error::new(
                    ErrorCode::LoginRequired,
                    "the user is not signed in and prompt is none",
                ));
            }
            return self.pause_for_login(req, params, None, &settled, now).await;
        };
        // The level the request needs, and what the session still lacks for it.
        let mut level = self.level(req);
        // The account page changes how one signs in: whoever holds a second factor proves one.
        if client.client_id == crate::admin::ACCOUNT_CLIENT
            && session.user.factors.has_second_factor()
        {
            level.schemes.push(AuthScheme::second_factor());
        }
        let fresh = level::fresh_after(req, &settled, now);
        let uses = session.record.uses();
        let factors = &session.user.factors;
        let mut next =
            self.next_step_possible(level::next(&level.schemes, factors, &uses, now, fresh));
        if next == Next::Unreachable && level.asked.is_some() && !level.essential {
            // A voluntary level the user cannot reach: the application's own will do.
            level = level.application_only();
            next = self.next_step_possible(level::next(&level.schemes, factors, &uses, now, fresh));
        }
        // An administrator asked for a first second factor: asked of a user who still holds
        // none (one who holds a factor adds another only after proving it, as a scheme asks).
        if next == Next::Met && factors.enrolment_required && !factors.has_second_factor() {
            next = Next::Enrol(vec![Method::Totp, Method::Passkey]);
        }
        if next == Next::Unreachable && level.essential {
            return Err(Error::new(
                ErrorCode::UnmetAuthenticationRequirements,
                format!(
                    "the user cannot authenticate at the essential acr {}",
                    level.acr
                ),
            ));
        }
        if prompt_none && next != Next::Met {
            let (code, what) = match next {
                Next::FirstFactor => (ErrorCode::LoginRequired, "the user must sign in again"),
                _ => (
                    ErrorCode::InteractionRequired,
                    "the user must prove another factor",
                ),
            };
            return Err(Error::new(code, format!("{what} and prompt is none")));
        }
        match next {
            Next::Met => {}
            Next::FirstFactor => {
                return self
                    .pause_for_login(req, params, Some(&session.user), &settled, now)
                    .await
            }
            Next::SecondFactor(methods) => {
                return self
                    .pause_for_factor(req, params, &session, &methods, &settled, now)
                    .await
                    .map(AuthorizeOutcome::Factor)
            }
            Next::Enrol(methods) => {
                return self
                    .pause_for_enrol(req, params, &session, &methods, &settled, now)
                    .await
                    .map(AuthorizeOutcome::Enrol)
            }
            Next::Unreachable => {
                tracing::info!(user_id = %session.user.id, client_id = %client.client_id, "the user holds no factor the application's scheme accepts");
                return Ok(AuthorizeOutcome::ErrorPage(Error::access_denied(format!(
                    "{} needs a second factor (an authenticator app or a passkey) that your account does not have, and it cannot be set up while signing in. Add one on your account page ({}), then sign in again.",
                    client.name,
                    self.settings.endpoint("/account")
                ))));
            }
        }
        session.record.acr = level.acr.clone();
        // RFC 8176 amr of what counts for this request: a factor max_age or prompt=login aged
        // out is not named, though the session once proved it.
        let counted: Vec<FactorUse> = uses
            .into_iter()
            .filter(|u| level.schemes.iter().all(|s| s.counts(u, now, fresh)))
            .collect();
        session.record.amr = crate::scheme::amr(&counted);
        let allowed = &client.browser.allowed_groups;
        if !allowed.is_empty() && !session.user.groups.iter().any(|g| allowed.contains(g)) {
            tracing::info!(user_id = %session.user.id, client_id = %client.client_id, "authorization policy refused the user");
            return Err(Error::access_denied(
                "the user is not allowed to use this application",
            ));
        }
        // RFC 8628 §5.4: a device sign-in is confirmed on the consent page, which shows the user
        // code to compare, whatever the application's consent mode.
        let device = req.target.device.is_some();
        if client.browser.consent == ConsentMode::Explicit || device {
            let stored = self
                .store
                .get_consent(&session.user.id, &client.client_id)
                .await?;
            let covered = stored
                .as_ref()
                .is_some_and(|c| req.scope.iter().all(|s| c.scopes.contains(s)));
            let asked = (device || req.prompt.contains(&Prompt::Consent)) && !settled.consented;
            if (!covered || asked) && !settled.consented {
                if prompt_none {
                    return Err(Error::new(
                        ErrorCode::ConsentRequired,
                        "the user has not approved these scopes and prompt is none",
                    ));
                }
                return self
                    .pause_for_consent(req, params, &session, settled, now)
                    .await
                    .map(AuthorizeOutcome::Consent);
            }
        }
        // OIDC Core §11: offline access only when the user was asked in this request, or the
        // administrator made the application first-party (auto-accept).
        let offline_ok = settled.consented || client.browser.consent == ConsentMode::AutoAccept;
        self.issue_authorization(req, &session, offline_ok, now)
            .await
            .map(AuthorizeOutcome::Respond)
    }

    /// `next` as this server can take it: passkeys cannot work on an issuer whose host is an IP
    /// address, so a step that could only be a passkey cannot be taken.
    fn next_step_possible(&self, mut next: Next) -> Next {
        if !self.passkeys_available() {
            if let Next::SecondFactor(m) | Next::Enrol(m) = &mut next {
                m.retain(|x| *x != Method::Passkey);
                if m.is_empty() {
                    next = Next::Unreachable;
                }
            }
        }
        next
    }

    /// An error sent back to the client (OIDC Core §3.1.2.6, RFC 9207 `iss`).
    pub(crate) async fn error_response(&self, t: &Target, e: &Error) -> AuthorizeOutcome {
        if matches!(
            e.code,
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
        ) {
            tracing::error!(error = %e, "authorization request failed");
        }
        let mut params = vec![
            ("error".to_owned(), e.code.as_str().to_owned()),
            ("error_description".to_owned(), e.description.to_string()),
        ];
        if let Some(s) = &t.state {
            params.push(("state".into(), s.clone()));
        }
        params.push(("iss".into(), self.settings.issuer.clone()));
        if let Some(d) = &t.device {
            return self.device_refused(d, e).await;
        }
        let params = match &t.jarm {
            None => params,
            Some(client_id) => match self.jarm(client_id, params, self.now()).await {
                Ok(p) => p,
                // The application expects a JWT: without one, the browser stays here.
                Err(e) => return AuthorizeOutcome::ErrorPage(e),
            },
        };
        AuthorizeOutcome::Respond(AuthResponse {
            redirect_uri: t.redirect_uri.clone(),
            mode: t.mode,
            params,
        })
    }
}

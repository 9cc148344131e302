//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3): checks the request, signs the user in
//! and asks for consent when needed (pausing the request as an interaction), then answers the
//! client. [`request`] parses, [`interaction`] owns the login and consent steps, [`response`]
//! issues the code and tokens.

mod interaction;
mod request;
mod response;

pub use interaction::{ConsentForm, ConsentPage, LoginForm, LoginOutcome, LoginPage, ScopeLine};
pub use request::{AuthorizeRequest, Prompt, Rejection, ResponseMode, Target};
pub use response::AuthResponse;
pub(crate) use response::CodeRecord;

use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::model::ConsentMode;
use crate::params::Params;
use crate::provider::Provider;
use crate::session::Session;

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
}

/// What was settled while the request was paused.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settled {
    /// The user signed in for this very request (satisfies prompt=login and max_age).
    pub fresh_login: bool,
    /// The user approved the scopes for this very request (satisfies prompt=consent).
    pub consented: bool,
}

impl Provider {
    /// `GET/POST /authorize`: `cookie` is the SSO session cookie, if the browser sent one.
    pub async fn authorize(&self, params: &Params, cookie: Option<&str>) -> AuthorizeOutcome {
        let now = self.now();
        let req = match self.authorize_request(params).await {
            Ok(r) => r,
            Err(Rejection::Page(e)) => return AuthorizeOutcome::ErrorPage(e),
            Err(Rejection::Redirect(t, e)) => return self.error_response(&t, &e),
        };
        let session = match self.session(cookie, now).await {
            Ok(s) => s,
            Err(e) => return self.error_response(&req.target, &e),
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
            Err(e) => self.error_response(&req.target, &e),
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
            let forced =
                req.prompt.contains(&Prompt::Login) || req.prompt.contains(&Prompt::SelectAccount);
            // auth_time has one-second resolution: an elapsed time equal to max_age may be up to a
            // second over it, so it counts as too old (and max_age=0 always asks).
            let too_old = req
                .max_age
                .is_some_and(|m| now.0 - s.record.auth_time.0 >= m);
            // OIDC Core §3.1.2.1: an id_token_hint for another user means this session will not do.
            let other_user = req
                .hint_sub
                .as_ref()
                .is_some_and(|sub| self.subject(client, &s.user).ok().as_ref() != Some(sub));
            settled.fresh_login || !(forced || too_old || other_user)
        });
        let Some(session) = session else {
            if prompt_none {
                return Err(Error::new(
                    ErrorCode::LoginRequired,
                    "the user is not signed in and prompt is none",
                ));
            }
            return self
                .pause_for_login(req, params, None, now)
                .await
                .map(AuthorizeOutcome::Login);
        };
        let allowed = &client.browser.allowed_groups;
        if !allowed.is_empty() && !session.user.groups.iter().any(|g| allowed.contains(g)) {
            tracing::info!(user_id = %session.user.id, client_id = %client.client_id, "authorization policy refused the user");
            return Err(Error::access_denied(
                "the user is not allowed to use this application",
            ));
        }
        if client.browser.consent == ConsentMode::Explicit {
            let stored = self
                .store
                .get_consent(&session.user.id, &client.client_id)
                .await?;
            let covered = stored
                .as_ref()
                .is_some_and(|c| req.scope.iter().all(|s| c.scopes.contains(s)));
            let asked = req.prompt.contains(&Prompt::Consent) && !settled.consented;
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

    /// An error sent back to the client (OIDC Core §3.1.2.6, RFC 9207 `iss`).
    pub(crate) fn error_response(&self, t: &Target, e: &Error) -> AuthorizeOutcome {
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
        AuthorizeOutcome::Respond(AuthResponse {
            redirect_uri: t.redirect_uri.clone(),
            mode: t.mode,
            params,
        })
    }
}

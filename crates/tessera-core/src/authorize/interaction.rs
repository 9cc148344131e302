//! Login and consent: the paused authorization request is stored as an interaction (its
//! parameters, a CSRF token, the stage), the browser holds its handle in a cookie, and the pages
//! post back the handle and the token. Failed passwords are counted per account and per address.

use serde::{Deserialize, Serialize};

use super::{AuthorizeOutcome, AuthorizeRequest, Rejection, Settled};
use crate::clock::Timestamp;
use crate::credentials::CredentialCheck;
use crate::error::{Error, Result};
use crate::model::{Artifact, ArtifactKind, Consent};
use crate::params::Params;
use crate::provider::Provider;
use crate::secret::{b64url, constant_time_eq, handle_key, new_handle, random_bytes};
use crate::session::Session;
use crate::store::{Consume, Consumed};

/// How long a paused request waits for the user.
const INTERACTION_TTL: i64 = 1_800;

/// The one message for any wrong username or password.
pub const WRONG_CREDENTIALS: &str = "The username or password is incorrect.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Stage {
    Login,
    Consent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InteractionState {
    stage: Stage,
    params: Vec<(String, String)>,
    csrf: String,
    /// Consent stage: the signed-in user and whether they signed in for this request.
    user_id: Option<String>,
    fresh_login: bool,
}

/// The login page's data.
#[derive(Debug, Clone)]
pub struct LoginPage {
    pub interaction: String,
    pub csrf: String,
    pub client_name: String,
    /// The application's logo, when it has one.
    pub logo_uri: Option<String>,
    pub login_hint: Option<String>,
    pub error: Option<String>,
}

/// One scope on the consent page.
#[derive(Debug, Clone)]
pub struct ScopeLine {
    pub name: String,
    pub display_name: String,
    pub description: String,
}

/// The consent page's data.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    pub interaction: String,
    pub csrf: String,
    pub client_name: String,
    /// The application's logo, when it has one.
    pub logo_uri: Option<String>,
    pub username: String,
    pub scopes: Vec<ScopeLine>,
}

/// What the login form posts; `cookie` is the interaction cookie the browser sent.
pub struct LoginForm<'a> {
    pub interaction: &'a str,
    pub csrf: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
    /// The client's address, for throttling.
    pub address: &'a str,
    /// The SSO session cookie the browser already holds, if any.
    pub session_cookie: Option<&'a str>,
}

/// The username and address only: never the password.
impl std::fmt::Debug for LoginForm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// What the consent form posts.
#[derive(Debug)]
pub struct ConsentForm<'a> {
    pub interaction: &'a str,
    pub csrf: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub approve: bool,
    pub session_cookie: Option<&'a str>,
}

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Wrong credentials: the page again with the generic message.
    Retry(LoginPage),
    /// Too many failures: try again after this many seconds.
    Throttled { page: LoginPage, retry_after: i64 },
    /// Signed in: the new session cookie, its `sid`, and what the browser is shown next.
    Done {
        session_cookie: String,
        sid: String,
        outcome: AuthorizeOutcome,
    },
    /// The form itself is not acceptable (CSRF, expired or used interaction).
    Refused(Error),
}

/// Built-in descriptions of the OpenID scopes.
fn builtin_scope(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "openid" => ("Sign you in", "Confirm your identity to the application"),
        "profile" => (
            "Your profile",
            "Name, username, picture, locale and other profile details",
        ),
        "email" => (
            "Your email address",
            "Your email address and whether it is verified",
        ),
        "address" => ("Your postal address", "Your postal address"),
        "phone" => (
            "Your phone number",
            "Your phone number and whether it is verified",
        ),
        "offline_access" => (
            "Stay connected",
            "Keep access when you are not using the application",
        ),
        _ => return None,
    })
}

fn interaction(a: &Artifact) -> Consume<'_> {
    Consume {
        key: &a.key,
        kind: ArtifactKind::Interaction,
        client_id: &a.client_id,
    }
}

fn form_refused(what: &str) -> Error {
    Error::invalid_request(format!(
        "{what}; start signing in again from the application"
    ))
}

impl Provider {
    async fn store_interaction(
        &self,
        state: &InteractionState,
        client_id: &str,
        now: Timestamp,
    ) -> Result<String> {
        let (handle, key) = new_handle();
        let artifact = Artifact {
            key,
            kind: ArtifactKind::Interaction,
            client_id: client_id.to_owned(),
            grant_id: None,
            user_id: None,
            expires_at: now.plus(INTERACTION_TTL),
            revoked_at: None,
            consumed_at: None,
            payload: serde_json::to_value(state).map_err(Error::server)?,
        };
        self.store.insert_artifact(&artifact).await?;
        Ok(handle)
    }

    /// The interaction a handle names, if it is open at `stage` and the browser holds its cookie
    /// and CSRF token.
    async fn open_interaction(
        &self,
        handle: &str,
        csrf: Option<&str>,
        cookie: Option<&str>,
        stage: Stage,
        now: Timestamp,
    ) -> Result<(Artifact, InteractionState)> {
        let key =
            handle_key(handle).ok_or_else(|| form_refused("the sign-in request is unknown"))?;
        let a = self
            .store
            .get_artifact(&key)
            .await?
            .filter(|a| a.kind == ArtifactKind::Interaction)
            .ok_or_else(|| form_refused("the sign-in request is unknown"))?;
        if a.expires_at <= now || a.consumed_at.is_some() || a.revoked_at.is_some() {
            return Err(form_refused(
                "the sign-in request has expired or was already completed",
            ));
        }
        let state: InteractionState =
            serde_json::from_value(a.payload.clone()).map_err(Error::server)?;
        // The form's token must match the interaction, and the browser must hold its cookie: a
        // page on another site can neither read the token nor send the cookie (SameSite=Lax).
        let csrf_ok = csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), state.csrf.as_bytes()));
        let cookie_ok = cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), handle.as_bytes()));
        if !csrf_ok || !cookie_ok {
            return Err(Error::invalid_request(
                "the form's CSRF token is missing or does not match; reload the page and try again",
            ));
        }
        if state.stage != stage {
            return Err(form_refused(match stage {
                Stage::Login => "the sign-in request is not waiting for a password",
                Stage::Consent => "the sign-in request is not waiting for consent",
            }));
        }
        Ok((a, state))
    }

    pub(crate) async fn pause_for_login(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        error: Option<String>,
        now: Timestamp,
    ) -> Result<LoginPage> {
        let state = InteractionState {
            stage: Stage::Login,
            params: params.pairs().to_vec(),
            csrf: b64url(&random_bytes::<24>()),
            user_id: None,
            fresh_login: false,
        };
        let handle = self
            .store_interaction(&state, &req.client.client.client_id, now)
            .await?;
        Ok(LoginPage {
            interaction: handle,
            csrf: state.csrf,
            client_name: req.client.client.name.clone(),
            logo_uri: self.logo_uri(&req.client.client),
            login_hint: req.login_hint.clone(),
            error,
        })
    }

    pub(crate) async fn pause_for_consent(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        session: &Session,
        settled: Settled,
        now: Timestamp,
    ) -> Result<ConsentPage> {
        let state = InteractionState {
            stage: Stage::Consent,
            params: params.pairs().to_vec(),
            csrf: b64url(&random_bytes::<24>()),
            user_id: Some(session.user.id.clone()),
            fresh_login: settled.fresh_login,
        };
        let handle = self
            .store_interaction(&state, &req.client.client.client_id, now)
            .await?;
        let scopes = req
            .scope
            .iter()
            .map(|name| {
                let stored = self.scope(name);
                let (d, desc) = builtin_scope(name).unwrap_or(("", ""));
                let display_name = stored
                    .as_ref()
                    .map(|s| s.display_name.clone())
                    .filter(|x| !x.is_empty())
                    .unwrap_or_else(|| {
                        if d.is_empty() {
                            name.clone()
                        } else {
                            d.to_owned()
                        }
                    });
                let description = stored
                    .map(|s| s.description)
                    .filter(|x| !x.is_empty())
                    .unwrap_or_else(|| desc.to_owned());
                ScopeLine {
                    name: name.clone(),
                    display_name,
                    description,
                }
            })
            .collect();
        Ok(ConsentPage {
            interaction: handle,
            csrf: state.csrf,
            client_name: req.client.client.name.clone(),
            logo_uri: self.logo_uri(&req.client.client),
            username: session.user.username.clone(),
            scopes,
        })
    }

    /// Re-checks the paused request (the client's settings may have changed meanwhile).
    async fn resume(
        &self,
        state: &InteractionState,
    ) -> std::result::Result<(AuthorizeRequest, Params), AuthorizeOutcome> {
        let params = Params::from_pairs(state.params.clone());
        match self.authorize_request(&params).await {
            Ok(r) => Ok((r, params)),
            Err(Rejection::Page(e)) => Err(AuthorizeOutcome::ErrorPage(e)),
            Err(Rejection::Redirect(t, e)) => Err(self.error_response(&t, &e)),
        }
    }

    /// `POST /login`: checks the password, with throttling per account and per address.
    pub async fn login(&self, form: &LoginForm<'_>) -> LoginOutcome {
        match self.try_login(form).await {
            Ok(o) => o,
            Err(e) => LoginOutcome::Refused(e),
        }
    }

    async fn try_login(&self, form: &LoginForm<'_>) -> Result<LoginOutcome> {
        let now = self.now();
        let (artifact, state) = self
            .open_interaction(form.interaction, form.csrf, form.cookie, Stage::Login, now)
            .await?;
        let client = self
            .client(&artifact.client_id)
            .await?
            .ok_or_else(|| form_refused("the application no longer exists"))?;
        let page = |error: &str| LoginPage {
            interaction: form.interaction.to_owned(),
            csrf: state.csrf.clone(),
            client_name: client.client.name.clone(),
            logo_uri: self.logo_uri(&client.client),
            login_hint: Some(form.username.to_owned()).filter(|u| !u.is_empty()),
            error: Some(error.to_owned()),
        };
        let user = match self
            .check_credentials(
                form.username,
                form.password,
                form.address,
                &client.client.client_id,
                now,
            )
            .await?
        {
            CredentialCheck::Valid(u) => u,
            CredentialCheck::Invalid => return Ok(LoginOutcome::Retry(page(WRONG_CREDENTIALS))),
            CredentialCheck::Throttled(retry_after) => {
                return Ok(LoginOutcome::Throttled {
                    page: page("Too many failed attempts. Wait a few minutes, then try again."),
                    retry_after,
                })
            }
        };
        match self
            .store
            .consume_artifact(interaction(&artifact), now, None)
            .await?
        {
            Consumed::First(_) => {}
            _ => return Err(form_refused("the sign-in request was already completed")),
        }
        // Signing in again keeps the session (and its sid, which logout and the applications
        // know); another user's session in this browser ends first.
        let previous = self.session(form.session_cookie, now).await?;
        let sid = match previous {
            Some(p) if p.user.id == user.id => {
                self.store.revoke_artifact(&p.key, now).await?;
                Some(p.record.sid)
            }
            Some(p) => {
                self.end_session(&p.record.sid, now).await?;
                None
            }
            None => None,
        };
        let (cookie, record) = self
            .start_session(&user, vec!["pwd".into()], sid, now)
            .await?;
        let session = Session {
            key: handle_key(&cookie).ok_or_else(|| Error::server("session handle"))?,
            record,
            user,
            expires_at: now.plus(self.settings.session_lifetime),
        };
        let sid = session.record.sid.clone();
        let outcome = match self.resume(&state).await {
            Ok((req, params)) => {
                let settled = Settled {
                    fresh_login: true,
                    consented: false,
                };
                self.proceed(&req, &params, Some(session), settled, now)
                    .await
            }
            Err(o) => o,
        };
        Ok(LoginOutcome::Done {
            session_cookie: cookie,
            sid,
            outcome,
        })
    }

    /// `POST /consent`: stores the approval (or answers access_denied) and resumes the request.
    pub async fn consent(&self, form: &ConsentForm<'_>) -> AuthorizeOutcome {
        match self.try_consent(form).await {
            Ok(o) => o,
            Err(e) => AuthorizeOutcome::ErrorPage(e),
        }
    }

    async fn try_consent(&self, form: &ConsentForm<'_>) -> Result<AuthorizeOutcome> {
        let now = self.now();
        let (artifact, state) = self
            .open_interaction(
                form.interaction,
                form.csrf,
                form.cookie,
                Stage::Consent,
                now,
            )
            .await?;
        let session = self
            .session(form.session_cookie, now)
            .await?
            .filter(|s| Some(&s.user.id) == state.user_id.as_ref())
            .ok_or_else(|| form_refused("you are no longer signed in as the user who was asked"))?;
        match self
            .store
            .consume_artifact(interaction(&artifact), now, None)
            .await?
        {
            Consumed::First(_) => {}
            _ => return Err(form_refused("the sign-in request was already completed")),
        }
        let (req, params) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(o),
        };
        if !form.approve {
            tracing::info!(user_id = %session.user.id, client_id = %artifact.client_id, "consent denied");
            return Ok(self.error_response(
                &req.target,
                &Error::access_denied("the user denied the request"),
            ));
        }
        let mut scopes = self
            .store
            .get_consent(&session.user.id, &artifact.client_id)
            .await?
            .map(|c| c.scopes)
            .unwrap_or_default();
        for s in &req.scope {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        self.store
            .put_consent(&Consent {
                user_id: session.user.id.clone(),
                client_id: artifact.client_id.clone(),
                scopes,
                updated_at: now,
            })
            .await?;
        let settled = Settled {
            fresh_login: state.fresh_login,
            consented: true,
        };
        Ok(self
            .proceed(&req, &params, Some(session), settled, now)
            .await)
    }
}

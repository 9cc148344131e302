//! Login and consent: the paused authorization request is stored as an interaction (its
//! parameters, a CSRF token, the stage), the browser holds its handle in a cookie, and the pages
//! post back the handle and the token. Failed passwords are counted per account and per address.
//! The steps after the first factor (second factors, enrolment) are in [`super::steps`].

use serde::{Deserialize, Serialize};

use super::{AuthorizeOutcome, AuthorizeRequest, Rejection, Settled};
use crate::clock::Timestamp;
use crate::credentials::CredentialCheck;
use crate::error::{Error, Result};
use crate::factor::{FactorUse, Method};
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

/// The one message while sign-in is paused for too many failures.
pub const THROTTLED: &str = "Too many failed attempts. Wait a few minutes, then try again.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stage {
    /// The first factor: a password, or a passkey where one suffices.
    Login,
    /// A second factor of the signed-in user.
    Factor,
    /// Setting up a factor.
    Enrol,
    /// New recovery codes were shown; the user goes on.
    Codes,
    Consent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InteractionState {
    pub stage: Stage,
    pub params: Vec<(String, String)>,
    /// The parameters came from a pushed authorization request (RFC 9126).
    #[serde(default)]
    pub pushed: bool,
    /// The parameters came from a signed request object (RFC 9101).
    #[serde(default)]
    pub signed: bool,
    /// The parameters are a device authorization request's (RFC 8628).
    #[serde(default)]
    pub device: bool,
    pub csrf: String,
    /// The signed-in user the stage is for (all stages but login).
    pub user_id: Option<String>,
    /// When the request first paused: factors proved since count for `prompt=login`/`max_age`.
    #[serde(default)]
    pub started: Option<Timestamp>,
    /// The WebAuthn challenge of this page, base64url.
    #[serde(default)]
    pub challenge: Option<String>,
    /// Enrolment: the TOTP secret being set up, encrypted, until a first code confirms it.
    #[serde(default)]
    pub pending_totp: Option<String>,
    /// The factors this page offers.
    #[serde(default)]
    pub methods: Vec<Method>,
}

impl InteractionState {
    /// The paused request's parameters as they came: pushed (RFC 9126) or signed (RFC 9101)
    /// still, so every stage that goes on from here judges the same request.
    pub(crate) fn request(&self) -> Params {
        let mut params = Params::from_pairs(self.params.clone());
        if self.pushed {
            params = params.into_pushed();
        }
        if self.signed {
            params = params.into_signed();
        }
        if self.device {
            params = params.into_device();
        }
        params
    }
}

/// What a page asks the browser's WebAuthn to do (`navigator.credentials.get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRequest {
    pub challenge: String,
    pub rp_id: String,
    pub user_verification: &'static str,
    /// Credential ids the user holds (empty: any discoverable credential, passwordless).
    pub allow: Vec<String>,
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
    /// "Sign in with a passkey", where a passkey alone satisfies the application.
    pub passkey: Option<PasskeyRequest>,
    /// The username and password form, where a password is a way in.
    pub password: bool,
    /// The upstream identity providers users may sign in at.
    pub idps: Vec<super::IdpButton>,
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
    /// RFC 8628 §5.4: the user code of the device being signed in, for the user to compare.
    pub device_code: Option<String>,
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

/// The result of a sign-in step (a password, a code, a passkey, an enrolment).
#[derive(Debug)]
pub enum LoginOutcome {
    /// Wrong credentials: the page again with the generic message.
    Retry(AuthorizeOutcome),
    /// Too many failures: try again after this many seconds.
    Throttled {
        page: AuthorizeOutcome,
        retry_after: i64,
    },
    /// The user signs in elsewhere (home-realm discovery named an upstream identity provider).
    Elsewhere(AuthorizeOutcome),
    /// A factor was proved: the new session cookie, its `sid`, and what the browser is shown next.
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

pub(crate) fn interaction(a: &Artifact) -> Consume<'_> {
    Consume {
        key: &a.key,
        kind: ArtifactKind::Interaction,
        client_id: &a.client_id,
    }
}

/// A second post of a sign-in form whose interaction was used up.
pub(crate) fn already_completed() -> Error {
    form_refused("the sign-in request was already completed")
}

pub(crate) fn form_refused(what: &str) -> Error {
    Error::invalid_request(format!(
        "{what}; start signing in again from the application"
    ))
}

impl Provider {
    pub(crate) async fn store_interaction(
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
    pub(crate) async fn open_interaction(
        &self,
        handle: &str,
        csrf: Option<&str>,
        cookie: Option<&str>,
        stages: &[Stage],
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
        let state: InteractionState = a.payload_as().map_err(Error::server)?;
        // The form's token must match the interaction, and the browser must hold its cookie: a
        // page on another site can neither read the token nor send the cookie (SameSite=Lax).
        let csrf_ok = csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), state.csrf.as_bytes()));
        let cookie_ok = cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), handle.as_bytes()));
        if !csrf_ok || !cookie_ok {
            return Err(Error::invalid_request(
                "the form's CSRF token is missing or does not match; reload the page and try again",
            ));
        }
        if let Some(&stage) = stages.first().filter(|_| !stages.contains(&state.stage)) {
            return Err(form_refused(match stage {
                Stage::Login => "the sign-in request is not waiting for a password",
                Stage::Factor => "the sign-in request is not waiting for a second factor",
                Stage::Enrol => "the sign-in request is not waiting for a new factor",
                Stage::Codes => "the sign-in request is not showing recovery codes",
                Stage::Consent => "the sign-in request is not waiting for consent",
            }));
        }
        Ok((a, state))
    }

    /// A new interaction at `stage` for `req`, started when the request first paused.
    pub(crate) fn new_state(
        stage: Stage,
        params: &Params,
        user_id: Option<&str>,
        settled: &Settled,
        now: Timestamp,
    ) -> InteractionState {
        InteractionState {
            stage,
            params: params.pairs().to_vec(),
            pushed: params.is_pushed(),
            signed: params.is_signed(),
            device: params.is_device(),
            csrf: b64url(&random_bytes::<24>()),
            user_id: user_id.map(str::to_owned),
            started: Some(settled.started.unwrap_or(now)),
            challenge: None,
            pending_totp: None,
            methods: Vec::new(),
        }
    }

    /// The login page; `known` is the signed-in user who must prove a first factor again. An
    /// `idp_hint`, or a `login_hint` whose domain is an upstream's, goes to that upstream instead.
    pub(crate) async fn pause_for_login(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        known: Option<&crate::model::User>,
        settled: &Settled,
        now: Timestamp,
    ) -> Result<AuthorizeOutcome> {
        let mut state = Self::new_state(Stage::Login, params, None, settled, now);
        let passkey_alone = self.level(req).schemes.iter().any(|s| s.passkey_alone());
        if passkey_alone && self.passkeys_available() {
            state.challenge = Some(b64url(&random_bytes::<32>()));
        }
        let handle = self
            .store_interaction(&state, &req.client.client.client_id, now)
            .await?;
        if let Some(idp) = self.discovered_idp(req, Some(params), req.login_hint.as_deref()) {
            return self
                .upstream_or_page(req, &idp, &handle, &state, req.login_hint.as_deref(), now)
                .await;
        }
        Ok(AuthorizeOutcome::Login(self.login_page(
            req,
            &handle,
            &state,
            known.map(|u| u.username.clone()),
            None,
        )))
    }

    /// The open interaction `handle` at `stage`, without a form (the upstream's return carries
    /// no CSRF token; its caller checks the browser holds the interaction's cookie).
    pub(crate) async fn interaction_at(
        &self,
        handle: &str,
        stage: Stage,
        now: Timestamp,
    ) -> Result<(Artifact, InteractionState)> {
        let a = handle_key(handle)
            .map(|k| async move { self.store.get_artifact(&k).await })
            .ok_or_else(|| form_refused("the sign-in request is unknown"))?
            .await?
            .filter(|a| a.kind == ArtifactKind::Interaction)
            .ok_or_else(|| form_refused("the sign-in request is unknown"))?;
        if a.expires_at <= now || a.consumed_at.is_some() || a.revoked_at.is_some() {
            return Err(form_refused(
                "the sign-in request has expired or was already completed",
            ));
        }
        let state: InteractionState = a.payload_as().map_err(Error::server)?;
        if state.stage != stage {
            return Err(form_refused(
                "the sign-in request is not waiting for a sign-in",
            ));
        }
        Ok((a, state))
    }

    /// The login page of an open interaction.
    pub(crate) fn login_page(
        &self,
        req: &AuthorizeRequest,
        handle: &str,
        state: &InteractionState,
        login_hint: Option<String>,
        error: Option<&str>,
    ) -> LoginPage {
        let level = self.level(req);
        LoginPage {
            interaction: handle.to_owned(),
            csrf: state.csrf.clone(),
            client_name: req.client.client.name.clone(),
            logo_uri: self.logo_uri(&req.client.client),
            login_hint: login_hint.or_else(|| req.login_hint.clone()),
            error: error.map(str::to_owned),
            passkey: state
                .challenge
                .as_ref()
                .map(|c| self.passkey_request(c, Vec::new())),
            password: level.takes_password(),
            idps: self.idp_buttons(&level),
        }
    }

    pub(crate) async fn pause_for_consent(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        session: &Session,
        settled: Settled,
        now: Timestamp,
    ) -> Result<ConsentPage> {
        let state = Self::new_state(
            Stage::Consent,
            params,
            Some(&session.user.id),
            &settled,
            now,
        );
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
            device_code: req.target.device.as_ref().map(|d| d.user_code.clone()),
        })
    }

    /// Re-checks the paused request (the client's settings may have changed meanwhile).
    pub(crate) async fn resume(
        &self,
        state: &InteractionState,
    ) -> std::result::Result<(AuthorizeRequest, Params), AuthorizeOutcome> {
        let params = state.request();
        match self.authorize_request(&params).await {
            Ok(r) => Ok((r, params)),
            Err(Rejection::Page(e)) => Err(AuthorizeOutcome::ErrorPage(e)),
            Err(Rejection::Redirect(t, e)) => Err(self.error_response(&t, &e).await),
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
            .open_interaction(
                form.interaction,
                form.csrf,
                form.cookie,
                &[Stage::Login],
                now,
            )
            .await?;
        let (req, _) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(LoginOutcome::Retry(o)),
        };
        let hint = Some(form.username.to_owned()).filter(|u| !u.is_empty());
        let page = |error: &str| {
            AuthorizeOutcome::Login(self.login_page(
                &req,
                form.interaction,
                &state,
                hint.clone(),
                Some(error),
            ))
        };
        if let Some(idp) = self.discovered_idp(&req, None, Some(form.username)) {
            let hint = Some(form.username);
            return self
                .upstream_or_page(&req, &idp, form.interaction, &state, hint, now)
                .await
                .map(LoginOutcome::Elsewhere);
        }
        if !self.level(&req).takes_password() {
            return Ok(LoginOutcome::Retry(page(
                "This application does not take a password. Use one of the ways below.",
            )));
        }
        let user = match self
            .check_credentials(
                form.username,
                form.password,
                form.address,
                &artifact.client_id,
                now,
            )
            .await?
        {
            CredentialCheck::Valid(u) => *u,
            CredentialCheck::Invalid => return Ok(LoginOutcome::Retry(page(WRONG_CREDENTIALS))),
            CredentialCheck::Throttled(retry_after) => {
                return Ok(LoginOutcome::Throttled {
                    page: page(THROTTLED),
                    retry_after,
                })
            }
        };
        self.complete_step(
            &artifact,
            &state,
            form.session_cookie,
            user,
            FactorUse::password(now),
            now,
        )
        .await
    }

    /// A factor was proved at the interaction `artifact`: it is used up as the user's session
    /// gains the factor (one write), and the paused request goes on.
    pub(crate) async fn complete_step(
        &self,
        artifact: &Artifact,
        state: &InteractionState,
        session_cookie: Option<&str>,
        user: crate::model::User,
        used: FactorUse,
        now: Timestamp,
    ) -> Result<LoginOutcome> {
        let previous = self.session(session_cookie, now).await?;
        let (cookie, session) = self
            .add_factor(previous, user, used, interaction(artifact), now)
            .await?
            .ok_or_else(already_completed)?;
        let sid = session.record.sid.clone();
        let outcome = self.go_on(state, session, now).await;
        Ok(LoginOutcome::Done {
            session_cookie: cookie,
            sid,
            outcome,
        })
    }

    /// Uses up the interaction `artifact` (once: a second post of its form is refused).
    pub(crate) async fn use_up(&self, artifact: &Artifact, now: Timestamp) -> Result<()> {
        match self
            .store
            .consume_artifact(interaction(artifact), now, None)
            .await?
        {
            Consumed::First(_) => Ok(()),
            _ => Err(already_completed()),
        }
    }

    /// The paused request goes on with `session` (re-checked: the client may have changed).
    pub(crate) async fn go_on(
        &self,
        state: &InteractionState,
        session: Session,
        now: Timestamp,
    ) -> AuthorizeOutcome {
        match self.resume(state).await {
            Ok((req, params)) => {
                let settled = Settled {
                    started: state.started,
                    consented: false,
                };
                self.proceed(&req, &params, Some(session), settled, now)
                    .await
            }
            Err(o) => o,
        }
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
                &[Stage::Consent],
                now,
            )
            .await?;
        let session = self
            .session(form.session_cookie, now)
            .await?
            .filter(|s| Some(&s.user.id) == state.user_id.as_ref())
            .ok_or_else(|| form_refused("you are no longer signed in as the user who was asked"))?;
        self.use_up(&artifact, now).await?;
        let (req, params) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(o),
        };
        if !form.approve {
            tracing::info!(user_id = %session.user.id, client_id = %artifact.client_id, "consent denied");
            return Ok(self
                .error_response(
                    &req.target,
                    &Error::access_denied("the user denied the request"),
                )
                .await);
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
            started: state.started,
            consented: true,
        };
        Ok(self
            .proceed(&req, &params, Some(session), settled, now)
            .await)
    }
}

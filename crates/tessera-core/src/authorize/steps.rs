//! The sign-in steps after the first factor, and the passkey first factor: a second factor
//! (a TOTP code, a passkey, a recovery code), setting one up when the scheme allows it, and the
//! recovery codes shown once. Each step is a form posted to its own endpoint with the
//! interaction's handle and CSRF token; every wrong answer gets one message, is counted by the
//! sign-in throttling and audited; a factor is written to the user only once it is confirmed.

use serde_json::json;

use super::interaction::{
    already_completed, form_refused, interaction, InteractionState, PasskeyRequest, Stage,
    THROTTLED,
};
use super::{AuthorizeOutcome, AuthorizeRequest, LoginOutcome, Settled};
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::credentials::{address_key, factor_key};
use crate::error::Result;
use crate::factor::webauthn::{self, Assertion, CeremonyError, RelyingParty, StoredKey};
use crate::factor::{recovery, totp, FactorUse, Method};
use crate::model::User;
use crate::params::Params;
use crate::provider::Provider;
use crate::secret::{b64url, b64url_decode, random_bytes};
use crate::session::Session;

/// The one message for any wrong code or passkey.
pub const WRONG_FACTOR: &str = "That did not work. Check the code or try another way.";

/// The second-factor page.
#[derive(Debug, Clone)]
pub struct FactorPage {
    pub interaction: String,
    pub csrf: String,
    pub client_name: String,
    pub logo_uri: Option<String>,
    pub username: String,
    pub totp: bool,
    pub passkey: Option<PasskeyRequest>,
    /// The user has recovery codes left.
    pub recovery: bool,
    /// The error was about a recovery code: that form shows open.
    pub recovery_open: bool,
    pub error: Option<String>,
}

/// A TOTP secret being set up: what the user types or scans.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// Base32, in groups of four.
    pub secret: String,
    /// The `otpauth://` URI (the QR code's content).
    pub uri: String,
}

/// What a page asks the browser's WebAuthn to create (`navigator.credentials.create`).
#[derive(Debug, Clone)]
pub struct PasskeyCreation {
    pub challenge: String,
    pub rp_id: String,
    pub rp_name: String,
    /// The user handle: the user id's bytes, base64url.
    pub user_handle: String,
    pub user_name: String,
    pub display_name: String,
    /// Credential ids the user holds already (base64url).
    pub exclude: Vec<String>,
    pub user_verification: &'static str,
    pub algorithms: Vec<i64>,
}

impl PasskeyCreation {
    /// The COSE algorithms offered, as the page's `data-algorithms` (`-7,-8,-257`).
    pub fn algorithm_list(&self) -> String {
        self.algorithms
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The enrolment page.
#[derive(Debug, Clone)]
pub struct EnrolPage {
    pub interaction: String,
    pub csrf: String,
    pub client_name: String,
    pub logo_uri: Option<String>,
    pub username: String,
    pub totp: Option<TotpSetup>,
    pub passkey: Option<PasskeyCreation>,
    pub error: Option<String>,
}

/// The new recovery codes, shown once.
#[derive(Debug, Clone)]
pub struct CodesPage {
    pub interaction: String,
    pub csrf: String,
    pub client_name: String,
    pub codes: Vec<String>,
}

/// The fields every step form posts.
#[derive(Debug, Clone, Copy)]
pub struct StepForm<'a> {
    pub interaction: &'a str,
    pub csrf: Option<&'a str>,
    /// The interaction cookie the browser sent.
    pub cookie: Option<&'a str>,
    /// The SSO session cookie the browser sent.
    pub session_cookie: Option<&'a str>,
    /// The client's address, for throttling.
    pub address: &'a str,
}

/// A WebAuthn assertion as the page posts it (base64url fields).
#[derive(Debug, Clone, Copy)]
pub struct PasskeyAnswer<'a> {
    pub credential_id: &'a str,
    pub client_data_json: &'a str,
    pub authenticator_data: &'a str,
    pub signature: &'a str,
    pub user_handle: &'a str,
}

/// What an enrolment form posts.
#[derive(Debug, Clone, Copy)]
pub enum Enrolment<'a> {
    /// The first code of the TOTP secret the page showed.
    Totp { code: &'a str },
    /// A WebAuthn registration (base64url fields) and the name the user gave the passkey.
    Passkey {
        client_data_json: &'a str,
        attestation_object: &'a str,
        name: &'a str,
    },
}

/// A step whose answer verified: its interaction and form.
#[derive(Clone, Copy)]
struct Proved<'a> {
    artifact: &'a crate::model::Artifact,
    state: &'a InteractionState,
    form: &'a StepForm<'a>,
}

/// Whether the session proved a second factor recently ([`crate::factor::RECENT`]).
struct SecondFactorProof(bool);

/// A user who holds a second factor adds another only with one proved recently in this session:
/// else the password alone would add a factor, and pass for two from then on.
fn may_add_factor(u: &User, proved: &SecondFactorProof) -> std::result::Result<(), Refusal> {
    if u.factors.has_second_factor() && !proved.0 {
        return Err("second_factor_not_proved");
    }
    Ok(())
}

/// Why a step's check failed: for the audit log; the user sees [`WRONG_FACTOR`].
type Refusal = &'static str;

fn decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > 16 * 1024 {
        return None;
    }
    b64url_decode(s)
}

/// A TOTP secret during enrolment, bound to the user and the page that showed it.
fn pending_context(user_id: &str, csrf: &str) -> String {
    format!("totp-pending\0{user_id}\0{csrf}")
}

impl Provider {
    /// The WebAuthn relying party: the issuer's host and origin.
    pub fn relying_party(&self) -> RelyingParty {
        self.relying_party.0.clone()
    }

    /// Whether passkeys can work here: a WebAuthn relying-party id is a domain (`localhost`
    /// included), never an IP address.
    pub fn passkeys_available(&self) -> bool {
        self.relying_party.1
    }

    pub(crate) fn passkey_request(&self, challenge: &str, allow: Vec<String>) -> PasskeyRequest {
        let rp = self.relying_party();
        PasskeyRequest {
            challenge: challenge.to_owned(),
            rp_id: rp.id,
            user_verification: rp.user_verification.as_str(),
            allow,
        }
    }

    pub(crate) fn passkey_creation(&self, challenge: &str, user: &User) -> PasskeyCreation {
        let rp = self.relying_party();
        let display = user
            .claims
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or(&user.username)
            .to_owned();
        PasskeyCreation {
            challenge: challenge.to_owned(),
            rp_name: rp.id.clone(),
            rp_id: rp.id,
            user_handle: b64url(user.id.as_bytes()),
            user_name: user.username.clone(),
            display_name: display,
            exclude: user.factors.passkeys.iter().map(|p| p.id.clone()).collect(),
            user_verification: rp.user_verification.as_str(),
            algorithms: webauthn::ALGORITHMS.to_vec(),
        }
    }

    /// Pauses for a second factor of the signed-in user: one of `methods`, or a recovery code.
    pub(crate) async fn pause_for_factor(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        session: &Session,
        methods: &[Method],
        settled: &Settled,
        now: Timestamp,
    ) -> Result<FactorPage> {
        let mut state =
            Self::new_state(Stage::Factor, params, Some(&session.user.id), settled, now);
        state.methods = methods.to_vec();
        if state.methods.contains(&Method::Passkey) {
            state.challenge = Some(b64url(&random_bytes::<32>()));
        }
        let handle = self
            .store_interaction(&state, &req.client.client.client_id, now)
            .await?;
        Ok(self.factor_page(req, &handle, &state, &session.user, None))
    }

    fn factor_page(
        &self,
        req: &AuthorizeRequest,
        handle: &str,
        state: &InteractionState,
        user: &User,
        error: Option<&str>,
    ) -> FactorPage {
        let f = &user.factors;
        FactorPage {
            interaction: handle.to_owned(),
            csrf: state.csrf.clone(),
            client_name: req.client.client.name.clone(),
            logo_uri: self.logo_uri(&req.client.client),
            username: user.username.clone(),
            totp: state.methods.contains(&Method::Totp) && f.totp.is_some(),
            passkey: state
                .challenge
                .as_ref()
                .filter(|_| !f.passkeys.is_empty())
                .map(|c| {
                    self.passkey_request(c, f.passkeys.iter().map(|p| p.id.clone()).collect())
                }),
            recovery: f.recovery_left() > 0,
            recovery_open: false,
            error: error.map(str::to_owned),
        }
    }

    /// Pauses for the signed-in user to set up one of `methods`.
    pub(crate) async fn pause_for_enrol(
        &self,
        req: &AuthorizeRequest,
        params: &Params,
        session: &Session,
        methods: &[Method],
        settled: &Settled,
        now: Timestamp,
    ) -> Result<EnrolPage> {
        let mut state = Self::new_state(Stage::Enrol, params, Some(&session.user.id), settled, now);
        state.methods = methods.to_vec();
        if !self.passkeys_available() {
            state.methods.retain(|m| *m != Method::Passkey);
        }
        if state.methods.contains(&Method::Totp) {
            let secret = random_bytes::<{ totp::SECRET_LEN }>();
            let context = pending_context(&session.user.id, &state.csrf);
            state.pending_totp = Some(self.master.encrypt(&context, &secret));
        }
        if state.methods.contains(&Method::Passkey) {
            state.challenge = Some(b64url(&random_bytes::<32>()));
        }
        let handle = self
            .store_interaction(&state, &req.client.client.client_id, now)
            .await?;
        Ok(self.enrol_page(req, &handle, &state, &session.user, None))
    }

    fn pending_secret(&self, state: &InteractionState, user: &User) -> Option<Vec<u8>> {
        let context = pending_context(&user.id, &state.csrf);
        self.master
            .decrypt(&context, state.pending_totp.as_deref()?)
            .ok()
    }

    fn enrol_page(
        &self,
        req: &AuthorizeRequest,
        handle: &str,
        state: &InteractionState,
        user: &User,
        error: Option<&str>,
    ) -> EnrolPage {
        let label = self.relying_party().id;
        let totp = self.pending_secret(state, user).map(|secret| {
            let b32 = totp::base32(&secret);
            let grouped: Vec<String> = b32
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            TotpSetup {
                secret: grouped.join(" "),
                uri: totp::uri(&label, &user.username, &secret),
            }
        });
        EnrolPage {
            interaction: handle.to_owned(),
            csrf: state.csrf.clone(),
            client_name: req.client.client.name.clone(),
            logo_uri: self.logo_uri(&req.client.client),
            username: user.username.clone(),
            totp,
            passkey: state
                .challenge
                .as_ref()
                .map(|c| self.passkey_creation(c, user)),
            error: error.map(str::to_owned),
        }
    }

    /// Counts this attempt against the account's second factors before the answer is judged
    /// (so parallel guesses cannot all be judged within the limit), and checks the address's
    /// failures: the seconds to wait when either is over its limit. `username` is the account
    /// the step is for, when it is known.
    async fn step_attempt(
        &self,
        username: Option<&str>,
        address: &str,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let t = &self.settings.throttle;
        let address_key = address_key(address);
        if let Some(wait) = self
            .throttled(&[(&address_key, t.per_address)], now)
            .await?
        {
            return Ok(Some(wait));
        }
        let Some(u) = username else {
            return Ok(None);
        };
        let key = factor_key(u);
        let attempts = self.store.count_failure(&key, now, t.window).await?;
        if attempts > t.per_account {
            return self.throttled(&[(&key, t.per_account)], now).await;
        }
        Ok(None)
    }

    /// A factor was proved at a step: the account's count of second-factor attempts starts over
    /// (this one was counted before it was judged), the use is audited (`detail` says which
    /// factor), and the sign-in goes on.
    async fn proved(
        &self,
        step: Proved<'_>,
        user: User,
        used: FactorUse,
        mut detail: serde_json::Value,
        now: Timestamp,
    ) -> Result<LoginOutcome> {
        self.store
            .clear_failures(&factor_key(&user.username))
            .await?;
        detail["address"] = json!(step.form.address);
        self.record(
            &Actor::user(&user.id),
            "factor.used",
            &format!("user:{}", user.id),
            Some(&step.artifact.client_id),
            detail,
        )
        .await;
        let cookie = step.form.session_cookie;
        self.complete_step(step.artifact, step.state, cookie, user, used, now)
            .await
    }

    /// Counts a failed step against the address (the account's count has it already), and
    /// audits it.
    async fn step_failed(
        &self,
        user: Option<&User>,
        address: &str,
        client_id: &str,
        what: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.count_failures(&[&address_key(address)], now).await?;
        let target = user.map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
        self.record(
            &Actor(format!("address:{address}")),
            "sign_in.factor_failed",
            &target,
            Some(client_id),
            json!({"address": address, "factor": what, "reason": reason}),
        )
        .await;
        Ok(())
    }

    /// The interaction a step form names, open at one of `stages`, with its CSRF token and
    /// cookie checked.
    async fn open_step(
        &self,
        form: &StepForm<'_>,
        stages: &[Stage],
        now: Timestamp,
    ) -> Result<(crate::model::Artifact, InteractionState)> {
        self.open_interaction(form.interaction, form.csrf, form.cookie, stages, now)
            .await
    }

    /// The step's user: the session's, who the interaction was paused for.
    async fn step_user(
        &self,
        state: &InteractionState,
        session_cookie: Option<&str>,
        now: Timestamp,
    ) -> Result<Session> {
        self.session(session_cookie, now)
            .await?
            .filter(|s| Some(&s.user.id) == state.user_id.as_ref())
            .ok_or_else(|| form_refused("you are no longer signed in as the user who was asked"))
    }

    /// `POST /login/code`: a TOTP code, or a recovery code, as the second factor.
    pub async fn submit_code(
        &self,
        form: &StepForm<'_>,
        code: &str,
        recovery_code: bool,
    ) -> LoginOutcome {
        match self.try_code(form, code, recovery_code).await {
            Ok(o) => o,
            Err(e) => LoginOutcome::Refused(e),
        }
    }

    async fn try_code(
        &self,
        form: &StepForm<'_>,
        code: &str,
        recovery_code: bool,
    ) -> Result<LoginOutcome> {
        let now = self.now();
        let (artifact, state) = self.open_step(form, &[Stage::Factor], now).await?;
        let session = self.step_user(&state, form.session_cookie, now).await?;
        let (req, _) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(LoginOutcome::Retry(o)),
        };
        let user = &session.user;
        let page = |error: &str, user: &User| {
            AuthorizeOutcome::Factor(FactorPage {
                recovery_open: recovery_code,
                ..self.factor_page(&req, form.interaction, &state, user, Some(error))
            })
        };
        if let Some(retry_after) = self
            .step_attempt(Some(&user.username), form.address, now)
            .await?
        {
            return Ok(LoginOutcome::Throttled {
                page: page(THROTTLED, user),
                retry_after,
            });
        }
        let what = if recovery_code {
            "recovery_code"
        } else {
            "totp"
        };
        let master = &self.master;
        let checked = if recovery_code {
            self.change_user(
                &user.id,
                now,
                || "unknown_user",
                |u| {
                    let id = u.id.clone();
                    let codes = u.factors.recovery.as_mut().ok_or("no_recovery_codes")?;
                    let i =
                        recovery::find(master, &id, &codes.digests, code).ok_or("wrong_code")?;
                    codes.digests.remove(i);
                    Ok(FactorUse::recovery(now))
                },
            )
            .await?
        } else if state.methods.contains(&Method::Totp) {
            self.change_user(
                &user.id,
                now,
                || "unknown_user",
                |u| {
                    let context = crate::user_factors::totp_context(&u.id);
                    let t = u.factors.totp.as_mut().ok_or("no_totp")?;
                    let secret = master
                        .decrypt(&context, &t.secret_ciphertext)
                        .map_err(|_| "undecryptable")?;
                    let step = totp::verify(&secret, code, now, t.last_step).ok_or("wrong_code")?;
                    t.last_step = step;
                    t.last_used_at = Some(now);
                    Ok(FactorUse::totp(now))
                },
            )
            .await?
        } else {
            Err("not_offered")
        };
        match checked {
            Ok((user, used)) => {
                let detail =
                    json!({"factor": what, "recovery_codes_left": user.factors.recovery_left()});
                let step = Proved {
                    artifact: &artifact,
                    state: &state,
                    form,
                };
                self.proved(step, user, used, detail, now).await
            }
            Err(reason) => {
                self.step_failed(
                    Some(user),
                    form.address,
                    &artifact.client_id,
                    what,
                    reason,
                    now,
                )
                .await?;
                Ok(LoginOutcome::Retry(page(WRONG_FACTOR, user)))
            }
        }
    }

    /// `POST /login/passkey`: a passkey, as the first factor (passwordless, the user found by
    /// the credential's user handle) or as the signed-in user's second factor.
    pub async fn submit_passkey(
        &self,
        form: &StepForm<'_>,
        answer: &PasskeyAnswer<'_>,
    ) -> LoginOutcome {
        match self.try_passkey(form, answer).await {
            Ok(o) => o,
            Err(e) => LoginOutcome::Refused(e),
        }
    }

    async fn try_passkey(
        &self,
        form: &StepForm<'_>,
        answer: &PasskeyAnswer<'_>,
    ) -> Result<LoginOutcome> {
        let now = self.now();
        let (artifact, state) = self
            .open_step(form, &[Stage::Login, Stage::Factor], now)
            .await?;
        let challenge = state
            .challenge
            .as_deref()
            .and_then(b64url_decode)
            .ok_or_else(|| form_refused("this page does not offer a passkey"))?;
        let (req, _) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(LoginOutcome::Retry(o)),
        };
        // The second factor is the signed-in user's; the first, whoever the credential names.
        let known = match state.stage {
            Stage::Factor => Some(self.step_user(&state, form.session_cookie, now).await?.user),
            _ => None,
        };
        let user_id = match &known {
            Some(u) => Some(u.id.clone()),
            None => decode(answer.user_handle).and_then(|h| String::from_utf8(h).ok()),
        };
        let found = match &user_id {
            Some(id) => self.store.get_user(id).await?.filter(|u| !u.blocked),
            None => None,
        };
        let retry = |error: &str, user: Option<&User>| match (state.stage, user) {
            (Stage::Factor, Some(u)) => AuthorizeOutcome::Factor(self.factor_page(
                &req,
                form.interaction,
                &state,
                u,
                Some(error),
            )),
            _ => AuthorizeOutcome::Login(self.login_page(
                &req,
                form.interaction,
                &state,
                None,
                Some(error),
            )),
        };
        if let Some(retry_after) = self
            // A passkey's signature cannot be guessed: a passwordless answer counts against the
            // address only, so naming someone's user handle cannot lock their second factor.
            .step_attempt(
                known.as_ref().map(|u| u.username.as_str()),
                form.address,
                now,
            )
            .await?
        {
            return Ok(LoginOutcome::Throttled {
                page: retry(THROTTLED, known.as_ref()),
                retry_after,
            });
        }
        let rp = self.relying_party();
        let parts = (
            decode(answer.client_data_json),
            decode(answer.authenticator_data),
            decode(answer.signature),
        );
        let checked = match (&found, parts) {
            (Some(u), (Some(cd), Some(ad), Some(sig))) => {
                let assertion = Assertion {
                    client_data_json: &cd,
                    authenticator_data: &ad,
                    signature: &sig,
                };
                self.change_user(
                    &u.id,
                    now,
                    || "unknown_user",
                    |u| {
                        let p = u
                            .factors
                            .passkeys
                            .iter_mut()
                            .find(|p| p.id == answer.credential_id)
                            .ok_or(CeremonyError::UnknownCredential.reason())?;
                        let public_key = b64url_decode(&p.public_key)
                            .ok_or(CeremonyError::PublicKey.reason())?;
                        let key = StoredKey {
                            public_key: &public_key,
                            alg: p.alg,
                            sign_count: p.sign_count,
                        };
                        let ok = webauthn::verify_assertion(&rp, &challenge, &assertion, key)
                            .map_err(CeremonyError::reason)?;
                        p.sign_count = ok.sign_count;
                        p.last_used_at = Some(now);
                        Ok(FactorUse::passkey(
                            now,
                            ok.backup_eligible,
                            ok.user_verified,
                        ))
                    },
                )
                .await?
            }
            (Some(_), _) => Err(CeremonyError::ClientData.reason()),
            (None, _) => Err(CeremonyError::UnknownCredential.reason()),
        };
        match checked {
            Ok((user, used)) => {
                let detail = json!({"factor": "passkey", "credential": answer.credential_id});
                let step = Proved {
                    artifact: &artifact,
                    state: &state,
                    form,
                };
                self.proved(step, user, used, detail, now).await
            }
            Err(reason) => {
                self.step_failed(
                    found.as_ref(),
                    form.address,
                    &artifact.client_id,
                    "passkey",
                    reason,
                    now,
                )
                .await?;
                Ok(LoginOutcome::Retry(retry(WRONG_FACTOR, known.as_ref())))
            }
        }
    }

    /// `POST /login/enrol`: the signed-in user sets up a factor. Nothing is written until it
    /// is confirmed (a first code, a verified registration); the first second factor comes with
    /// recovery codes, shown once.
    pub async fn submit_enrolment(
        &self,
        form: &StepForm<'_>,
        enrolment: &Enrolment<'_>,
    ) -> LoginOutcome {
        match self.try_enrolment(form, enrolment).await {
            Ok(o) => o,
            Err(e) => LoginOutcome::Refused(e),
        }
    }

    async fn try_enrolment(
        &self,
        form: &StepForm<'_>,
        enrolment: &Enrolment<'_>,
    ) -> Result<LoginOutcome> {
        let now = self.now();
        let (artifact, state) = self.open_step(form, &[Stage::Enrol], now).await?;
        let session = self.step_user(&state, form.session_cookie, now).await?;
        let (req, _) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(LoginOutcome::Retry(o)),
        };
        let user = &session.user;
        let page = |error: &str| {
            AuthorizeOutcome::Enrol(self.enrol_page(
                &req,
                form.interaction,
                &state,
                user,
                Some(error),
            ))
        };
        if let Some(retry_after) = self
            .step_attempt(Some(&user.username), form.address, now)
            .await?
        {
            return Ok(LoginOutcome::Throttled {
                page: page(THROTTLED),
                retry_after,
            });
        }
        let (what, checked) = match *enrolment {
            Enrolment::Totp { code } => {
                ("totp", self.enrol_totp(&state, &session, code, now).await?)
            }
            Enrolment::Passkey {
                client_data_json,
                attestation_object,
                name,
            } => (
                "passkey",
                self.enrol_passkey(
                    &state,
                    &session,
                    client_data_json,
                    attestation_object,
                    name,
                    now,
                )
                .await?,
            ),
        };
        let (user, (used, codes)) = match checked {
            Ok(x) => x,
            Err(reason) => {
                self.step_failed(
                    Some(user),
                    form.address,
                    &artifact.client_id,
                    what,
                    reason,
                    now,
                )
                .await?;
                return Ok(LoginOutcome::Retry(page(WRONG_FACTOR)));
            }
        };
        // Set up: the attempts counted for the account start over.
        self.store
            .clear_failures(&factor_key(&user.username))
            .await?;
        let target = format!("user:{}", user.id);
        self.record(
            &Actor::user(&user.id),
            "factor.enrolled",
            &target,
            Some(&artifact.client_id),
            json!({"factor": what}),
        )
        .await;
        if codes.is_some() {
            self.record(
                &Actor::user(&user.id),
                "recovery_codes.generated",
                &target,
                Some(&artifact.client_id),
                json!({"count": recovery::COUNT}),
            )
            .await;
        }
        let Some(codes) = codes else {
            return self
                .complete_step(&artifact, &state, form.session_cookie, user, used, now)
                .await;
        };
        // The codes are shown once, on a page of their own; the request goes on from there.
        let previous = self.session(form.session_cookie, now).await?;
        let (cookie, session) = self
            .add_factor(previous, user, used, interaction(&artifact), now)
            .await?
            .ok_or_else(already_completed)?;
        let settled = Settled {
            started: state.started,
            consented: false,
        };
        let params = state.request();
        let next = Self::new_state(Stage::Codes, &params, Some(&session.user.id), &settled, now);
        let handle = self
            .store_interaction(&next, &artifact.client_id, now)
            .await?;
        Ok(LoginOutcome::Done {
            session_cookie: cookie,
            sid: session.record.sid.clone(),
            outcome: AuthorizeOutcome::Codes(CodesPage {
                interaction: handle,
                csrf: next.csrf,
                client_name: req.client.client.name.clone(),
                codes,
            }),
        })
    }

    async fn enrol_totp(
        &self,
        state: &InteractionState,
        session: &Session,
        code: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<(User, (FactorUse, Option<Vec<String>>)), Refusal>> {
        // Judged again as the factor is written: the page may have been opened before the
        // user held a factor.
        let proved = SecondFactorProof(crate::factor::second_factor_recent(
            &session.record.uses(),
            now,
        ));
        let user = &session.user;
        if !state.methods.contains(&Method::Totp) {
            return Ok(Err("not_offered"));
        }
        let Some(secret) = self.pending_secret(state, user) else {
            return Ok(Err("no_pending_secret"));
        };
        let Some(step) = totp::verify(&secret, code, now, 0) else {
            return Ok(Err("wrong_code"));
        };
        self.change_user(
            &user.id,
            now,
            || "unknown_user",
            |u| {
                may_add_factor(u, &proved)?;
                Ok((FactorUse::totp(now), self.add_totp(u, &secret, step, now)?))
            },
        )
        .await
    }

    async fn enrol_passkey(
        &self,
        state: &InteractionState,
        session: &Session,
        client_data_json: &str,
        attestation_object: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<(User, (FactorUse, Option<Vec<String>>)), Refusal>> {
        // Judged again as the factor is written: the page may have been opened before the
        // user held a factor.
        let proved = SecondFactorProof(crate::factor::second_factor_recent(
            &session.record.uses(),
            now,
        ));
        let user = &session.user;
        let challenge = match state.challenge.as_deref().and_then(b64url_decode) {
            Some(c) if state.methods.contains(&Method::Passkey) => c,
            _ => return Ok(Err("not_offered")),
        };
        let (Some(cd), Some(att)) = (decode(client_data_json), decode(attestation_object)) else {
            return Ok(Err(CeremonyError::ClientData.reason()));
        };
        let cred = match webauthn::verify_registration(&self.relying_party(), &challenge, &cd, &att)
        {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.reason())),
        };
        let used = FactorUse::passkey(now, cred.backup_eligible, cred.user_verified);
        self.change_user(
            &user.id,
            now,
            || "unknown_user",
            |u| {
                may_add_factor(u, &proved)?;
                Ok((used.clone(), self.add_passkey(u, &cred, name, now)?))
            },
        )
        .await
    }

    /// `POST /login/continue`: the user saw the recovery codes; the request goes on.
    pub async fn continue_sign_in(&self, form: &StepForm<'_>) -> AuthorizeOutcome {
        match self.try_continue(form).await {
            Ok(o) => o,
            Err(e) => AuthorizeOutcome::ErrorPage(e),
        }
    }

    async fn try_continue(&self, form: &StepForm<'_>) -> Result<AuthorizeOutcome> {
        let now = self.now();
        let (artifact, state) = self.open_step(form, &[Stage::Codes], now).await?;
        let session = self.step_user(&state, form.session_cookie, now).await?;
        self.use_up(&artifact, now).await?;
        Ok(self.go_on(&state, session, now).await)
    }
}

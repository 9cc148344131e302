//! Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0), poll and ping modes: a
//! confidential application names the user (`login_hint`, `id_token_hint` or `login_hint_token`)
//! at `/bc-authorize` (§7); the user approves or denies on Tessera's account page (where the
//! request waits, with its binding message) or through whatever the administrator's notifier
//! offers on top of the admin API's list of pending requests; the application polls the token
//! endpoint, or in ping mode is told at its notification endpoint first (§10.2). Polling and the
//! one decision per request are [`crate::decoupled`]'s.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::assertion::check_times;
use crate::client_auth::{Answered, ClientRequest};
use crate::clock::Timestamp;
use crate::decoupled::{Decoupled, POLL_INTERVAL};
use crate::error::{Error, ErrorCode, Result};
use crate::grant::{Caller, TokenResponse};
use crate::model::{Artifact, ArtifactKind, BackchannelMode, GrantType, User};
use crate::outbound::Request;
use crate::params::{parse_scope, Params};
use crate::provider::{LoadedClient, Provider};
use crate::secret::{b64url, new_handle};
use crate::session::Session;
use crate::user_grant::GrantRecord;

/// Seconds a request waits for its user when the application asks for no `requested_expiry`.
pub const DEFAULT_EXPIRY: i64 = 300;
/// The longest and shortest `requested_expiry` honoured (longer ones are cut to this).
pub const EXPIRY_RANGE: (i64, i64) = (30, 1_800);
/// CIBA §7.1: a binding message is short, shown on both devices.
const MAX_BINDING_MESSAGE: usize = 100;

/// Requests one application may have waiting for one user (more are refused until some are
/// decided or expire): a user's account page is not a place to flood.
const PENDING_PER_USER: i64 = 5;
/// Requests one application may make a minute (each names a user, so each is a lookup).
const REQUESTS_PER_MINUTE: i64 = 300;
/// The most requests the account page and the admin API show (the soonest to expire first).
const SHOWN: usize = 20;

/// CIBA §7.1: "a limited set of plain text characters": letters and digits (composed, no
/// combining marks), ASCII punctuation and spaces; no format, control or bidirectional
/// characters that could make the page say something else.
fn plain_message(m: &str) -> bool {
    use unicode_normalization::char::is_combining_mark;
    m.chars().all(|c| {
        c == ' ' || c.is_ascii_punctuation() || (c.is_alphanumeric() && !is_combining_mark(c))
    })
}

/// RFC 6750 §2.1 b64token: what CIBA §7.1 asks a `client_notification_token` to be.
fn b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// CIBA §7.3: the answer to a backchannel authentication request.
#[derive(Clone, Serialize)]
pub struct BackchannelResponse {
    pub auth_req_id: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Never the `auth_req_id`.
impl std::fmt::Debug for BackchannelResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackchannelResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What a backchannel request remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BackchannelRecord {
    scope: Vec<String>,
    #[serde(default)]
    binding_message: Option<String>,
    /// Ping mode: the `auth_req_id` and the application's `client_notification_token`, sealed
    /// under the master key (the notification carries both).
    #[serde(default)]
    ping: Option<String>,
}

/// A request waiting for its user, as the account page and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PendingBackchannel {
    /// What the decision names (not the `auth_req_id`).
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub user_id: String,
    pub scope: Vec<String>,
    pub binding_message: Option<String>,
    pub expires_at: Timestamp,
}

fn ping_context(request_b64: &str) -> String {
    format!("backchannel-ping:{request_b64}")
}

impl Provider {
    /// `POST /bc-authorize` (CIBA §7.1): the application authenticates as at the token endpoint.
    pub async fn backchannel_authentication(
        &self,
        req: &ClientRequest,
    ) -> Answered<BackchannelResponse> {
        let loaded = match self.authenticate_client(req).await {
            Ok(c) => c,
            Err(e) => return Answered::anonymous(e),
        };
        let me = loaded.client.client_id.clone();
        let answer = self.start_backchannel(&loaded, &req.params).await;
        Answered::for_client(&me, answer)
    }

    async fn start_backchannel(
        &self,
        loaded: &LoadedClient,
        p: &Params,
    ) -> Result<BackchannelResponse> {
        let now = self.now();
        let client = &loaded.client;
        if !client.grant_types.contains(&GrantType::Ciba) {
            return Err(Error::unauthorized_client(
                "the client is not allowed to use CIBA (the urn:openid:params:grant-type:ciba grant)",
            ));
        }
        // §7.1: scope is required and includes openid.
        let scope = parse_scope(p.require("scope")?)?;
        if !scope.iter().any(|s| s == "openid") {
            return Err(Error::invalid_scope("CIBA requests need the openid scope"));
        }
        let scope = self.user_grant_scope(loaded, Some(scope))?;
        if p.get("user_code")?.is_some() {
            return Err(Error::invalid_request(
                "user_code is not supported (backchannel_user_code_parameter_supported is false)",
            ));
        }
        let busy = self
            .store
            .count_failure(&format!("ciba:{}", client.client_id), now, 60)
            .await?;
        if busy > REQUESTS_PER_MINUTE {
            return Err(Error::throttled(ErrorCode::InvalidRequest, 60));
        }
        let user = self.hinted_user(loaded, p, now).await?;
        self.user_may_use(loaded, &user)
            .map_err(|e| Error::access_denied(e.description))?;
        let binding_message = match p.get("binding_message")? {
            Some(m)
                if m.chars().count() > MAX_BINDING_MESSAGE
                    || !plain_message(m)
                    || m.trim().is_empty() =>
            {
                return Err(Error::new(
                    ErrorCode::InvalidBindingMessage,
                    format!("binding_message must be at most {MAX_BINDING_MESSAGE} letters, digits, spaces and ASCII punctuation"),
                ))
            }
            m => m.map(str::to_owned),
        };
        let expires_in = match p.get("requested_expiry")? {
            None => DEFAULT_EXPIRY,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::invalid_request("requested_expiry must be a positive integer")
                })?
                .clamp(EXPIRY_RANGE.0, EXPIRY_RANGE.1),
        };
        let mode = client
            .backchannel
            .backchannel_token_delivery_mode
            .unwrap_or(BackchannelMode::Poll);
        let token = p.get("client_notification_token")?;
        let (handle, key) = new_handle();
        let ping = match (mode, token) {
            (BackchannelMode::Ping, None) => {
                return Err(Error::invalid_request(
                    "client_notification_token is required in ping mode",
                ))
            }
            (BackchannelMode::Ping, Some(t)) if t.len() > 1024 || !b64token(t) => {
                return Err(Error::invalid_request(
                    "client_notification_token must be a bearer token (RFC 6750 §2.1) of at most 1024 characters",
                ))
            }
            (BackchannelMode::Ping, Some(t)) => Some(self.master.encrypt(
                &ping_context(&b64url(&key.0)),
                json!([handle, t]).to_string().as_bytes(),
            )),
            (BackchannelMode::Poll, _) => None,
        };
        let waiting = self
            .store
            .count_failure(
                &format!("ciba-pending:{}:{}", client.client_id, user.id),
                now,
                expires_in,
            )
            .await?;
        if waiting > PENDING_PER_USER {
            return Err(Error::throttled(ErrorCode::InvalidRequest, expires_in));
        }
        let record = BackchannelRecord {
            scope,
            binding_message,
            ping,
        };
        self.store
            .insert_artifact(&Artifact {
                key,
                kind: ArtifactKind::BackchannelRequest,
                client_id: client.client_id.clone(),
                grant_id: None,
                // The user's requests are found by the user (the account page).
                user_id: Some(user.id.clone()),
                expires_at: now.plus(expires_in),
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::to_value(&record).map_err(Error::server)?,
            })
            .await?;
        tracing::info!(client_id = %client.client_id, user_id = %user.id, "backchannel authentication requested");
        Ok(BackchannelResponse {
            auth_req_id: handle,
            expires_in,
            interval: POLL_INTERVAL,
        })
    }

    /// CIBA §7.1: the user the one hint names; `unknown_user_id` when it names none (or a
    /// blocked one, which is not told apart).
    async fn hinted_user(&self, loaded: &LoadedClient, p: &Params, now: Timestamp) -> Result<User> {
        let hints = [
            p.get("login_hint")?,
            p.get("id_token_hint")?,
            p.get("login_hint_token")?,
        ];
        let unknown = || {
            Error::new(
                ErrorCode::UnknownUserId,
                "the hint does not name a user who can be asked",
            )
        };
        let user = match hints {
            [Some(name), None, None] => self.user_by_name(name).await?,
            [None, Some(token), None] => {
                let claims = self.id_token_hint(token, loaded).ok_or_else(|| {
                    Error::invalid_request(
                        "id_token_hint is not an ID token this server issued to the client",
                    )
                })?;
                let sub = claims["sub"].as_str().unwrap_or_default();
                match self.user_by_name(sub).await? {
                    Some(u) if self.subject(&loaded.client, &u).ok().as_deref() == Some(sub) => {
                        Some(u)
                    }
                    _ => None,
                }
            }
            [None, None, Some(token)] => self.login_hint_token(loaded, token, now).await?,
            _ => {
                return Err(Error::invalid_request(
                    "exactly one of login_hint, id_token_hint and login_hint_token is required",
                ))
            }
        };
        user.filter(|u| !u.blocked).ok_or_else(unknown)
    }

    /// A `login_hint_token`: a JWT of an issuer the application trusts, for Tessera (`aud` the
    /// issuer or the endpoint), living at most an hour, used once (`jti`), naming the user by id
    /// or username in `sub`.
    async fn login_hint_token(
        &self,
        loaded: &LoadedClient,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<User>> {
        let refused =
            |why: &str| Error::invalid_request(format!("login_hint_token refused: {why}"));
        let (issuer, claims) = self
            .verify_trusted_jwt(loaded, token)
            .await
            .map_err(|why| refused(&why))?;
        let audiences = [
            self.settings.issuer.clone(),
            self.settings.endpoint("/bc-authorize"),
        ];
        if !crate::assertion::audience_ok(&claims, &audiences) {
            return Err(refused(
                "aud must be the issuer or the backchannel authentication endpoint",
            ));
        }
        let exp =
            check_times(&claims, now, self.settings.clock_skew, Some(3_600)).map_err(|why| {
                if why.contains("expired") {
                    Error::new(
                        ErrorCode::ExpiredLoginHintToken,
                        format!("login_hint_token refused: {why}"),
                    )
                } else {
                    refused(why)
                }
            })?;
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| refused("jti is required"))?;
        if !self
            .first_use_of_jti("login-hint-token", &issuer.issuer, jti, exp)
            .await?
        {
            return Err(refused("this jti was already used"));
        }
        let sub = claims["sub"].as_str().unwrap_or_default();
        if sub.is_empty() || sub.len() > 320 {
            return Ok(None);
        }
        Ok(match self.store.get_user(sub).await? {
            Some(u) => Some(u),
            None => self.store.find_user(sub).await?,
        })
    }

    /// A user by id, username or (when only one user has it) e-mail address.
    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        if name.is_empty() || name.len() > 320 {
            return Ok(None);
        }
        if let Some(u) = self.store.get_user(name).await? {
            return Ok(Some(u));
        }
        if let Some(u) = self.store.find_user(name).await? {
            return Ok(Some(u));
        }
        let mut by_mail = self.store.find_users_by_email(name, 2).await?;
        Ok((by_mail.len() == 1).then(|| by_mail.remove(0)))
    }

    /// The user's requests waiting for a decision, soonest to expire first.
    pub async fn pending_backchannel(&self, user_id: &str) -> Result<Vec<PendingBackchannel>> {
        let now = self.now();
        let mut out = Vec::new();
        for a in self.store.user_artifacts(user_id).await? {
            if a.kind != ArtifactKind::BackchannelRequest
                || a.expires_at <= now
                || a.consumed_at.is_some()
                || a.revoked_at.is_some()
            {
                continue;
            }
            let id = b64url(&a.key.0);
            if self.decided(Decoupled::Backchannel, &id).await? {
                continue;
            }
            let Ok(record) = a.payload_as::<BackchannelRecord>() else {
                continue;
            };
            let client_name = self
                .client(&a.client_id)
                .await?
                .map(|c| c.client.name.clone())
                .unwrap_or_default();
            out.push(PendingBackchannel {
                id,
                client_id: a.client_id,
                client_name,
                user_id: user_id.to_owned(),
                scope: record.scope,
                binding_message: record.binding_message,
                expires_at: a.expires_at,
            });
        }
        out.sort_by_key(|p| p.expires_at.0);
        out.truncate(SHOWN);
        Ok(out)
    }

    /// The signed-in user decides on one of their requests (the account page). Approving makes
    /// the grant the application's tokens come from, with how the user signed in to the account
    /// page (which a recent sign-in with the user's second factor backs, as for other account
    /// changes); in ping mode the application is told.
    pub async fn decide_backchannel(
        &self,
        session: &Session,
        id: &str,
        approve: bool,
        recent: bool,
    ) -> Result<()> {
        let now = self.now();
        let gone = || Error::invalid_request("the request is unknown, decided already or expired");
        let request = self
            .decoupled_request(Decoupled::Backchannel, id, now)
            .await?
            .filter(|a| a.user_id.as_deref() == Some(session.user.id.as_str()))
            .ok_or_else(gone)?;
        let record: BackchannelRecord = request.payload_as().map_err(Error::server)?;
        let grant = if approve {
            if !recent {
                return Err(Error::access_denied(
                    "sign in again (with your second factor) to approve a sign-in request",
                ));
            }
            let loaded = self.client(&request.client_id).await?.ok_or_else(gone)?;
            Some(
                self.approve_backchannel(&loaded, session, &record, now)
                    .await?,
            )
        } else {
            None
        };
        if !self
            .record_decision(Decoupled::Backchannel, id, grant.as_deref(), now)
            .await?
        {
            if let Some(g) = &grant {
                self.revoke_grant(g, now).await?;
            }
            return Err(gone());
        }
        tracing::info!(client_id = %request.client_id, user_id = %session.user.id, approve, "backchannel authentication decided");
        self.record(
            &crate::audit::Actor::user(&session.user.id),
            if approve {
                "backchannel.approved"
            } else {
                "backchannel.denied"
            },
            &format!("user:{}", session.user.id),
            Some(&request.client_id),
            json!({ "binding_message": record.binding_message }),
        )
        .await;
        if let Some(sealed) = &record.ping {
            self.ping(&request, id, sealed).await;
        }
        Ok(())
    }

    /// The grant an approval makes: only when the user's sign-in to the account page meets the
    /// application's authentication scheme (as a sign-in to it would have to) and the user may
    /// use it; the approval is the user's consent, recorded as such (so the account page lists
    /// it and revoking it ends the grant).
    async fn approve_backchannel(
        &self,
        loaded: &LoadedClient,
        session: &Session,
        record: &BackchannelRecord,
        now: Timestamp,
    ) -> Result<String> {
        use crate::authorize::level::{next, Next};
        let client = &loaded.client;
        self.user_may_use(loaded, &session.user)
            .map_err(|e| Error::access_denied(e.description))?;
        let scheme = self.scheme_of(client);
        let uses = session.record.uses();
        let met = next(
            std::slice::from_ref(&scheme),
            &session.user.factors,
            &uses,
            now,
            None,
        ) == Next::Met;
        if !met {
            return Err(Error::access_denied(format!(
                "{} needs a sign-in with its own factors (scheme {}): sign in again here with them (adding them on this page first if your account has none), then approve",
                client.name, scheme.name
            )));
        }
        let counted: Vec<_> = uses
            .into_iter()
            .filter(|u| scheme.counts(u, now, None))
            .collect();
        let offline = client.grant_types.contains(&GrantType::RefreshToken)
            && record.scope.iter().any(|s| s == "offline_access");
        let grant = GrantRecord {
            user_id: session.user.id.clone(),
            client_id: client.client_id.clone(),
            scope: record.scope.clone(),
            resources: Vec::new(),
            // Not this browser's: the application's sign-in outlives the account page.
            sid: String::new(),
            auth_time: session.record.auth_time,
            amr: crate::scheme::amr(&counted),
            acr: scheme.acr.clone(),
            offline,
            claims_request: None,
            epoch: session.user.sign_out_epoch,
        };
        let mut scopes = self
            .store
            .get_consent(&session.user.id, &client.client_id)
            .await?
            .map(|c| c.scopes)
            .unwrap_or_default();
        for s in &record.scope {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        self.store
            .put_consent(&crate::model::Consent {
                user_id: session.user.id.clone(),
                client_id: client.client_id.clone(),
                scopes,
                updated_at: now,
            })
            .await?;
        Ok(self.create_grant(client, &grant, now).await?.0)
    }

    /// CIBA §10.2: tells a ping-mode application its request was decided, through the guarded
    /// outbound path; a failure is logged (the application may still poll).
    async fn ping(&self, request: &Artifact, id: &str, sealed: &str) {
        let Ok(Some(loaded)) = self.client(&request.client_id).await else {
            return;
        };
        let Some(url) = loaded
            .client
            .backchannel
            .backchannel_client_notification_endpoint
            .clone()
        else {
            return;
        };
        let Some((auth_req_id, token)) = self
            .master
            .decrypt(&ping_context(id), sealed)
            .ok()
            .and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok())
        else {
            return;
        };
        // Sent beside the user's answer: a slow endpoint does not hold the account page up.
        let outbound = self.outbound.clone();
        tokio::spawn(async move {
            let sent = outbound
                .send(&Request {
                    url: url.clone(),
                    form: None,
                    authorization: Some(format!("Bearer {token}")),
                    accept: "application/json",
                    max_bytes: Some(4096),
                    json: Some(json!({ "auth_req_id": auth_req_id })),
                })
                .await;
            let shown = crate::outbound::redact_url(&url);
            match sent {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => tracing::warn!(url = %shown, status = r.status, "CIBA ping refused"),
                Err(e) => tracing::warn!(url = %shown, error = %e, "CIBA ping failed"),
            }
        });
    }

    /// CIBA §10.1: the token request of an application polling (or told by a ping).
    pub(crate) async fn ciba_grant(
        &self,
        loaded: &Caller<'_>,
        auth_req_id: &str,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        self.poll_decided(Decoupled::Backchannel, loaded, auth_req_id, now)
            .await
    }
}

//! Signing in at an upstream identity provider: the sign-in page's buttons, home-realm discovery
//! (an email domain, `login_hint`, or an `idp_hint`/`kc_idp_hint` parameter names the provider),
//! the request to the upstream (a single-use `state` bound to the paused request and to the
//! browser's interaction cookie, a nonce, PKCE), and its return: the answer is verified
//! ([`crate::federation::oidc`]), the user found or made ([`crate::federation::accounts`]), and
//! the sign-in goes on with the upstream as a proved first factor (RFC 8176 `fed`). The same
//! return links an identity to a signed-in user from the account page.

use serde::{Deserialize, Serialize};

use super::interaction::{form_refused, InteractionState, Stage};
use super::level::Level;
use super::{AuthorizeOutcome, AuthorizeRequest, LoginOutcome};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::factor::{FactorUse, UpstreamProof};
use crate::federation::{mapping, saml, IdentityProvider, IdpProtocol};
use crate::model::{Artifact, ArtifactKind};
use crate::params::Params;
use crate::provider::Provider;
use crate::secret::{constant_time_eq, handle_key, new_handle};
use crate::store::{Consume, Consumed};

/// How long the browser may take at the upstream, in seconds.
const PENDING_TTL: i64 = 900;

/// One identity provider on the sign-in page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpButton {
    pub name: String,
    pub label: String,
}

/// What a button of the sign-in page posts.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamForm<'a> {
    pub interaction: &'a str,
    pub csrf: Option<&'a str>,
    /// The interaction cookie the browser sent.
    pub cookie: Option<&'a str>,
    pub idp: &'a str,
}

/// What the upstream sends the browser back with (the callback's query).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamReturn<'a> {
    /// The provider the callback URL names.
    pub idp: &'a str,
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    /// RFC 9207 `iss`.
    pub iss: Option<&'a str>,
    /// A SAML provider's Response (base64), posted to the ACS; `state` is then its RelayState.
    pub saml_response: Option<&'a str>,
    pub interaction_cookie: Option<&'a str>,
    pub session_cookie: Option<&'a str>,
}

/// Why the browser went to the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub(crate) enum Purpose {
    /// A paused authorization request signs in (the interaction's handle).
    SignIn { interaction: String },
    /// A signed-in user links the identity from the account page (their session's sid).
    Link { user_id: String, sid: String },
}

/// What is kept while the browser is at the upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub idp: String,
    pub nonce: String,
    pub verifier: String,
    #[serde(flatten)]
    pub purpose: Purpose,
}

/// The upstream's session, for its logouts.
#[derive(Debug, Clone)]
struct UpstreamSession {
    sid: Option<String>,
    id_token: Option<String>,
    /// SAML: the NameID's format.
    name_id_format: Option<String>,
}

/// What an upstream's return came to.
#[derive(Debug)]
pub enum UpstreamOutcome {
    /// A sign-in went on (or failed with a page to show).
    SignIn(Box<LoginOutcome>),
    /// An identity was linked from the account page (`Ok`), or why not (`Err`, for the user).
    Linked(std::result::Result<String, String>),
}

/// What the user is told when the upstream's metadata cannot be read (the reason is logged).
fn unreachable(idp: &IdentityProvider, why: &str) -> String {
    tracing::warn!(idp = %idp.name, error = ?why, "upstream identity provider unavailable");
    format!(
        "{} cannot be reached right now. Try again later or sign in another way.",
        idp.label()
    )
}

/// The domain of an email address, lower-cased.
fn email_domain(s: &str) -> Option<String> {
    let (local, domain) = s.trim().rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

impl Provider {
    /// The enabled identity providers the request's level lets users sign in at.
    pub(crate) fn allowed_idps(&self, req: &AuthorizeRequest) -> Vec<IdentityProvider> {
        self.idps_at(&self.level(req))
    }

    /// The enabled identity providers the schemes of `level` let users sign in at.
    fn idps_at(&self, level: &Level) -> Vec<IdentityProvider> {
        let mut out: Vec<IdentityProvider> = Vec::new();
        for s in &level.schemes {
            for name in s.upstream_idps() {
                if let Some(i) = self.idp(name).filter(|i| i.enabled) {
                    if !out.iter().any(|o| o.name == i.name) {
                        out.push(i);
                    }
                }
            }
        }
        out
    }

    pub(crate) fn idp_buttons(&self, level: &Level) -> Vec<IdpButton> {
        self.idps_at(level)
            .into_iter()
            .map(|i| IdpButton {
                label: i.label().to_owned(),
                name: i.name,
            })
            .collect()
    }

    /// Home-realm discovery: the allowed provider an `idp_hint` (or `kc_idp_hint`) names, or
    /// whose domains hold the email address `hint`.
    pub(crate) fn discovered_idp(
        &self,
        req: &AuthorizeRequest,
        params: Option<&Params>,
        hint: Option<&str>,
    ) -> Option<IdentityProvider> {
        let allowed = self.allowed_idps(req);
        let named = params.and_then(|p| {
            p.get("idp_hint")
                .ok()
                .flatten()
                .or_else(|| p.get("kc_idp_hint").ok().flatten())
                .map(str::to_owned)
        });
        if let Some(n) = named {
            if let Some(i) = allowed.iter().find(|i| i.name == n) {
                return Some(i.clone());
            }
        }
        let domain = hint.and_then(email_domain)?;
        allowed
            .into_iter()
            .find(|i| i.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)))
    }

    /// Sends the browser to `idp` for `purpose`: the URL, or a message for the user when the
    /// upstream cannot be used right now.
    pub(crate) async fn go_upstream(
        &self,
        idp: &IdentityProvider,
        purpose: Purpose,
        login_hint: Option<&str>,
        now: Timestamp,
    ) -> Result<std::result::Result<String, String>> {
        if idp.protocol == IdpProtocol::Saml {
            return self.go_saml(idp, purpose, now).await;
        }
        let ep = match self.endpoints(idp, now).await {
            Ok(e) => e,
            Err(why) => return Ok(Err(unreachable(idp, &why))),
        };
        let pending = Pending {
            idp: idp.name.clone(),
            nonce: crate::federation::oidc::random_value(),
            verifier: crate::federation::oidc::random_value(),
            purpose,
        };
        let state = self.keep_pending(&pending, now).await?;
        Ok(Ok(self.upstream_authorization_url(
            idp,
            &ep,
            &state,
            &pending.nonce,
            &pending.verifier,
            login_hint,
        )))
    }

    /// Keeps what a sign-in at an upstream needs when the browser comes back; its `state`.
    async fn keep_pending(&self, pending: &Pending, now: Timestamp) -> Result<String> {
        let (state, key) = new_handle();
        self.store
            .insert_artifact(&Artifact {
                key,
                kind: ArtifactKind::Federation,
                client_id: pending.idp.clone(),
                grant_id: None,
                user_id: None,
                expires_at: now.plus(PENDING_TTL),
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::to_value(pending).map_err(Error::server)?,
            })
            .await?;
        Ok(state)
    }

    /// SAML: the AuthnRequest, its ID kept as the pending sign-in's nonce (what the Response
    /// must answer), the `state` as RelayState.
    async fn go_saml(
        &self,
        idp: &IdentityProvider,
        purpose: Purpose,
        now: Timestamp,
    ) -> Result<std::result::Result<String, String>> {
        let md = match self.saml_metadata(idp, now).await {
            Ok(m) => m,
            Err(why) => return Ok(Err(unreachable(idp, &why))),
        };
        let pending = Pending {
            idp: idp.name.clone(),
            nonce: saml::request_id(),
            verifier: String::new(),
            purpose,
        };
        let state = self.keep_pending(&pending, now).await?;
        let (entity_id, acs, key) = (
            self.saml_entity_id(&idp.name),
            self.saml_acs(&idp.name),
            self.saml_request_key(now),
        );
        let sp = saml::Sp {
            entity_id: &entity_id,
            acs: &acs,
            key: key.as_deref(),
        };
        saml::authn_request_url(
            &md,
            &pending.nonce,
            &sp,
            idp.name_id_format.as_deref(),
            &state,
            now,
        )
        .map(Ok)
        .map_err(Error::server)
    }

    /// The browser goes to the upstream for the interaction `handle` (or, when it cannot, sees
    /// the sign-in page with why).
    pub(crate) async fn upstream_or_page(
        &self,
        req: &AuthorizeRequest,
        idp: &IdentityProvider,
        handle: &str,
        state: &InteractionState,
        login_hint: Option<&str>,
        now: Timestamp,
    ) -> Result<AuthorizeOutcome> {
        let purpose = Purpose::SignIn {
            interaction: handle.to_owned(),
        };
        Ok(
            match self.go_upstream(idp, purpose, login_hint, now).await? {
                Ok(url) => AuthorizeOutcome::Upstream {
                    interaction: handle.to_owned(),
                    url,
                },
                Err(msg) => AuthorizeOutcome::Login(self.login_page(
                    req,
                    handle,
                    state,
                    login_hint.map(str::to_owned),
                    Some(&msg),
                )),
            },
        )
    }

    /// The account page links an identity: the user `user_id` of the session `sid` goes to
    /// `idp`; the URL, or a message when it cannot be used right now.
    pub(crate) async fn start_link(
        &self,
        user_id: &str,
        sid: &str,
        idp: &IdentityProvider,
        now: Timestamp,
    ) -> Result<std::result::Result<String, String>> {
        let purpose = Purpose::Link {
            user_id: user_id.to_owned(),
            sid: sid.to_owned(),
        };
        self.go_upstream(idp, purpose, None, now).await
    }

    /// `POST /login/upstream`: a button of the sign-in page.
    pub async fn start_upstream(&self, form: &UpstreamForm<'_>) -> AuthorizeOutcome {
        match self.try_start_upstream(form).await {
            Ok(o) => o,
            Err(e) => AuthorizeOutcome::ErrorPage(e),
        }
    }

    async fn try_start_upstream(&self, form: &UpstreamForm<'_>) -> Result<AuthorizeOutcome> {
        let now = self.now();
        let (_, state) = self
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
            Err(o) => return Ok(o),
        };
        let Some(idp) = self
            .allowed_idps(&req)
            .into_iter()
            .find(|i| i.name == form.idp)
        else {
            return Err(Error::invalid_request(
                "idp is not an identity provider this application signs in with",
            ));
        };
        self.upstream_or_page(&req, &idp, form.interaction, &state, None, now)
            .await
    }

    /// `GET /federation/{idp}/callback`: the upstream's answer.
    pub async fn upstream_return(&self, r: &UpstreamReturn<'_>) -> UpstreamOutcome {
        match self.try_upstream_return(r).await {
            Ok(o) => o,
            Err(e) => UpstreamOutcome::SignIn(Box::new(LoginOutcome::Refused(e))),
        }
    }

    async fn try_upstream_return(&self, r: &UpstreamReturn<'_>) -> Result<UpstreamOutcome> {
        let now = self.now();
        let unknown = || {
            form_refused(
                "the sign-in at the identity provider is unknown, expired or was already completed",
            )
        };
        let key = r.state.and_then(handle_key).ok_or_else(unknown)?;
        // Used once: a replayed return finds it consumed.
        let a = match self
            .store
            .consume_artifact(
                Consume {
                    key: &key,
                    kind: ArtifactKind::Federation,
                    client_id: r.idp,
                },
                now,
                None,
            )
            .await?
        {
            Consumed::First(a) if a.expires_at > now && a.revoked_at.is_none() => a,
            _ => return Err(unknown()),
        };
        let pending: Pending = serde_json::from_value(a.payload).map_err(Error::server)?;
        let idp = self
            .idp(&pending.idp)
            .filter(|i| i.enabled && i.name == r.idp)
            .ok_or_else(|| form_refused("the identity provider is no longer enabled"))?;
        match &pending.purpose {
            Purpose::SignIn { interaction } => self
                .return_to_sign_in(r, &idp, &pending, interaction, now)
                .await
                .map(|o| UpstreamOutcome::SignIn(Box::new(o))),
            Purpose::Link { user_id, sid } => {
                let session = self.session(r.session_cookie, now).await?;
                let same = session
                    .as_ref()
                    .is_some_and(|s| &s.user.id == user_id && &s.record.sid == sid);
                if !same {
                    return Err(form_refused(
                        "you are no longer signed in as the user who asked to link",
                    ));
                }
                let outcome = match self.verified_profile(r, &idp, &pending, now).await {
                    Ok((p, _)) => self.link_from_account(&idp, user_id, &p, now).await?,
                    Err(msg) => Err(msg),
                };
                Ok(UpstreamOutcome::Linked(outcome))
            }
        }
    }

    /// The upstream's answer, verified and mapped; or a message for the user.
    async fn verified_profile(
        &self,
        r: &UpstreamReturn<'_>,
        idp: &IdentityProvider,
        pending: &Pending,
        now: Timestamp,
    ) -> std::result::Result<(mapping::Profile, UpstreamSession), String> {
        let failed = |why: &str| {
            tracing::warn!(idp = %idp.name, error = ?why, "upstream sign-in failed");
            format!("Signing in at {} did not work. Try again.", idp.label())
        };
        if let Some(e) = r.error {
            tracing::info!(idp = %idp.name, error = ?e.chars().take(64).collect::<String>(), "the upstream answered an error");
            return Err(format!("Signing in at {} did not complete.", idp.label()));
        }
        if idp.protocol == IdpProtocol::Saml {
            let response = r.saml_response.ok_or_else(|| failed("no SAMLResponse"))?;
            let claims = self
                .verified_saml(idp, response, &pending.nonce, now)
                .await
                .map_err(|w| failed(&w))?;
            let mut p = mapping::profile(idp, &claims).map_err(|w| failed(&w))?;
            saml::trust_email(idp, &mut p);
            let sid = claims
                .get("session_index")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            return Ok((
                p,
                UpstreamSession {
                    sid,
                    id_token: None,
                    name_id_format: claims
                        .get("name_id_format")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                },
            ));
        }
        if r.saml_response.is_some() {
            return Err(failed("a SAML Response for a provider that is not SAML"));
        }
        let code = r.code.ok_or_else(|| failed("no code in the answer"))?;
        let ep = self.endpoints(idp, now).await.map_err(|w| failed(&w))?;
        // RFC 9207 §2.4: an upstream that sends `iss` must send its own (a mix-up otherwise).
        let iss_wrong = r.iss.is_none() || r.iss != ep.issuer.as_deref();
        if (ep.iss_parameter || r.iss.is_some()) && iss_wrong {
            return Err(failed("the answer's iss is not the upstream's"));
        }
        let up = self
            .redeem_upstream_code(idp, &ep, code, &pending.verifier, &pending.nonce, now)
            .await
            .map_err(|w| failed(&w))?;
        let p = mapping::profile(idp, &up.claims).map_err(|w| failed(&w))?;
        let sid = up
            .claims
            .get("sid")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        Ok((
            p,
            UpstreamSession {
                sid,
                id_token: up.id_token,
                name_id_format: None,
            },
        ))
    }

    async fn return_to_sign_in(
        &self,
        r: &UpstreamReturn<'_>,
        idp: &IdentityProvider,
        pending: &Pending,
        interaction: &str,
        now: Timestamp,
    ) -> Result<LoginOutcome> {
        // The browser that went must be the one that comes back: it holds the interaction's
        // cookie (a return carried to another browser signs no one in there).
        let bound = r
            .interaction_cookie
            .is_some_and(|c| constant_time_eq(c.as_bytes(), interaction.as_bytes()));
        if !bound {
            return Err(form_refused(
                "this browser did not start the sign-in at the identity provider",
            ));
        }
        let (artifact, state) = self.interaction_at(interaction, Stage::Login, now).await?;
        let (req, _) = match self.resume(&state).await {
            Ok(x) => x,
            Err(o) => return Ok(LoginOutcome::Retry(o)),
        };
        let page = |msg: &str| {
            LoginOutcome::Retry(AuthorizeOutcome::Login(self.login_page(
                &req,
                interaction,
                &state,
                None,
                Some(msg),
            )))
        };
        let (profile, upstream) = match self.verified_profile(r, idp, pending, now).await {
            Ok(x) => x,
            Err(msg) => return Ok(page(&msg)),
        };
        let (user, link) = match self.upstream_user(idp, &profile, now).await? {
            Ok(x) => x,
            Err(refusal) => {
                tracing::info!(idp = %idp.name, ?refusal, "upstream sign-in refused");
                return Ok(page(&refusal.message(idp.label())));
            }
        };
        if let Some(sid) = &upstream.sid {
            let until = now.plus(self.settings.session_lifetime);
            self.remember_upstream_sid(&idp.name, sid, &user.id, until)
                .await?;
        }
        let used = FactorUse::upstream(
            now,
            profile.amr.clone(),
            UpstreamProof {
                idp: idp.name.clone(),
                subject: link.subject.clone(),
                sid: upstream.sid,
                id_token: upstream.id_token,
                name_id_format: upstream.name_id_format,
            },
        );
        self.complete_step(&artifact, &state, r.session_cookie, user, used, now)
            .await
    }
}

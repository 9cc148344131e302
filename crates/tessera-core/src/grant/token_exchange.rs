//! Token exchange (RFC 8693): a subject token (Tessera's own access token, refresh token or ID
//! token, an ID token of an identity provider the application may exchange those of, which
//! speaks for the user it names here, or a JWT from an issuer the application trusts, whose
//! `sub` becomes `issuer|sub`)
//! becomes an access token for the requested audience, with scopes that can only narrow. An actor token makes it delegation,
//! recorded in a (nested) `act` claim; without one it is impersonation, which the application must
//! be allowed. An optional policy webhook (seed 001 "Token Exchange Policy Workflow") may allow,
//! deny, or add claims.

use serde_json::{json, Map, Value};

use crate::assertion::{audience_ok, check_times, peek};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::grant::{Caller, TokenResponse};
use crate::model::TokenFormat;
use crate::provider::{LoadedClient, Provider};
use crate::token::TokenContent;

pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const SAML2_TYPE: &str = "urn:ietf:params:oauth:token-type:saml2";

/// How far ahead a trusted issuer's subject token may expire.
const FOREIGN_MAX_LIFETIME: i64 = 86_400;

/// RFC 8693 §2.1 request parameters.
#[derive(Clone, PartialEq)]
pub struct ExchangeRequest {
    pub subject_token: String,
    pub subject_token_type: String,
    pub actor_token: Option<(String, String)>,
    pub requested_token_type: Option<String>,
    /// Keycloak's `subject_issuer`: the identity provider (by name) whose access token the
    /// subject token is; Tessera sends it to that provider's userinfo endpoint only.
    pub subject_issuer: Option<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub scope: Option<Vec<String>>,
}

/// Token types only: the tokens themselves stay out of logs.
impl std::fmt::Debug for ExchangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("subject_token_type", &self.subject_token_type)
            .field("actor", &self.actor_token.as_ref().map(|a| &a.1))
            .finish_non_exhaustive()
    }
}

/// Who a subject or actor token speaks for.
#[derive(Debug, Clone)]
struct Party {
    sub: String,
    iss: String,
    scope: Vec<String>,
    act: Option<Value>,
    /// The grant a token of this server belongs to: a token exchanged for it belongs to it
    /// too, so revoking the grant or blocking the user stops it as well.
    grant_id: Option<String>,
    /// When the token expires: a token exchanged for it expires no later.
    exp: Timestamp,
    /// Its grant was made for this exchange (an identity provider's token).
    fresh: bool,
}

/// Which token of the request is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Subject,
    Actor,
}

impl Role {
    fn param(self) -> &'static str {
        match self {
            Role::Subject => "subject_token",
            Role::Actor => "actor_token",
        }
    }
}

fn bad_token(which: &str, why: &str) -> Error {
    Error::invalid_request(format!("{which} refused: {why}"))
}

fn scope_of(claims: &Value) -> Vec<String> {
    claims["scope"]
        .as_str()
        .map(|s| {
            s.split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Provider {
    /// RFC 8693 §2.1: who `token` of `token_type` speaks for, judged for the calling client. A
    /// subject token is the caller's own or addressed to it; an actor token speaks for the
    /// caller, so it must have been issued to it (§4.1: the actor is the party acting).
    async fn exchange_party(
        &self,
        caller: &Caller<'_>,
        role: Role,
        token: &str,
        token_type: &str,
        now: Timestamp,
    ) -> Result<Party> {
        let me = &caller.client.client_id;
        let which = role.param();
        match token_type {
            ACCESS_TOKEN_TYPE => {
                let (claims, grant) = self
                    .active_access_token(token, None, now)
                    .await?
                    .ok_or_else(|| bad_token(which, "not an active access token of this server"))?;
                if role == Role::Actor && claims.client_id != *me {
                    return Err(bad_token(
                        which,
                        "the actor token was not issued to this client",
                    ));
                }
                if claims.client_id != *me && !claims.aud.iter().any(|a| a == me) {
                    return Err(bad_token(
                        which,
                        "the token was issued for another audience",
                    ));
                }
                // RFC 9449 §1: a DPoP-bound token is of use only with its key, also as a
                // subject or actor token; otherwise a stolen one could be exchanged for an
                // unbound token.
                if claims
                    .dpop_jkt()
                    .is_some_and(|j| caller.binding.jkt != Some(j))
                {
                    return Err(bad_token(
                        which,
                        "the token is DPoP-bound: the request's DPoP proof must be made with its key",
                    ));
                }
                if claims
                    .certificate_x5t()
                    .is_some_and(|x| caller.binding.x5t != Some(x))
                {
                    return Err(bad_token(
                        which,
                        "the token is bound to a client certificate: the request must present it",
                    ));
                }
                Ok(Party {
                    sub: claims.sub,
                    iss: self.settings.issuer.clone(),
                    scope: claims.scope,
                    act: claims.extra.get("act").cloned(),
                    grant_id: grant.map(|g| g.id),
                    exp: claims.exp,
                    fresh: false,
                })
            }
            REFRESH_TOKEN_TYPE => {
                let rt = self
                    .active_refresh_token(token, &caller.client, now)
                    .await?
                    .ok_or_else(|| {
                        bad_token(which, "not an active refresh token of this client")
                    })?;
                Ok(Party {
                    sub: rt.sub,
                    iss: self.settings.issuer.clone(),
                    scope: rt.scope,
                    act: None,
                    grant_id: Some(rt.grant_id),
                    exp: rt.expires_at,
                    fresh: false,
                })
            }
            ID_TOKEN_TYPE | JWT_TYPE => {
                let (header, unverified) =
                    peek(token).ok_or_else(|| bad_token(which, "not a signed JWT"))?;
                if unverified["iss"].as_str() == Some(self.settings.issuer.as_str()) {
                    return self
                        .own_id_token_party(caller, which, token, header.alg, now)
                        .await;
                }
                let upstream = unverified["iss"]
                    .as_str()
                    .and_then(|iss| self.exchange_idp(caller, iss));
                if let Some(idp) = upstream {
                    if role == Role::Actor {
                        return Err(bad_token(
                            which,
                            "an identity provider's ID token speaks for a user, not for the client",
                        ));
                    }
                    let x = self
                        .exchange_upstream_id_token(caller, &idp, token, now)
                        .await?
                        .map_err(|why| bad_token(which, &why))?;
                    return self.upstream_party(caller, x);
                }
                // A trusted issuer's JWT: addressed to the caller itself (so an assertion meant
                // for Tessera cannot be replayed here), unexpired, used once.
                let (trusted, c) = self
                    .verify_trusted_jwt(caller, token)
                    .await
                    .map_err(|w| bad_token(which, &w))?;
                let exp = check_times(
                    &c,
                    now,
                    self.settings.clock_skew,
                    Some(FOREIGN_MAX_LIFETIME),
                )
                .map_err(|w| bad_token(which, w))?;
                // What is issued lives no longer than this token: one already past its exp (only
                // within the clock skew) would give nothing that works.
                if exp <= now {
                    return Err(bad_token(
                        which,
                        "the token has expired (an exchanged token lives no longer than it)",
                    ));
                }
                if !audience_ok(&c, std::slice::from_ref(me)) {
                    return Err(bad_token(
                        which,
                        "the token was issued for another audience",
                    ));
                }
                let issued_to = c["azp"].as_str().or(c["client_id"].as_str());
                if role == Role::Actor && issued_to != Some(me.as_str()) {
                    return Err(bad_token(
                        which,
                        "the actor token was not issued to this client (azp or client_id)",
                    ));
                }
                // Without a jti the token could be exchanged again and again until it expires.
                let jti = c["jti"]
                    .as_str()
                    .filter(|j| !j.is_empty() && j.len() <= 256)
                    .ok_or_else(|| bad_token(which, "jti is required"))?;
                if !self
                    .first_use_of_jti("token-exchange", &trusted.issuer, jti, exp)
                    .await?
                {
                    return Err(bad_token(which, "this token was already exchanged"));
                }
                let sub = c["sub"]
                    .as_str()
                    .ok_or_else(|| bad_token(which, "sub is required"))?;
                // The partner's own actor, said to be the partner's.
                let act = c.get("act").cloned().map(|mut a| {
                    if a.get("iss").is_none() {
                        a["iss"] = json!(trusted.issuer);
                    }
                    a
                });
                Ok(Party {
                    // Namespaced by issuer: a partner's subject never passes for a local user.
                    sub: format!("{}|{sub}", trusted.issuer),
                    iss: trusted.issuer,
                    scope: scope_of(&c),
                    act,
                    grant_id: None,
                    exp,
                    fresh: false,
                })
            }
            SAML2_TYPE if role == Role::Subject => {
                let x = self
                    .exchange_saml_assertion(caller, token, now)
                    .await?
                    .ok_or_else(|| {
                        bad_token(which, "the client is allowed no SAML identity provider")
                    })?
                    .map_err(|why| bad_token(which, &why))?;
                self.upstream_party(caller, x)
            }
            other => Err(bad_token(
                which,
                &format!("token type {other} is not supported"),
            )),
        }
    }

    /// The local user an upstream's token spoke for, in the grant made for the exchange.
    fn upstream_party(
        &self,
        caller: &LoadedClient,
        x: crate::federation::exchange::Exchanged,
    ) -> Result<Party> {
        Ok(Party {
            sub: self.subject(&caller.client, &x.user)?,
            iss: self.settings.issuer.clone(),
            scope: x.scope,
            act: None,
            grant_id: Some(x.grant_id),
            exp: x.exp,
            fresh: true,
        })
    }

    /// One of this server's ID tokens as a subject or actor token: addressed to the caller (an
    /// HS256 one the caller could have written itself is refused), an ID token and nothing else
    /// (`typ` `JWT`: not an access or logout token), unexpired, and from a sign-in session
    /// still in force, whose grant for the caller the exchanged token then belongs to.
    async fn own_id_token_party(
        &self,
        caller: &LoadedClient,
        which: &str,
        token: &str,
        alg: jsonwebtoken::Algorithm,
        now: Timestamp,
    ) -> Result<Party> {
        if alg == jsonwebtoken::Algorithm::HS256 {
            return Err(bad_token(which, "an HS256 ID token cannot be exchanged"));
        }
        // Verified as an `id_token_hint` is: typ JWT, this server's key, addressed to the caller.
        let c = self.id_token_hint(token, caller).ok_or_else(|| {
            bad_token(
                which,
                "not an ID token (typ JWT) this server issued to the client",
            )
        })?;
        // Tessera's own ID token: no leeway for another clock.
        let exp = check_times(&c, now, 0, None).map_err(|w| bad_token(which, w))?;
        let sub = c["sub"]
            .as_str()
            .ok_or_else(|| bad_token(which, "sub is required"))?;
        let sid = c["sid"].as_str().ok_or_else(|| {
            bad_token(
                which,
                "only an ID token of a sign-in session can be exchanged",
            )
        })?;
        let grant = self
            .session_grant_of(sid, &caller.client.client_id, now)
            .await?
            .ok_or_else(|| {
                bad_token(
                    which,
                    "the sign-in session ended, or its user is blocked or signed out",
                )
            })?;
        if self.subject(&caller.client, &grant.user)? != sub {
            return Err(bad_token(which, "the ID token is not the session's user's"));
        }
        Ok(Party {
            sub: sub.to_owned(),
            iss: self.settings.issuer.clone(),
            scope: Vec::new(),
            act: None,
            grant_id: Some(grant.id),
            exp,
            fresh: false,
        })
    }

    /// RFC 8693 §2.
    pub(crate) async fn token_exchange(
        &self,
        loaded: &Caller<'_>,
        req: ExchangeRequest,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let issued_type = match req.requested_token_type.as_deref() {
            None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
            Some(JWT_TYPE) if client.token_format == TokenFormat::Jwt => JWT_TYPE,
            Some(other) => {
                return Err(Error::invalid_request(format!(
                    "requested_token_type {other} cannot be issued to this client"
                )))
            }
        };
        // Judged before the subject token, whose judging may record a grant (an identity
        // provider's ID token): a request refused anyway leaves nothing behind.
        if req.actor_token.is_none() && !client.federation.impersonation_allowed {
            return Err(Error::unauthorized_client(
                "the client may not impersonate: send an actor_token",
            ));
        }
        let mut targets = req.resources.clone();
        targets.extend(req.audiences.iter().cloned());
        let aud = self.asserted_audience(client, targets)?;
        // The new token is for APIs: only scopes the client may request, never the OpenID ones.
        let may_request = |s: &String| {
            client.scopes.contains(s) && !crate::model::OPENID_SCOPES.contains(&s.as_str())
        };
        if let Some(bad) = req.scope.iter().flatten().find(|x| !may_request(x)) {
            return Err(Error::invalid_scope(format!(
                "scope {bad} exceeds the subject token's scopes or the client's"
            )));
        }
        let actor = match &req.actor_token {
            Some((token, ty)) => Some(
                self.exchange_party(loaded, Role::Actor, token, ty, now)
                    .await?,
            ),
            None => None,
        };
        let subject =
            match req.subject_issuer.as_deref() {
                Some(idp) if req.subject_token_type == ACCESS_TOKEN_TYPE => {
                    let x = self
                        .exchange_upstream_access_token(loaded, idp, &req.subject_token, now)
                        .await?
                        .map_err(|why| bad_token("subject_token", &why))?;
                    self.upstream_party(loaded, x)?
                }
                Some(_) => return Err(Error::invalid_request(
                    "subject_issuer names an identity provider for an access_token subject token",
                )),
                None => {
                    self.exchange_party(
                        loaded,
                        Role::Subject,
                        &req.subject_token,
                        &req.subject_token_type,
                        now,
                    )
                    .await?
                }
            };
        let outcome = self
            .exchange_for(loaded, &req, &subject, actor, aud, issued_type, now)
            .await;
        // A grant made for this exchange (an identity provider's token) goes with a refusal.
        if outcome.is_err() && subject.fresh {
            if let Some(g) = &subject.grant_id {
                self.revoke_grant(g, now).await?;
            }
        }
        outcome
    }

    /// RFC 8693 §2.2: the token for `subject` (and `actor`), once the rest is judged.
    #[allow(clippy::too_many_arguments)]
    async fn exchange_for(
        &self,
        loaded: &Caller<'_>,
        req: &ExchangeRequest,
        subject: &Party,
        actor: Option<Party>,
        aud: Vec<String>,
        issued_type: &'static str,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        // RFC 8693 §1.1: an actor that is the subject itself is not delegation but
        // impersonation, which the client must be allowed.
        let actor = match actor {
            Some(a) if a.sub == subject.sub && a.iss == subject.iss => {
                if !client.federation.impersonation_allowed {
                    return Err(Error::unauthorized_client(
                        "the actor is the subject itself, which is impersonation; the client may not impersonate",
                    ));
                }
                None
            }
            other => other,
        };
        // RFC 8693 §4.1: the actor, with the subject token's own actor nested below it.
        let act = match &actor {
            Some(a) => {
                let mut act = json!({"sub": a.sub});
                if a.iss != self.settings.issuer {
                    act["iss"] = json!(a.iss);
                }
                if let Some(prev) = &subject.act {
                    act["act"] = prev.clone();
                }
                Some(act)
            }
            None if client.federation.impersonation_allowed => subject.act.clone(),
            None => {
                return Err(Error::unauthorized_client(
                    "the client may not impersonate: send an actor_token",
                ))
            }
        };
        let may_request = |s: &String| {
            client.scopes.contains(s) && !crate::model::OPENID_SCOPES.contains(&s.as_str())
        };
        let scope = match req.scope.clone() {
            Some(s) => {
                if let Some(bad) = s
                    .iter()
                    .find(|x| !subject.scope.contains(x) || !may_request(x))
                {
                    return Err(Error::invalid_scope(format!(
                        "scope {bad} exceeds the subject token's scopes or the client's"
                    )));
                }
                s
            }
            None => subject
                .scope
                .iter()
                .filter(|s| may_request(s))
                .cloned()
                .collect(),
        };
        let mut extra = Map::new();
        if let Some(url) = &client.federation.exchange_policy_url {
            let context = json!({
                "client_id": client.client_id,
                "subject": {"sub": subject.sub, "iss": subject.iss, "token_type": req.subject_token_type, "scope": subject.scope},
                "actor": actor.as_ref().map(|a| json!({"sub": a.sub, "iss": a.iss})),
                "audience": aud,
                "scope": scope,
                "requested_token_type": issued_type,
            });
            extra = self.exchange_policy(url, &context).await?;
        }
        if let Some(a) = act {
            extra.insert("act".into(), a);
        }
        let (access_token, expires_in) = self
            .issue_access_token(
                client,
                TokenContent {
                    sub: &subject.sub,
                    aud,
                    scope: scope.clone(),
                    grant_id: subject.grant_id.as_deref(),
                    not_after: Some(subject.exp),
                    extra,
                    binding: loaded.binding,
                },
                now,
            )
            .await?;
        tracing::info!(client_id = %client.client_id, delegation = actor.is_some(), "token exchanged");
        Ok(TokenResponse {
            issued_token_type: Some(issued_type.to_owned()),
            ..TokenResponse::issued(access_token, expires_in, &scope, loaded.binding)
        })
    }

    /// Asks the policy webhook: `{"allow": true, "claims": {...}}` allows (adding claims),
    /// anything else denies. An unreachable webhook denies too (fail closed).
    async fn exchange_policy(&self, url: &str, context: &Value) -> Result<Map<String, Value>> {
        let answer = self.outbound.post_json(url, context).await.map_err(|e| {
            let url = crate::outbound::redact_url(url);
            tracing::warn!(url, error = %e, "token exchange policy unreachable");
            Error::new(
                ErrorCode::TemporarilyUnavailable,
                "the token exchange policy could not be consulted; retry later",
            )
        })?;
        if answer["allow"].as_bool() != Some(true) {
            let reason = answer["reason"]
                .as_str()
                .unwrap_or("the token exchange policy denied the request");
            return Err(Error::access_denied(
                reason.chars().take(200).collect::<String>(),
            ));
        }
        Ok(answer["claims"]
            .as_object()
            .map(|m| {
                m.iter()
                    // The token's own claims and those that speak for identity, authentication
                    // or key binding are Tessera's alone, and so are the user's authorization
                    // attributes (RFC 9068 §2.2.3.1), which come from the user's record.
                    .filter(|(k, _)| {
                        !crate::claims::reserved_claim(k)
                            && !["groups", "roles", "entitlements"].contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }
}

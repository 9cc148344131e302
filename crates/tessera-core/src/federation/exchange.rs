//! Token exchange of what an upstream identity provider issued (RFC 8693 §2.1; seed 002 "Allowed
//! IDPs", "tokens from other IDP's, which includes SAML Assertions"): an application allowed the
//! provider presents an ID token it holds from there (`id_token` or `jwt`; issued to Tessera's
//! client, or to one of the provider's `exchange_audiences`), verified as at a sign-in, or a
//! SAML assertion (`saml2`) signed by a SAML provider for Tessera. The user it names here is
//! found, linked or made by the same rules as a sign-in there, and the exchanged token is that
//! user's, in a grant of their own (revoked with the user's other grants, and by blocking them).

use serde_json::Value;

use super::mapping::profile;
use super::{IdentityProvider, IdpProtocol};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::model::User;
use crate::provider::{LoadedClient, Provider};
use crate::secret::{b64url, sha256};
use crate::user_grant::GrantRecord;

/// How far ahead an exchanged upstream ID token may expire.
const MAX_LIFETIME: i64 = 86_400;

/// The user an upstream's token names here, what it says they proved, and until when.
#[derive(Debug)]
struct Found {
    user: User,
    amr: Vec<String>,
    exp: Timestamp,
}

/// The user an exchanged upstream ID token speaks for, in a grant made for the exchange.
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub user: User,
    pub grant_id: String,
    pub scope: Vec<String>,
    pub exp: Timestamp,
}

impl Provider {
    /// The identity provider of issuer `iss` the application may exchange ID tokens of.
    pub(crate) fn exchange_idp(
        &self,
        caller: &LoadedClient,
        iss: &str,
    ) -> Option<IdentityProvider> {
        caller
            .client
            .federation
            .exchange_identity_providers
            .iter()
            .filter_map(|n| self.idp(n))
            .find(|i| i.enabled && i.issuer.as_deref() == Some(iss))
    }

    /// Verifies the upstream ID token `token` of `idp` for an exchange by `caller` and finds its
    /// user here; the error (for the `subject_token` refusal) otherwise.
    pub(crate) async fn exchange_upstream_id_token(
        &self,
        caller: &LoadedClient,
        idp: &IdentityProvider,
        token: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Exchanged, String>> {
        let ep = match self.endpoints(idp, now).await {
            Ok(ep) => ep,
            Err(why) => {
                tracing::warn!(idp = %idp.name, error = ?why, "token exchange: the provider cannot be reached");
                return Ok(Err("the identity provider cannot be reached".into()));
            }
        };
        let mut audiences = vec![idp.client_id.clone()];
        audiences.extend(idp.exchange_audiences.iter().cloned());
        let claims = match self
            .verify_upstream_id_token(&ep, token, None, &audiences, now)
            .await
        {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let exp = Timestamp(claims.get("exp").and_then(Value::as_i64).unwrap_or(now.0));
        if exp.0 > now.0.saturating_add(MAX_LIFETIME) {
            return Ok(Err("the ID token expires too far in the future".into()));
        }
        // What is issued lives no longer than the ID token: one past its exp (accepted only
        // within the clock skew) would give a token that is already expired.
        if exp <= now {
            return Ok(Err("the ID token has expired".into()));
        }
        // Used once: by its jti, or (ID tokens often have none) by what was signed, not by the
        // signature, which an ECDSA signer's (r, n-s) twin would change.
        let once = match claims.get("jti").and_then(Value::as_str) {
            Some(j) if !j.is_empty() && j.len() <= 256 => j.to_owned(),
            _ => {
                let signed = token.rsplit_once('.').map_or(token, |(input, _)| input);
                b64url(&sha256(signed.as_bytes()))
            }
        };
        let issuer = ep.issuer.clone().unwrap_or_default();
        if !self
            .first_use_of_jti("upstream-exchange", &issuer, &once, exp)
            .await?
        {
            return Ok(Err("this ID token was already exchanged".into()));
        }
        let p = match profile(idp, &claims) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        match self.exchanged_user(caller, idp, &p, exp, now).await? {
            Ok(found) => self.exchange_grant(caller, found, now).await,
            Err(why) => Ok(Err(why)),
        }
    }

    /// RFC 8693 with an upstream's access token (`access_token`, with `subject_issuer` naming
    /// the provider, as Keycloak has it): the provider's userinfo endpoint says whose it is.
    /// Only a provider the application is allowed, OpenID Connect or OAuth 2.0, is asked; the
    /// token is used once (by its digest) within the hour, and the exchanged token lasts no
    /// longer than the application's access tokens.
    pub(crate) async fn exchange_upstream_access_token(
        &self,
        caller: &LoadedClient,
        idp: &str,
        token: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Exchanged, String>> {
        let allowed = caller
            .client
            .federation
            .exchange_identity_providers
            .iter()
            .any(|n| n == idp);
        let Some(idp) = self
            .idp(idp)
            .filter(|i| allowed && i.enabled && i.protocol != IdpProtocol::Saml)
        else {
            return Ok(Err(
                "subject_issuer is not an OpenID Connect or OAuth 2.0 provider the client is allowed"
                    .into(),
            ));
        };
        if token.is_empty() || token.len() > 8 * 1024 {
            return Ok(Err("the access token is empty or too long".into()));
        }
        let ep = match self.endpoints(&idp, now).await {
            Ok(ep) => ep,
            Err(why) => {
                tracing::warn!(idp = %idp.name, error = ?why, "token exchange: the provider cannot be reached");
                return Ok(Err("the identity provider cannot be reached".into()));
            }
        };
        let issuer = ep.issuer.clone().unwrap_or_else(|| idp.name.clone());
        let once = b64url(&sha256(token.as_bytes()));
        if !self
            .first_use_of_jti("upstream-access-token", &issuer, &once, now.plus(3_600))
            .await?
        {
            return Ok(Err("this access token was already exchanged".into()));
        }
        let claims = match self.upstream_userinfo(&ep, token).await {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let p = match profile(&idp, &claims) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let exp = now.plus(caller.client.access_token_ttl);
        match self.exchanged_user(caller, &idp, &p, exp, now).await? {
            Ok(found) => self.exchange_grant(caller, found, now).await,
            Err(why) => Ok(Err(why)),
        }
    }

    /// RFC 8693 with `urn:ietf:params:oauth:token-type:saml2` (seed 002: "SAML Assertions"): a
    /// bare assertion of one of the SAML providers the application is allowed, signed by it,
    /// for Tessera (an `Audience` of its token endpoint, issuer or SP entity ID; a bearer
    /// confirmation whose `Recipient`, when present, is the token endpoint or the ACS), in time
    /// and used once. `None` when the application is allowed no SAML provider.
    pub(crate) async fn exchange_saml_assertion(
        &self,
        caller: &LoadedClient,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<std::result::Result<Exchanged, String>>> {
        Ok(match self.saml_assertion_user(caller, token, now).await? {
            Some(Ok(found)) => Some(self.exchange_grant(caller, found, now).await?),
            Some(Err(why)) => Some(Err(why)),
            None => None,
        })
    }

    /// The user an assertion of one of the client's SAML providers names here (RFC 7522 §3,
    /// RFC 8693); `None` when the client is allowed no SAML provider.
    async fn saml_assertion_user(
        &self,
        caller: &LoadedClient,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<std::result::Result<Found, String>>> {
        let idps: Vec<IdentityProvider> = caller
            .client
            .federation
            .exchange_identity_providers
            .iter()
            .filter_map(|n| self.idp(n))
            .filter(|i| i.enabled && i.protocol == IdpProtocol::Saml)
            .collect();
        if idps.is_empty() {
            return Ok(None);
        }
        let mut why = String::new();
        for idp in idps {
            let claims = match self.verified_saml_assertion(&idp, token, now).await {
                Ok(c) => c,
                Err(w) => {
                    why = w;
                    continue;
                }
            };
            let mut p = match profile(&idp, &claims) {
                Ok(p) => p,
                Err(w) => return Ok(Some(Err(w))),
            };
            super::saml::trust_email(&idp, &mut p);
            let exp = Timestamp(
                claims
                    .get("not_on_or_after")
                    .and_then(Value::as_i64)
                    .unwrap_or(now.0),
            );
            return self
                .exchanged_user(caller, &idp, &p, exp, now)
                .await
                .map(Some);
        }
        Ok(Some(Err(why)))
    }

    /// The user an upstream identity names here (found, linked or made as at a sign-in),
    /// allowed the application.
    async fn exchanged_user(
        &self,
        caller: &LoadedClient,
        idp: &IdentityProvider,
        p: &super::mapping::Profile,
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<std::result::Result<Found, String>> {
        let (user, _) = match self.upstream_user(idp, p, now).await? {
            Ok(x) => x,
            Err(refusal) => {
                tracing::info!(idp = %idp.name, ?refusal, "token exchange: upstream identity refused");
                return Ok(Err(format!(
                    "the identity names no user here who may use it ({refusal:?})"
                )));
            }
        };
        if self.user_may_use(caller, &user).is_err() {
            return Ok(Err("the user is not allowed to use this application".into()));
        }
        Ok(Ok(Found {
            user,
            amr: p.amr.clone(),
            exp,
        }))
    }

    /// The grant an exchange's token belongs to: the user's, with the application's API scopes
    /// (which the exchange then narrows).
    async fn exchange_grant(
        &self,
        caller: &LoadedClient,
        found: Found,
        now: Timestamp,
    ) -> Result<std::result::Result<Exchanged, String>> {
        let Found { user, amr, exp } = found;
        let client = &caller.client;
        // The APIs' scopes the application may ask for; the exchange narrows them.
        let scope: Vec<String> = client
            .scopes
            .iter()
            .filter(|s| !crate::model::OPENID_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect();
        let record = GrantRecord {
            user_id: user.id.clone(),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            resources: Vec::new(),
            sid: String::new(),
            auth_time: now,
            amr,
            acr: crate::scheme::ACR_PASSWORD.to_owned(),
            offline: false,
            claims_request: None,
            epoch: user.sign_out_epoch,
        };
        let (grant_id, _) = self.create_grant(client, &record, now).await?;
        Ok(Ok(Exchanged {
            user,
            grant_id,
            scope,
            exp,
        }))
    }
}

impl Provider {
    /// The SAML 2.0 bearer assertion grant (RFC 7522 §2.1 and §3): an assertion of one of the
    /// SAML providers the client is allowed (`exchange_identity_providers`), verified as for a
    /// token exchange, becomes tokens of the user it names here, in a grant of their own.
    pub(crate) async fn saml2_bearer(
        &self,
        loaded: &crate::grant::Caller<'_>,
        assertion: &str,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
        now: Timestamp,
    ) -> Result<crate::grant::TokenResponse> {
        let refused =
            |why: &str| crate::error::Error::invalid_grant(format!("assertion refused: {why}"));
        // Checked before the assertion is spent: an asserted user's tokens never reach the
        // admin API, and the scopes are the client's.
        self.asserted_audience(&loaded.client, resources.clone())?;
        let scope = self.user_grant_scope(loaded, scope)?;
        let found = self
            .saml_assertion_user(loaded, assertion, now)
            .await?
            .ok_or_else(|| refused("the client is allowed no SAML identity provider"))?
            .map_err(|why| refused(&why))?;
        self.grant_for_user(loaded, found.user, scope, resources, found.amr, now)
            .await
    }
}

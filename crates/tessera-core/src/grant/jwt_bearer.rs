//! The JWT bearer grant (RFC 7523 §2.1 and §3): an assertion signed by an issuer the application
//! trusts (its keys inline or from its JWKS URL), addressed to Tessera, unexpired, used once; its
//! `sub` names a user (by id or username) or, when so configured, the client itself.

use crate::assertion::{audience_ok, check_times, peek, verify_with_jwk};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::{Caller, TokenResponse};
use crate::jwks::KeySource;
use crate::model::{JwtBearerSubject, TrustedIssuer};
use crate::provider::{LoadedClient, Provider};

/// How far ahead a bearer assertion may expire.
const MAX_LIFETIME: i64 = 3_600;

impl Provider {
    /// An assertion from one of the client's trusted issuers, its signature verified; returns
    /// the issuer and the claims (times, audience and replay are the caller's to judge).
    pub(crate) async fn verify_trusted_jwt(
        &self,
        loaded: &LoadedClient,
        jwt: &str,
    ) -> std::result::Result<(TrustedIssuer, serde_json::Value), String> {
        self.verify_jwt_of(&loaded.client.federation.trusted_issuers, jwt)
            .await
    }

    /// A JWT of one of `issuers`, its signature verified with that issuer's keys; returns the
    /// issuer and the claims (times, audience and replay are the caller's to judge).
    pub(crate) async fn verify_jwt_of(
        &self,
        issuers: &[TrustedIssuer],
        jwt: &str,
    ) -> std::result::Result<(TrustedIssuer, serde_json::Value), String> {
        let (header, claims) = peek(jwt).ok_or("not a signed JWT")?;
        let iss = claims["iss"].as_str().ok_or("iss is required")?;
        let trusted = issuers
            .iter()
            .find(|t| t.issuer == iss)
            .ok_or_else(|| format!("{iss} is not a trusted issuer"))?;
        let source = KeySource {
            inline: trusted.jwks.as_ref(),
            uri: trusted.jwks_uri.as_deref(),
        };
        let key = self
            .jwks
            .key(&*self.outbound, self.now(), source, header.kid.as_deref())
            .await?
            .ok_or("no key of the issuer matches the kid")?;
        if !verify_with_jwk(jwt, header.alg, &key) {
            return Err("the signature does not verify".into());
        }
        Ok((trusted.clone(), claims))
    }

    /// RFC 7523 §2.1.
    pub(crate) async fn jwt_bearer(
        &self,
        loaded: &Caller<'_>,
        assertion: &str,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let refused = |why: &str| Error::invalid_grant(format!("assertion refused: {why}"));
        let (trusted, claims) = self
            .verify_trusted_jwt(loaded, assertion)
            .await
            .map_err(|w| refused(&w))?;
        // RFC 7523 §3 item 3: Tessera is the audience.
        if !audience_ok(&claims, &self.assertion_audiences()) {
            return Err(refused("aud must be the token endpoint or the issuer"));
        }
        let exp = check_times(&claims, now, self.settings.clock_skew, Some(MAX_LIFETIME))
            .map_err(refused)?;
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| refused("jti is required"))?;
        if !self
            .first_use_of_jti("jwt-bearer", &trusted.issuer, jti, exp)
            .await?
        {
            return Err(refused("this jti was already used"));
        }
        let sub = claims["sub"]
            .as_str()
            .ok_or_else(|| refused("sub is required"))?;
        match client.federation.jwt_bearer_subject {
            JwtBearerSubject::Client => {
                if sub != client.client_id {
                    return Err(refused("sub must be the client_id"));
                }
                self.client_token(client, scope, resources, loaded.binding, now)
                    .await
            }
            JwtBearerSubject::User => {
                let user = match self.store.get_user(sub).await? {
                    Some(u) => Some(u),
                    None => self.store.find_user(sub).await?,
                };
                let user = user
                    .filter(|u| !u.blocked)
                    .ok_or_else(|| refused("sub does not name an active user"))?;
                self.user_may_use(loaded, &user)?;
                // Checked before the grant is made: an asserted user's tokens never reach the
                // admin API.
                self.asserted_audience(client, resources.clone())?;
                let scope = self.user_grant_scope(loaded, scope)?;
                self.grant_for_user(loaded, user, scope, resources, vec!["jwt".into()], now)
                    .await
            }
        }
    }
}

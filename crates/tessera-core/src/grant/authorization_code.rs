//! The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is used once; a replay
//! revokes every token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use crate::authorize::CodeRecord;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::Caller;
use crate::grant::TokenResponse;
use crate::model::ArtifactKind;
use crate::pkce;
use crate::provider::Provider;
use crate::secret::handle_key;
use crate::store::{Consume, Consumed};

const BAD_CODE: &str =
    "the authorization code is invalid, expired, or was issued to another client";

/// RFC 9449 §10: a code asked for with `dpop_jkt` is redeemed only with that key's proof.
fn binding_held(loaded: &Caller<'_>, record: &CodeRecord) -> Result<()> {
    match &record.dpop_jkt {
        Some(jkt) if loaded.binding.jkt != Some(jkt.as_str()) => Err(crate::dpop::invalid_proof(
            "the authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof made with it",
        )),
        _ => Ok(()),
    }
}

impl Provider {
    /// A code bound to a DPoP key, presented without that key's proof, is refused before it is
    /// spent: whoever intercepted it cannot use it, nor burn it to revoke the user's grant.
    async fn check_code_binding(
        &self,
        loaded: &Caller<'_>,
        key: &crate::model::ArtifactKey,
    ) -> Result<()> {
        let Some(a) = self.store.get_artifact(key).await? else {
            return Ok(());
        };
        if a.kind != ArtifactKind::AuthorizationCode
            || a.client_id != loaded.client.client_id
            || a.consumed_at.is_some()
        {
            return Ok(());
        }
        match serde_json::from_value::<CodeRecord>(a.payload) {
            Ok(record) => binding_held(loaded, &record),
            Err(_) => Ok(()),
        }
    }

    /// RFC 6749 §4.1.3.
    pub(crate) async fn authorization_code(
        &self,
        loaded: &Caller<'_>,
        code: &str,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let key = handle_key(code).ok_or_else(|| Error::invalid_grant(BAD_CODE))?;
        self.check_code_binding(loaded, &key).await?;
        let which = Consume {
            key: &key,
            kind: ArtifactKind::AuthorizationCode,
            client_id: &client.client_id,
        };
        let artifact = match self.store.consume_artifact(which, now, None).await? {
            Consumed::First(a) => a,
            Consumed::Missing => return Err(Error::invalid_grant(BAD_CODE)),
            Consumed::Again(a) => {
                // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
                if let Some(g) = &a.grant_id {
                    tracing::warn!(client_id = %client.client_id, grant_id = %g, "authorization code replayed; grant revoked");
                    self.revoke_grant(g, now).await?;
                }
                return Err(Error::invalid_grant(
                    "the authorization code was already used; the tokens issued from it are revoked",
                ));
            }
        };
        if artifact.expires_at <= now || artifact.revoked_at.is_some() {
            return Err(Error::invalid_grant(BAD_CODE));
        }
        let record: CodeRecord = serde_json::from_value(artifact.payload).map_err(Error::server)?;
        binding_held(loaded, &record)?;
        // RFC 6749 §4.1.3: "ensure that the redirect_uri parameter is present if [it] was included
        // in the initial authorization request ... and if included ensure that their values are identical".
        let matches = match redirect_uri.as_deref() {
            Some(r) => r == record.redirect_uri,
            None => !record.redirect_uri_given,
        };
        if !matches {
            return Err(Error::invalid_grant(
                "redirect_uri does not match the one of the authorization request",
            ));
        }
        match (
            &record.code_challenge,
            &record.code_challenge_method,
            code_verifier,
        ) {
            // A code asked for with plain, or without PKCE, before the application moved to
            // OAuth 2.1 or FAPI 2.0.
            (_, m, _) if client.s256_only() && m.as_deref() != Some("S256") => {
                return Err(Error::invalid_grant(
                    "this application takes only S256 PKCE; sign in again",
                ));
            }
            (Some(c), Some(m), Some(v)) if !pkce::verify(c, m, &v) => {
                return Err(Error::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            (Some(_), _, None) => {
                return Err(Error::invalid_grant("code_verifier is required (PKCE)"));
            }
            // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
            (None, _, Some(_)) => {
                return Err(Error::invalid_grant(
                    "code_verifier was sent but the authorization request had no code_challenge",
                ));
            }
            _ => {}
        }
        let grant_id = artifact
            .grant_id
            .ok_or_else(|| Error::server("code without a grant"))?;
        let grant = self.active_grant(&grant_id, now).await?.ok_or_else(|| {
            Error::invalid_grant("the authorization was revoked or the user is blocked")
        })?;
        let scope = grant.record.scope.clone();
        self.tokens_for_grant(loaded, &grant, &scope, &[], record.nonce.as_deref(), now)
            .await
    }
}

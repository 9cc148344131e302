//! The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is used once; a replay
//! revokes every token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use crate::authorize::CodeRecord;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::Caller;
use crate::grant::TokenResponse;
use crate::model::{Artifact, ArtifactKind, Client};
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

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code was asked for with this redirect URI (when the
/// request named one) and this PKCE challenge.
fn code_matches(
    client: &Client,
    record: &CodeRecord,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
) -> Result<()> {
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
        (_, m, _) if client.s256_only() && m.as_deref() != Some("S256") => Err(
            Error::invalid_grant("this application takes only S256 PKCE; sign in again"),
        ),
        (Some(c), Some(m), Some(v)) if !pkce::verify(c, m, &v) => Err(Error::invalid_grant(
            "code_verifier does not match the code_challenge",
        )),
        (Some(_), _, None) => Err(Error::invalid_grant("code_verifier is required (PKCE)")),
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, _, Some(_)) => Err(Error::invalid_grant(
            "code_verifier was sent but the authorization request had no code_challenge",
        )),
        _ => Ok(()),
    }
}

impl Provider {
    /// RFC 6749 §4.1.3. The code is read first. One this client may redeem is checked and its
    /// tokens made before it is spent, and it is spent in the write that stores its refresh
    /// token: a request that fails before that write (the store unavailable, 503) leaves the
    /// code as it was, so the retry a 503 invites is not taken for a replay.
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
        let which = Consume {
            key: &key,
            kind: ArtifactKind::AuthorizationCode,
            client_id: &client.client_id,
        };
        // The code with its grant and user, in one read.
        let unspent = self.store.get_artifact_with_grant(&key).await?.filter(|r| {
            let a = &r.artifact;
            a.kind == ArtifactKind::AuthorizationCode
                && a.client_id == client.client_id
                && a.consumed_at.is_none()
        });
        // Missing, another client's, or spent already: the consume tells which.
        let Some(read) = unspent else {
            return self
                .spend_code(which, now, Error::invalid_grant(BAD_CODE))
                .await;
        };
        let artifact = read.artifact;
        let record: CodeRecord = serde_json::from_value(artifact.payload).map_err(Error::server)?;
        // Refused before the code is spent: whoever intercepted a DPoP-bound code cannot use it,
        // nor burn it to revoke the user's grant.
        binding_held(loaded, &record)?;
        let checked = if artifact.expires_at <= now || artifact.revoked_at.is_some() {
            Err(Error::invalid_grant(BAD_CODE))
        } else {
            code_matches(client, &record, redirect_uri, code_verifier)
        };
        // Presented expired, or with another redirect URI or verifier: spent all the same.
        if let Err(refusal) = checked {
            return self.spend_code(which, now, refusal).await;
        }
        let grant_id = artifact
            .grant_id
            .ok_or_else(|| Error::server("code without a grant"))?;
        let Some(grant) = self
            .active_grant_read(&grant_id, read.grant, read.user, now)
            .await?
        else {
            let refusal =
                Error::invalid_grant("the authorization was revoked or the user is blocked");
            return self.spend_code(which, now, refusal).await;
        };
        let (spent, tokens) = self
            .redeem_for_grant(loaded, &grant, record.nonce.as_deref(), which, now)
            .await?;
        match spent {
            Consumed::First(a) if a.revoked_at.is_none() => Ok(tokens),
            // Revoked (with its grant) since it was read: what was made from it is void.
            Consumed::First(_) | Consumed::Missing => Err(Error::invalid_grant(BAD_CODE)),
            Consumed::Again(a) => self.code_replayed(which.client_id, &a, now).await,
        }
    }

    /// Spends the code of a request refused with `refusal`: a code is presented once.
    async fn spend_code(
        &self,
        which: Consume<'_>,
        now: Timestamp,
        refusal: Error,
    ) -> Result<TokenResponse> {
        match self.store.consume_artifact(which, now, None).await? {
            Consumed::First(_) => Err(refusal),
            Consumed::Missing => Err(Error::invalid_grant(BAD_CODE)),
            Consumed::Again(a) => self.code_replayed(which.client_id, &a, now).await,
        }
    }

    /// RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
    async fn code_replayed(
        &self,
        client_id: &str,
        code: &Artifact,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        if let Some(g) = &code.grant_id {
            tracing::warn!(client_id = %client_id, grant_id = %g, "authorization code replayed; grant revoked");
            self.revoke_grant(g, now).await?;
        }
        Err(Error::invalid_grant(
            "the authorization code was already used; the tokens issued from it are revoked",
        ))
    }
}

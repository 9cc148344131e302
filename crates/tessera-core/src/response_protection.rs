//! Signing and encrypting what Tessera answers an application, by its settings (OIDC Core
//! §10.1-10.2, OIDC Registration §2): one signing rule (a key of the algorithm, or HS256 with the
//! application's secret) and one encryption step (JWE to the application's own key, fetched
//! through the guarded outbound path), shared by ID tokens, userinfo, introspection and
//! authorization responses.

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::id_token::sign_hs256;
use crate::jwks::KeySource;
use std::sync::Arc;

use crate::keys::SigningKey;
use crate::model::{Alg, Client, Encryption, JwsAlg};
use crate::provider::Provider;

impl Provider {
    /// The key that signs for `client` with `alg` at `now`: the key it is pinned to (seed 000
    /// "Certificate"), only of that algorithm and within its window, never another; else the
    /// current key of the algorithm.
    pub(crate) fn signer_for(
        &self,
        client: &Client,
        alg: Alg,
        now: Timestamp,
    ) -> Result<Arc<SigningKey>> {
        let keys = self.keys();
        if let Some(kid) = &client.signing_kid {
            return match keys.by_kid(kid) {
                Some(k) if k.alg == alg && k.signs_at(now) => Ok(k.clone()),
                _ => Err(Error::server(format!(
                    "the application's pinned signing key {kid} cannot sign {} now (outside its window, removed, or of another algorithm); pin another key",
                    alg.as_str()
                ))),
            };
        }
        keys.signer(alg, now)
            .cloned()
            .ok_or_else(|| Error::server(format!("no {} signing key is valid now", alg.as_str())))
    }

    /// RFC 7515: `claims` signed for `client` with `alg` and `typ`: the current key of that
    /// algorithm, or HS256 with the client's secret (OIDC Core §10.1; `secret` when the caller
    /// has it decrypted already).
    pub(crate) fn sign_for(
        &self,
        (client, secret): (&Client, Option<&[u8]>),
        alg: JwsAlg,
        typ: &str,
        claims: &Value,
        now: Timestamp,
    ) -> Result<String> {
        match alg {
            JwsAlg::Key(a) => {
                let key = self.signer_for(client, a, now)?;
                if typ == "JWT" {
                    key.sign_jwt(false, claims)
                } else {
                    key.sign_jwt_typed(typ, claims)
                }
                .map_err(Error::server)
            }
            JwsAlg::HS256 => {
                let secret = match secret {
                    Some(s) => s.to_vec(),
                    None => self
                        .decrypt_secret(client)
                        .ok_or_else(|| Error::server("HS256 for a client without a secret"))?,
                };
                Ok(sign_hs256(&secret, typ, claims))
            }
        }
    }

    /// RFC 7516: `payload` encrypted to `client`'s key for `e.alg` (from its `jwks`, or its
    /// `jwks_uri` through the guarded outbound path); `cty` names a nested JWT. An application
    /// whose keys hold none for the algorithm gets `invalid_client`: nothing is sent in clear.
    pub(crate) async fn encrypt_for(
        &self,
        client: &Client,
        e: Encryption,
        payload: &[u8],
        cty: Option<&str>,
        now: Timestamp,
    ) -> Result<String> {
        let source = KeySource {
            inline: client.federation.jwks.as_ref(),
            uri: client.federation.jwks_uri.as_deref(),
        };
        let refused = |why: String| {
            Error::invalid_client(format!(
                "the response cannot be encrypted for the application: {why}"
            ))
        };
        let key = self
            .jwks
            .encryption_key(&*self.outbound, now, source, e.alg)
            .await
            .map_err(refused)?
            .ok_or_else(|| {
                refused(format!(
                    "its keys hold none for {} (an encryption key of the right type)",
                    e.alg.as_str()
                ))
            })?;
        crate::jwe::encrypt(payload, &key, e.alg, e.enc, cty).map_err(|x| refused(x.to_string()))
    }

    /// A signed JWT, encrypted when `e` says so (OIDC Core §10.2: sign, then encrypt).
    pub(crate) async fn seal_jwt(
        &self,
        client: &Client,
        jws: String,
        e: Option<Encryption>,
        now: Timestamp,
    ) -> Result<String> {
        match e {
            None => Ok(jws),
            Some(e) => {
                self.encrypt_for(client, e, jws.as_bytes(), Some("JWT"), now)
                    .await
            }
        }
    }
}

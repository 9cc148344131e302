//! Access tokens: JWTs per RFC 9068 signed with the client's algorithm (no store write), or opaque
//! 256-bit handles whose SHA-256 is stored (DESIGN §2). Also reads them back for introspection.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::id_token::sign_hs256;
use crate::model::{Artifact, ArtifactKey, ArtifactKind, Client, JwsAlg, TokenFormat};
use crate::provider::Provider;
use crate::secret::{b64url_decode, handle_key, new_handle, new_jti, sha256};
use crate::user_grant::ActiveGrant;

/// What an access token says, whatever its format.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessClaims {
    pub sub: String,
    pub client_id: String,
    pub aud: Vec<String>,
    pub scope: Vec<String>,
    pub iat: Timestamp,
    pub exp: Timestamp,
    /// For tokens of a user's grant: `<grant id>.<random>`, so the grant is found from the token.
    pub jti: String,
    /// Further claims: `act` (RFC 8693 §4.1) and claims a token exchange policy added.
    pub extra: serde_json::Map<String, Value>,
}

/// The claims [`AccessClaims`] owns; `extra` never overrides them.
const OWN_CLAIMS: [&str; 8] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "iat",
    "exp",
    "jti",
    "scope",
];

impl AccessClaims {
    /// The grant a user's token belongs to (none for client_credentials tokens).
    pub fn grant_id(&self) -> Option<&str> {
        self.jti.split_once('.').map(|(g, _)| g)
    }

    /// RFC 9449 §6: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`).
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.extra.get("cnf")?.get("jkt")?.as_str()
    }

    /// RFC 8705 §3.1: the thumbprint of the client certificate the token is bound to
    /// (`cnf.x5t#S256`).
    pub fn certificate_x5t(&self) -> Option<&str> {
        self.extra.get("cnf")?.get("x5t#S256")?.as_str()
    }

    /// What the token is bound to.
    pub fn binding(&self) -> Binding<'_> {
        Binding {
            jkt: self.dpop_jkt(),
            x5t: self.certificate_x5t(),
        }
    }

    /// The RFC 9068 §2.2 claims, also the RFC 7662 §2.2 introspection members.
    pub fn to_json(&self, issuer: &str) -> Value {
        serde_json::to_value(self.as_json(issuer)).unwrap_or(Value::Null)
    }

    /// [`AccessClaims::to_json`] as a serializable view: a JWT's payload is written from it
    /// directly, without building the `Value`.
    pub fn as_json<'a>(&'a self, issuer: &'a str) -> ClaimsJson<'a> {
        ClaimsJson {
            claims: self,
            issuer,
        }
    }

    pub fn from_json(v: &Value) -> Option<AccessClaims> {
        let aud = match &v["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => return None,
        };
        Some(AccessClaims {
            sub: v["sub"].as_str()?.to_owned(),
            client_id: v["client_id"].as_str()?.to_owned(),
            aud,
            scope: v["scope"]
                .as_str()
                .map(|s| s.split(' ').map(str::to_owned).collect())
                .unwrap_or_default(),
            iat: Timestamp(v["iat"].as_i64()?),
            exp: Timestamp(v["exp"].as_i64()?),
            jti: v["jti"].as_str()?.to_owned(),
            extra: v
                .as_object()?
                .iter()
                .filter(|(k, _)| !OWN_CLAIMS.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        })
    }
}

/// The JSON members of [`AccessClaims`] under an issuer: `aud` a string when it is one
/// audience, `scope` space-separated when there is any, and the `extra` claims but those the
/// token owns (and introspection's `active` and `token_type`).
pub struct ClaimsJson<'a> {
    claims: &'a AccessClaims,
    issuer: &'a str,
}

impl Serialize for ClaimsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let c = self.claims;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("iss", self.issuer)?;
        m.serialize_entry("sub", &c.sub)?;
        match c.aud.as_slice() {
            [one] => m.serialize_entry("aud", one)?,
            all => m.serialize_entry("aud", all)?,
        }
        m.serialize_entry("client_id", &c.client_id)?;
        m.serialize_entry("iat", &c.iat.0)?;
        m.serialize_entry("exp", &c.exp.0)?;
        m.serialize_entry("jti", &c.jti)?;
        if !c.scope.is_empty() {
            m.serialize_entry("scope", &c.scope.join(" "))?;
        }
        for (k, x) in &c.extra {
            if !OWN_CLAIMS.contains(&k.as_str()) && k != "active" && k != "token_type" {
                m.serialize_entry(k, x)?;
            }
        }
        m.end()
    }
}

/// What an access token says beyond its client: subject, audience, scope, the grant it belongs
/// to (a user's token), and further claims (`act`, policy claims).
#[derive(Debug, Default)]
pub struct TokenContent<'a> {
    pub sub: &'a str,
    pub aud: Vec<String>,
    pub scope: Vec<String>,
    pub grant_id: Option<&'a str>,
    /// The latest the token may expire (a token exchanged for another lives no longer than
    /// it); the client's access-token lifetime otherwise.
    pub not_after: Option<Timestamp>,
    pub extra: serde_json::Map<String, Value>,
    /// What the token is bound to (`cnf`).
    pub binding: Binding<'a>,
}

/// What a token is bound to (its `cnf` claim): the thumbprint of a DPoP key (RFC 9449 §6,
/// `jkt`) and of a client certificate (RFC 8705 §3, `x5t#S256`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub jkt: Option<&'a str>,
    pub x5t: Option<&'a str>,
}

impl Binding<'_> {
    /// The `cnf` claim (RFC 7800 §3.1), when the token is bound at all.
    fn cnf(&self) -> Option<Value> {
        let mut cnf = serde_json::Map::new();
        if let Some(j) = self.jkt {
            cnf.insert("jkt".into(), json!(j));
        }
        if let Some(x) = self.x5t {
            cnf.insert("x5t#S256".into(), json!(x));
        }
        (!cnf.is_empty()).then_some(Value::Object(cnf))
    }
}

/// An access token found by introspection or revocation.
#[derive(Debug)]
pub enum FoundToken {
    Jwt(AccessClaims),
    Opaque {
        artifact: std::sync::Arc<Artifact>,
        claims: AccessClaims,
    },
}

impl FoundToken {
    pub fn claims(&self) -> &AccessClaims {
        match self {
            FoundToken::Jwt(c) | FoundToken::Opaque { claims: c, .. } => c,
        }
    }
}

/// Key under which a revoked JWT's `jti` is remembered until the token's `exp`: the client's
/// and the `jti`, so an application signing its own HS256 tokens cannot revoke another
/// application's token by copying its `jti` into one of its own.
pub fn revoked_jti_key(claims: &AccessClaims) -> ArtifactKey {
    ArtifactKey::new(
        revoked_prefix(claims),
        sha256(format!("revoked-jti:{}\0{}", claims.client_id, claims.jti).as_bytes()),
    )
}

/// The key earlier releases remembered a revocation under (the `jti` alone): still honoured
/// until the tokens it names have expired.
fn legacy_revoked_jti_key(claims: &AccessClaims) -> ArtifactKey {
    ArtifactKey::new(
        revoked_prefix(claims),
        sha256(format!("revoked-jti:{}", claims.jti).as_bytes()),
    )
}

fn revoked_prefix(claims: &AccessClaims) -> [u8; 8] {
    ((claims.exp.0.max(0) as u64).saturating_mul(1000) << 16).to_be_bytes()
}

impl Provider {
    /// Issues an access token of the client's format; returns the token and its lifetime.
    pub async fn issue_access_token(
        &self,
        client: &Client,
        content: TokenContent<'_>,
        now: Timestamp,
    ) -> Result<(String, i64)> {
        let exp = now.plus(client.access_token_ttl);
        let exp = content.not_after.map_or(exp, |n| exp.min(n));
        let ttl = (exp.0 - now.0).max(0);
        let grant_id = content.grant_id;
        let mut extra = content.extra;
        // The binding comes from the request's DPoP proof only, never from other claims.
        extra.remove("cnf");
        if let Some(cnf) = content.binding.cnf() {
            extra.insert("cnf".into(), cnf);
        }
        let claims = AccessClaims {
            sub: content.sub.to_owned(),
            client_id: client.client_id.clone(),
            aud: content.aud,
            scope: content.scope,
            iat: now,
            exp,
            jti: match grant_id {
                Some(g) => format!("{g}.{}", new_jti()),
                None => new_jti(),
            },
            extra,
        };
        let token = match client.token_format {
            TokenFormat::Jwt => match client.signing_alg {
                JwsAlg::Key(alg) => {
                    let key = self.signer_for(client, alg, now)?;
                    key.sign_jwt(true, &claims.as_json(&self.settings.issuer))
                        .map_err(Error::server)?
                }
                JwsAlg::HS256 => {
                    let secret = self.decrypt_secret(client).ok_or_else(|| {
                        Error::server("HS256 access token for a client without a secret")
                    })?;
                    sign_hs256(&secret, "at+jwt", &claims.to_json(&self.settings.issuer))
                }
            },
            TokenFormat::Opaque => {
                let (handle, key) = new_handle();
                let artifact = Artifact {
                    key,
                    kind: ArtifactKind::AccessToken,
                    client_id: client.client_id.clone(),
                    grant_id: grant_id.map(str::to_owned),
                    user_id: None,
                    expires_at: claims.exp,
                    revoked_at: None,
                    consumed_at: None,
                    payload: claims.to_json(&self.settings.issuer),
                };
                self.store.insert_artifact(&artifact).await?;
                handle
            }
        };
        Ok((token, ttl))
    }

    /// Finds an access token issued by this server: a JWT whose signature verifies under a published
    /// key of the algorithm its `kid` is pinned to, or a stored opaque handle. Anything else is `None`.
    pub async fn find_access_token(&self, token: &str) -> Result<Option<FoundToken>> {
        if token.len() > 16 * 1024 {
            return Ok(None);
        }
        if token.matches('.').count() == 2 {
            let secret = self.hs256_client_secret(token).await?;
            return Ok(self
                .verify_own_jwt(token, secret.as_deref())
                .map(FoundToken::Jwt));
        }
        let Some(key) = handle_key(token) else {
            return Ok(None);
        };
        let cached = self.artifacts.get(&key);
        self.count_token_lookup(cached.is_some());
        let a = match cached {
            Some(a) => a,
            None => {
                let Some(a) = self.store.get_artifact(&key).await? else {
                    return Ok(None);
                };
                let a = std::sync::Arc::new(a);
                self.artifacts.put(a.clone());
                a
            }
        };
        if a.kind != ArtifactKind::AccessToken {
            return Ok(None);
        }
        Ok(
            AccessClaims::from_json(&a.payload).map(|claims| FoundToken::Opaque {
                artifact: a.clone(),
                claims,
            }),
        )
    }

    /// An access token in force: ours, unexpired, unrevoked, its client enabled, and (for a user's
    /// token) its grant in force and its user not blocked. Returns the claims and the grant.
    ///
    /// An HS256 access token is signed with its client's secret, so that client could have made
    /// it up: it counts only when `hs256_trusted_for` names that very client (introspection by
    /// the client itself), never at userinfo or as a token exchange subject or actor.
    pub async fn active_access_token(
        &self,
        token: &str,
        hs256_trusted_for: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<(AccessClaims, Option<ActiveGrant>)>> {
        let Some(found) = self.find_access_token(token).await? else {
            return Ok(None);
        };
        let claims = found.claims().clone();
        let symmetric = matches!(&found, FoundToken::Jwt(_))
            && crate::assertion::peek(token)
                .is_some_and(|(h, _)| h.alg == jsonwebtoken::Algorithm::HS256);
        if symmetric && hs256_trusted_for != Some(claims.client_id.as_str()) {
            return Ok(None);
        }
        if claims.exp <= now {
            return Ok(None);
        }
        let revoked = match &found {
            FoundToken::Opaque { artifact, .. } => artifact.revoked_at.is_some(),
            FoundToken::Jwt(c) => {
                self.store
                    .get_artifact(&revoked_jti_key(c))
                    .await?
                    .is_some()
                    || self
                        .store
                        .get_artifact(&legacy_revoked_jti_key(c))
                        .await?
                        .is_some_and(|a| a.client_id == c.client_id)
            }
        };
        if revoked {
            return Ok(None);
        }
        // A token outlives neither its client nor the client's enabled state.
        if !self
            .client(&claims.client_id)
            .await?
            .is_some_and(|c| c.client.enabled)
        {
            return Ok(None);
        }
        let grant = match claims.grant_id() {
            Some(g) => match self.active_grant(g, now).await? {
                Some(active) => Some(active),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some((claims, grant)))
    }

    /// For an HS256 access token: the secret of the client it names, if that client signs its
    /// access tokens with HS256.
    async fn hs256_client_secret(&self, token: &str) -> Result<Option<Vec<u8>>> {
        let Some((header, claims)) = crate::assertion::peek(token) else {
            return Ok(None);
        };
        if header.alg != jsonwebtoken::Algorithm::HS256 {
            return Ok(None);
        }
        let Some(id) = claims["client_id"].as_str() else {
            return Ok(None);
        };
        Ok(self
            .client(id)
            .await?
            .filter(|c| c.client.signing_alg == JwsAlg::HS256)
            .and_then(|c| c.secret.clone()))
    }

    /// RFC 7515 §5.2 validation of a JWT access token this server signed (RFC 9068 §4): with the
    /// key its `kid` names under that key's algorithm, or HS256 under `hs256_secret`.
    fn verify_own_jwt(&self, token: &str, hs256_secret: Option<&[u8]>) -> Option<AccessClaims> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
        if header["typ"].as_str() != Some("at+jwt") || !crate::assertion::header_acceptable(&header)
        {
            return None;
        }
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        let sig = b64url_decode(s)?;
        let verified = match (header["alg"].as_str()?, hs256_secret) {
            ("HS256", Some(secret)) => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::verify(&key, signed, &sig).is_ok()
            }
            ("HS256", None) => false,
            (alg, _) => {
                let keys = self.keys();
                let key = keys.by_kid(header["kid"].as_str()?)?;
                // The algorithm is pinned to the key: a header naming another one never verifies.
                alg == key.alg.as_str() && key.verify(signed, &sig)
            }
        };
        if !verified {
            return None;
        }
        let claims: Value = serde_json::from_slice(&b64url_decode(p)?).ok()?;
        if claims["iss"].as_str()? != self.settings.issuer {
            return None;
        }
        AccessClaims::from_json(&claims)
    }
}

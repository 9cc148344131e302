//! Signing keys (DESIGN §3, RFC 7517, RFC 7518 §3, RFC 8037): generation and import with a
//! self-signed X.509 certificate, encryption at rest, validity windows, the key ring that signs and
//! verifies with key objects parsed once, and the published JWKS.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair, VerificationAlgorithm,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::model::{Alg, KeyRecord};
use crate::secret::{b64std, b64url, sha256, MasterKey};

/// A retired key stays in the JWKS this long after it stops signing: the longest token lifetime
/// (1440 minutes, seed 004) plus five minutes of clock skew.
pub const PUBLISH_AFTER_RETIREMENT: i64 = 86_400 + 300;

impl crate::model::KeyRecord {
    /// Where the key is in its life at `now`: `upcoming` (published ahead of use), `signing`,
    /// `retired` (signs no more, still published for verification) or `expired`.
    pub fn state(&self, now: Timestamp) -> KeyState {
        if now < self.not_before {
            KeyState::Upcoming
        } else if now < self.not_after {
            KeyState::Signing
        } else if now < self.not_after.plus(PUBLISH_AFTER_RETIREMENT) {
            KeyState::Retired
        } else {
            KeyState::Expired
        }
    }
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not signing yet.
    Upcoming,
    Signing,
    /// No longer signing, still published for the tokens it signed.
    Retired,
    /// No longer published.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Upcoming => "upcoming",
            KeyState::Signing => "signing",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// A key's record outlives its publication by the longest SSO session (`sign_in.session_lifetime`
/// is at most 30 days), then it is deleted.
pub const KEEP_AFTER_PUBLICATION: i64 = 30 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("the private key does not match the certificate's public key")]
    Mismatch,
    #[error("the key could not be decrypted: {0}")]
    Decrypt(#[from] crate::secret::MasterKeyError),
    #[error("cryptographic operation failed")]
    Crypto,
}

fn invalid(msg: impl Into<String>) -> KeyError {
    KeyError::Invalid(msg.into())
}

enum Signer {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// An ECDH-ES (P-256) key others encrypt to Tessera with (`use: enc` in the JWKS). It shares
/// the window of the ES256 signing key it belongs to, so it is published, used and retired with
/// it; being derived from the master key, every node holds the same one without storing it.
pub struct EncryptionKey {
    pub kid: String,
    jwk: Value,
    private: aws_lc_rs::agreement::PrivateKey,
}

impl EncryptionKey {
    /// The key of the ES256 signing key `signing_kid`: HMAC under the master key, counted up
    /// until it is a valid P-256 scalar (almost always at once).
    fn derive(master: &MasterKey, signing_kid: &str) -> Result<EncryptionKey, KeyError> {
        use aws_lc_rs::agreement::{PrivateKey, ECDH_P256};
        let private = (0u32..16)
            .find_map(|n| {
                let seed = master.derive(format!("encryption-key\0{signing_kid}\0{n}").as_bytes());
                PrivateKey::from_private_key(&ECDH_P256, &seed).ok()
            })
            .ok_or(KeyError::Crypto)?;
        let public = private.compute_public_key().map_err(|_| KeyError::Crypto)?;
        let p = public.as_ref();
        if p.len() != 65 {
            return Err(KeyError::Crypto);
        }
        let mut jwk = Map::new();
        jwk.insert("kty".into(), json!("EC"));
        jwk.insert("crv".into(), json!("P-256"));
        jwk.insert("x".into(), json!(b64url(&p[1..33])));
        jwk.insert("y".into(), json!(b64url(&p[33..])));
        let kid = thumbprint(&jwk);
        jwk.insert("kid".into(), json!(kid));
        jwk.insert("use".into(), json!("enc"));
        Ok(EncryptionKey {
            kid,
            jwk: Value::Object(jwk),
            private,
        })
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    pub fn private(&self) -> &aws_lc_rs::agreement::PrivateKey {
        &self.private
    }
}

/// A key ready to sign and verify: parsed once when the ring is loaded.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    signer: Signer,
    verifier: ParsedPublicKey,
    /// RS256 keys only: the same private key for RSA-OAEP, with which Tessera's SAML service
    /// provider takes the content keys of encrypted assertions (its metadata names the key's
    /// certificate for signing and encryption, as SAML service providers usually do).
    decrypter: Option<OaepPrivateDecryptingKey>,
    /// ES256 keys only: Tessera's encryption key of the same window (request objects encrypted
    /// to Tessera, RFC 9101 §6.1), derived from the master key and this key's `kid`.
    encryption: Option<EncryptionKey>,
    /// The public JWK, as published.
    jwk: Value,
    /// `base64url(header) + "."` for `typ: at+jwt` (RFC 9068 §2.1) and `typ: JWT`.
    at_jwt_prefix: String,
    jwt_prefix: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

fn verification_alg(alg: Alg) -> &'static dyn VerificationAlgorithm {
    match alg {
        Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Alg::EdDSA => &signature::ED25519,
    }
}

/// Parses a PKCS#8 (or, for RSA, PKCS#1) private key for `alg`; the key type must fit the algorithm.
fn parse_signer(alg: Alg, der: &[u8]) -> Result<(Signer, Vec<u8>), KeyError> {
    let wrong = || {
        invalid(format!(
            "the private key is not a valid key for {}",
            alg.as_str()
        ))
    };
    Ok(match alg {
        Alg::RS256 | Alg::PS256 => {
            let kp = RsaKeyPair::from_pkcs8(der)
                .or_else(|_| RsaKeyPair::from_der(der))
                .map_err(|_| wrong())?;
            if kp.public_modulus_len() < 256 {
                return Err(invalid("RSA keys must have at least 2048 bits"));
            }
            let public = kp.public_key().as_ref().to_vec();
            let enc: &'static dyn signature::RsaEncoding = if alg == Alg::RS256 {
                &signature::RSA_PKCS1_SHA256
            } else {
                &signature::RSA_PSS_SHA256
            };
            (Signer::Rsa(kp, enc), public)
        }
        Alg::ES256 => {
            let kp = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .or_else(|_| {
                    EcdsaKeyPair::from_private_key_der(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        der,
                    )
                })
                .map_err(|_| wrong())?;
            let public = kp.public_key().as_ref().to_vec();
            (Signer::Ecdsa(kp), public)
        }
        Alg::EdDSA => {
            let kp = Ed25519KeyPair::from_pkcs8(der).map_err(|_| wrong())?;
            let public = kp.public_key().as_ref().to_vec();
            (Signer::Ed25519(kp), public)
        }
    })
}

/// The PKCS#8 v1 form of a parsed key, which is what is stored.
fn pkcs8_of(signer: &Signer) -> Result<Vec<u8>, KeyError> {
    Ok(match signer {
        Signer::Rsa(kp, _) => kp.as_der().map_err(|_| KeyError::Crypto)?.as_ref().to_vec(),
        Signer::Ecdsa(kp) => kp
            .to_pkcs8v1()
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
        Signer::Ed25519(kp) => kp
            .to_pkcs8v1()
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
    })
}

/// Strips the leading zero bytes of a DER INTEGER (RFC 7518 §6.3.1: no leading zeros).
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

/// Public JWK members (RFC 7518 §6) of the leaf certificate's key; also returns the raw key bytes.
fn public_jwk(alg: Alg, leaf_der: &[u8]) -> Result<(Map<String, Value>, Vec<u8>), KeyError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(leaf_der)
        .map_err(|_| invalid("the certificate is not valid DER X.509"))?;
    let spki = cert.public_key();
    let raw = spki.subject_public_key.data.to_vec();
    let mut m = Map::new();
    match (alg, spki.parsed()) {
        (Alg::RS256 | Alg::PS256, Ok(x509_parser::public_key::PublicKey::RSA(rsa))) => {
            m.insert("kty".into(), json!("RSA"));
            m.insert("n".into(), json!(b64url(unsigned(rsa.modulus))));
            m.insert("e".into(), json!(b64url(unsigned(rsa.exponent))));
        }
        (Alg::ES256, Ok(x509_parser::public_key::PublicKey::EC(point))) => {
            let p = point.data();
            if p.len() != 65 || p[0] != 4 {
                return Err(invalid(
                    "the certificate's key is not an uncompressed P-256 point",
                ));
            }
            m.insert("kty".into(), json!("EC"));
            m.insert("crv".into(), json!("P-256"));
            m.insert("x".into(), json!(b64url(&p[1..33])));
            m.insert("y".into(), json!(b64url(&p[33..65])));
        }
        (Alg::EdDSA, _) if raw.len() == 32 => {
            m.insert("kty".into(), json!("OKP"));
            m.insert("crv".into(), json!("Ed25519"));
            m.insert("x".into(), json!(b64url(&raw)));
        }
        _ => {
            return Err(invalid(format!(
                "the certificate's key does not fit {}",
                alg.as_str()
            )))
        }
    }
    Ok((m, raw))
}

/// RFC 7638 JWK thumbprint of the required members, used as the `kid`.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> String {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["crv", "kty", "x"],
    };
    let canon: Map<String, Value> = members
        .iter()
        .filter_map(|k| jwk.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect();
    b64url(&sha256(Value::Object(canon).to_string().as_bytes()))
}

impl SigningKey {
    /// Decrypts and parses a stored key once, for the lifetime of the key ring.
    pub fn load(rec: &KeyRecord, master: &MasterKey) -> Result<SigningKey, KeyError> {
        let der = master.decrypt(&rec.kid, &rec.private_ciphertext)?;
        let (signer, public) = parse_signer(rec.alg, &der)?;
        let decrypter = match rec.alg {
            Alg::RS256 => Some(
                PrivateDecryptingKey::from_pkcs8(&der)
                    .map_err(|_| KeyError::Crypto)
                    .and_then(|k| OaepPrivateDecryptingKey::new(k).map_err(|_| KeyError::Crypto))?,
            ),
            _ => None,
        };
        let encryption = match rec.alg {
            Alg::ES256 => Some(EncryptionKey::derive(master, &rec.kid)?),
            _ => None,
        };
        let leaf = rec
            .x5c
            .first()
            .and_then(|c| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, c).ok()
            })
            .ok_or_else(|| invalid("the key has no certificate"))?;
        let (mut jwk, raw) = public_jwk(rec.alg, &leaf)?;
        if raw != public {
            return Err(KeyError::Mismatch);
        }
        let verifier = ParsedPublicKey::new(verification_alg(rec.alg), &public)
            .map_err(|_| KeyError::Crypto)?;
        jwk.insert("kid".into(), json!(rec.kid));
        jwk.insert("alg".into(), json!(rec.alg.as_str()));
        jwk.insert("use".into(), json!("sig"));
        jwk.insert("x5c".into(), json!(rec.x5c));
        jwk.insert("x5t#S256".into(), json!(b64url(&sha256(&leaf))));
        let prefix = |typ: &str| {
            let h = json!({"alg": rec.alg.as_str(), "kid": rec.kid, "typ": typ});
            format!("{}.", b64url(h.to_string().as_bytes()))
        };
        Ok(SigningKey {
            kid: rec.kid.clone(),
            alg: rec.alg,
            not_before: rec.not_before,
            not_after: rec.not_after,
            at_jwt_prefix: prefix("at+jwt"),
            jwt_prefix: prefix("JWT"),
            signer,
            verifier,
            decrypter,
            encryption,
            jwk: Value::Object(jwk),
        })
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Tessera's encryption key of this key's window (ES256 keys only).
    pub fn encryption(&self) -> Option<&EncryptionKey> {
        self.encryption.as_ref()
    }

    /// RFC 7515 §5.1: the JWS signature over `msg` with this key's algorithm.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let _span = tracing::trace_span!(target: crate::TRACE_TARGET, "sign", otel.name = "sign", alg = self.alg.as_str(), kid = %self.kid).entered();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.signer {
            Signer::Rsa(kp, enc) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(*enc, &rng, msg, &mut sig)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(sig)
            }
            Signer::Ecdsa(kp) => Ok(kp
                .sign(&rng, msg)
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec()),
            Signer::Ed25519(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
        }
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verifier.verify_sig(msg, sig).is_ok()
    }

    /// RFC 7515 §7.1 compact serialization: `header.claims.signature`; `typ` is `at+jwt` (RFC 9068)
    /// for access tokens, `JWT` otherwise.
    pub fn sign_jwt(&self, at_jwt: bool, claims: &impl Serialize) -> Result<String, KeyError> {
        let prefix = if at_jwt {
            &self.at_jwt_prefix
        } else {
            &self.jwt_prefix
        };
        self.sign_after(prefix.clone(), claims)
    }

    /// [`SigningKey::sign_jwt`] with another `typ` (e.g. `logout+jwt`).
    pub fn sign_jwt_typed(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let h = json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": typ});
        self.sign_after(format!("{}.", b64url(h.to_string().as_bytes())), claims)
    }

    fn sign_after(&self, mut out: String, claims: &impl Serialize) -> Result<String, KeyError> {
        out.reserve(512);
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Crypto)?;
        base64::Engine::encode_string(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &payload,
            &mut out,
        );
        let sig = self.sign(out.as_bytes())?;
        out.push('.');
        base64::Engine::encode_string(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &sig,
            &mut out,
        );
        Ok(out)
    }

    /// RFC 8017 §7.1.2 (RSAES-OAEP decryption) with an RS256 key; `None` for any failure (one
    /// answer, so a caller learns nothing of why) and for keys of other algorithms.
    pub fn decrypt_oaep(
        &self,
        alg: &'static OaepAlgorithm,
        ciphertext: &[u8],
        label: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        let key = self.decrypter.as_ref()?;
        let mut out = vec![0u8; key.min_output_size()];
        let plain = key.decrypt(alg, ciphertext, &mut out, label).ok()?;
        Some(plain.to_vec())
    }

    pub fn signs_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now < self.not_after
    }

    pub fn published_at(&self, now: Timestamp) -> bool {
        now < self.not_after.plus(PUBLISH_AFTER_RETIREMENT)
    }

    /// Whether the record is still needed: after its publication it still verifies the expired
    /// ID tokens `id_token_hint` accepts (logout, `prompt=none`) for the longest SSO session.
    pub fn kept_at(&self, now: Timestamp) -> bool {
        now < self
            .not_after
            .plus(PUBLISH_AFTER_RETIREMENT + KEEP_AFTER_PUBLICATION)
    }
}

/// Every loaded key: the signer for each algorithm now, lookup by `kid`, and the JWKS.
#[derive(Debug, Default, Clone)]
pub struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
}

impl KeyRing {
    /// Loads every record; a record that fails to load is reported and left out.
    pub fn load(records: &[KeyRecord], master: &MasterKey) -> (KeyRing, Vec<(String, KeyError)>) {
        let mut keys = Vec::new();
        let mut failures = Vec::new();
        for rec in records {
            match SigningKey::load(rec, master) {
                Ok(k) => keys.push(Arc::new(k)),
                Err(e) => failures.push((rec.kid.clone(), e)),
            }
        }
        (KeyRing { keys }, failures)
    }

    /// The key that signs for `alg` at `now`: windows of one algorithm never overlap.
    pub fn signer(&self, alg: Alg, now: Timestamp) -> Option<&Arc<SigningKey>> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.signs_at(now))
            .max_by_key(|k| k.not_before)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<SigningKey>> {
        self.keys.iter()
    }

    pub fn by_kid(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// RFC 7517 §5: the published keys (current, upcoming and recently retired), each ES256
    /// key followed by the encryption key of its window.
    pub fn jwks(&self, now: Timestamp) -> Value {
        let keys: Vec<&Value> = self
            .keys
            .iter()
            .filter(|k| k.published_at(now))
            .flat_map(|k| std::iter::once(k.jwk()).chain(k.encryption().map(EncryptionKey::jwk)))
            .collect();
        json!({ "keys": keys })
    }

    /// The encryption keys others may have encrypted to: those still published, the one named
    /// `kid` first when there is one.
    pub fn encryption_keys(&self, now: Timestamp, kid: Option<&str>) -> Vec<&EncryptionKey> {
        let mut keys: Vec<&EncryptionKey> = self
            .keys
            .iter()
            .filter(|k| k.published_at(now))
            .filter_map(|k| k.encryption())
            .collect();
        keys.sort_by_key(|k| Some(k.kid.as_str()) != kid);
        keys
    }
}

fn to_offset(t: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Builds the stored record of a key: kid (RFC 7638 thumbprint) and encrypted PKCS#8.
fn record(
    alg: Alg,
    signer: &Signer,
    x5c_der: Vec<Vec<u8>>,
    window: (Timestamp, Timestamp),
    master: &MasterKey,
    now: Timestamp,
) -> Result<KeyRecord, KeyError> {
    let leaf = x5c_der
        .first()
        .ok_or_else(|| invalid("a certificate is required"))?;
    let (jwk, _) = public_jwk(alg, leaf)?;
    let kid = thumbprint(&jwk);
    let pkcs8 = pkcs8_of(signer)?;
    Ok(KeyRecord {
        private_ciphertext: master.encrypt(&kid, &pkcs8),
        kid,
        alg,
        x5c: x5c_der.iter().map(|d| b64std(d)).collect(),
        not_before: window.0,
        not_after: window.1,
        created_at: now,
    })
}

/// Generates a key for `alg` (RSA-2048, P-256, Ed25519) with a self-signed certificate valid for its window.
pub fn generate(
    alg: Alg,
    window: (Timestamp, Timestamp),
    master: &MasterKey,
    now: Timestamp,
) -> Result<KeyRecord, KeyError> {
    let pkcs8: Vec<u8> = match alg {
        Alg::RS256 | Alg::PS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| KeyError::Crypto)?
            .as_der()
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
        Alg::ES256 => EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| KeyError::Crypto)?
            .to_pkcs8v1()
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
        Alg::EdDSA => Ed25519KeyPair::generate()
            .map_err(|_| KeyError::Crypto)?
            .to_pkcs8v1()
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
    };
    let (signer, _) = parse_signer(alg, &pkcs8)?;
    let cert_key = rcgen::KeyPair::try_from(pkcs8.as_slice())
        .map_err(|e| invalid(format!("certificate key: {e}")))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|_| KeyError::Crypto)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Tessera {} signing key", alg.as_str()),
    );
    params.not_before = to_offset(window.0.plus(-300));
    params.not_after = to_offset(window.1.plus(PUBLISH_AFTER_RETIREMENT));
    let cert = params
        .self_signed(&cert_key)
        .map_err(|e| invalid(format!("certificate: {e}")))?;
    record(alg, &signer, vec![cert.der().to_vec()], window, master, now)
}

/// Imports a PEM private key (PKCS#8, or PKCS#1 / SEC1) with its PEM certificate chain, leaf first.
pub fn import(
    alg: Alg,
    key_pem: &str,
    chain_pem: &str,
    window: (Timestamp, Timestamp),
    master: &MasterKey,
    now: Timestamp,
) -> Result<KeyRecord, KeyError> {
    let key = pem::parse(key_pem).map_err(|_| invalid("the private key is not PEM"))?;
    if !key.tag().ends_with("PRIVATE KEY") || key.tag().contains("ENCRYPTED") {
        return Err(invalid(format!(
            "expected an unencrypted PRIVATE KEY block, found {}",
            key.tag()
        )));
    }
    let (signer, public) = parse_signer(alg, key.contents())?;
    let chain: Vec<Vec<u8>> = pem::parse_many(chain_pem)
        .map_err(|_| invalid("the certificate chain is not PEM"))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    let leaf = chain
        .first()
        .ok_or_else(|| invalid("the certificate chain holds no CERTIFICATE"))?;
    let (_, raw) = public_jwk(alg, leaf)?;
    if raw != public {
        return Err(KeyError::Mismatch);
    }
    record(alg, &signer, chain, window, master, now)
}

/// What one round of signing-key upkeep did (`Provider::ensure_signing_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upkeep {
    Nothing,
    Applied,
    /// The configuration moved meanwhile: reload and look again.
    Raced,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk() -> MasterKey {
        MasterKey::parse(&"11".repeat(32)).unwrap()
    }

    #[test]
    fn every_algorithm_generates_signs_and_verifies() {
        let now = Timestamp(1_700_000_000);
        for alg in Alg::ALL {
            let rec = generate(alg, (now, now.plus(3600)), &mk(), now).unwrap();
            let key = SigningKey::load(&rec, &mk()).unwrap();
            let sig = key.sign(b"payload").unwrap();
            assert!(key.verify(b"payload", &sig), "{alg:?}");
            assert!(!key.verify(b"other", &sig), "{alg:?}");
            let jwk = key.jwk();
            assert_eq!(jwk["kid"], rec.kid);
            assert_eq!(jwk["alg"], alg.as_str());
            assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
            assert!(jwk["x5c"][0].is_string() && jwk["x5t#S256"].is_string());
            assert!(SigningKey::load(&rec, &MasterKey::parse(&"22".repeat(32)).unwrap()).is_err());
        }
    }

    #[test]
    fn windows_select_signer_and_publication() {
        let now = Timestamp(1_700_000_000);
        let old = generate(Alg::ES256, (now.plus(-100), now), &mk(), now).unwrap();
        let cur = generate(Alg::ES256, (now, now.plus(100)), &mk(), now).unwrap();
        let (ring, failures) = KeyRing::load(&[old.clone(), cur.clone()], &mk());
        assert!(failures.is_empty());
        assert_eq!(ring.signer(Alg::ES256, now).unwrap().kid, cur.kid);
        assert_eq!(ring.signer(Alg::ES256, now.plus(-1)).unwrap().kid, old.kid);
        assert!(ring.signer(Alg::RS256, now).is_none());
        // Each ES256 key comes with the encryption key of its window, published and dropped
        // with it; the one named first is tried first.
        assert_eq!(ring.jwks(now)["keys"].as_array().unwrap().len(), 4);
        let later = now.plus(PUBLISH_AFTER_RETIREMENT);
        assert_eq!(ring.jwks(later)["keys"].as_array().unwrap().len(), 2);
        let cur_enc = ring
            .by_kid(&cur.kid)
            .unwrap()
            .encryption()
            .unwrap()
            .kid
            .clone();
        assert_eq!(ring.encryption_keys(now, Some(&cur_enc))[0].kid, cur_enc);
        assert_eq!(ring.encryption_keys(later, None).len(), 1);
        // The same master key and signing key give the same encryption key on every node.
        let (again, _) = KeyRing::load(std::slice::from_ref(&cur), &mk());
        assert_eq!(
            again.encryption_keys(now, None)[0].jwk(),
            ring.by_kid(&cur.kid).unwrap().encryption().unwrap().jwk()
        );
    }

    #[test]
    fn import_checks_the_certificate_matches() {
        let now = Timestamp(1_700_000_000);
        let a = generate(Alg::ES256, (now, now.plus(100)), &mk(), now).unwrap();
        let b = generate(Alg::ES256, (now, now.plus(100)), &mk(), now).unwrap();
        let key_a = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            mk().decrypt(&a.kid, &a.private_ciphertext).unwrap(),
        ));
        let cert = |r: &KeyRecord| {
            let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &r.x5c[0])
                .unwrap();
            pem::encode(&pem::Pem::new("CERTIFICATE", der))
        };
        let imported = import(
            Alg::ES256,
            &key_a,
            &cert(&a),
            (now, now.plus(10)),
            &mk(),
            now,
        )
        .unwrap();
        assert_eq!(imported.kid, a.kid);
        assert!(matches!(
            import(
                Alg::ES256,
                &key_a,
                &cert(&b),
                (now, now.plus(10)),
                &mk(),
                now
            ),
            Err(KeyError::Mismatch)
        ));
        assert!(import(
            Alg::RS256,
            &key_a,
            &cert(&a),
            (now, now.plus(10)),
            &mk(),
            now
        )
        .is_err());
        assert!(import(
            Alg::ES256,
            "garbage",
            &cert(&a),
            (now, now.plus(10)),
            &mk(),
            now
        )
        .is_err());
    }
}

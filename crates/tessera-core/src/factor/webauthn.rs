//! WebAuthn relying-party ceremonies (W3C Web Authentication Level 3): registering a credential
//! (§7.1) and verifying an assertion (§7.2), with signatures checked by aws-lc-rs and CBOR read by
//! `ciborium`. Tessera asks for no attestation (§5.4.7 `attestation: "none"`) and trusts none:
//! a passkey proves possession of its key, not the make of the authenticator.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use ciborium::Value;
use serde::{Deserialize, Serialize};

use crate::secret::{b64url_decode, constant_time_eq, sha256};

/// COSE algorithm identifiers (RFC 9053) Tessera accepts, in order of preference.
pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const RS256: i64 = -257;
pub const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

/// §5.8.6 `UserVerificationRequirement`: whether the authenticator must verify the user (PIN,
/// biometrics) as well as see them present.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    Required,
    #[default]
    Preferred,
    Discouraged,
}

impl UserVerification {
    pub fn as_str(self) -> &'static str {
        match self {
            UserVerification::Required => "required",
            UserVerification::Preferred => "preferred",
            UserVerification::Discouraged => "discouraged",
        }
    }
}

/// The relying party: its id (the issuer's host) and the one origin its pages are served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origin: String,
    pub user_verification: UserVerification,
}

impl RelyingParty {
    /// The relying party of an issuer: its host and origin; `None` beside it when the host is
    /// no domain name (an IP address), where WebAuthn cannot work.
    pub fn of_issuer(issuer: &str, user_verification: UserVerification) -> (RelyingParty, bool) {
        let url = url::Url::parse(issuer).ok();
        let domain = url
            .as_ref()
            .is_some_and(|u| matches!(u.host(), Some(url::Host::Domain(_))));
        let rp = RelyingParty {
            id: url
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            origin: url
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
            user_verification,
        };
        (rp, domain)
    }
}

/// Why a ceremony was refused: for the audit log only; the user sees one message for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyError {
    #[error("the client data is malformed")]
    ClientData,
    #[error("the client data is for another ceremony")]
    Type,
    #[error("the challenge is not the one this server issued")]
    Challenge,
    #[error("the origin is not this server's")]
    Origin,
    #[error("the authenticator data is malformed")]
    AuthenticatorData,
    #[error("the authenticator data is for another relying party")]
    RpId,
    #[error("the user was not present")]
    UserPresence,
    #[error("the user was not verified")]
    UserVerification,
    #[error("the attestation object is malformed")]
    Attestation,
    #[error("the credential's public key is malformed or of an unsupported algorithm")]
    PublicKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("the signature counter did not increase: the authenticator may have been cloned")]
    Counter,
    #[error("the credential is not registered")]
    UnknownCredential,
}

impl CeremonyError {
    /// A stable name, for the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            CeremonyError::ClientData => "client_data",
            CeremonyError::Type => "ceremony_type",
            CeremonyError::Challenge => "challenge",
            CeremonyError::Origin => "origin",
            CeremonyError::AuthenticatorData => "authenticator_data",
            CeremonyError::RpId => "rp_id",
            CeremonyError::UserPresence => "user_presence",
            CeremonyError::UserVerification => "user_verification",
            CeremonyError::Attestation => "attestation",
            CeremonyError::PublicKey => "public_key",
            CeremonyError::Signature => "signature",
            CeremonyError::Counter => "counter_regression",
            CeremonyError::UnknownCredential => "unknown_credential",
        }
    }
}

type Checked<T> = Result<T, CeremonyError>;

/// §5.8.1 `CollectedClientData`, the members a relying party checks.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: bool,
}

/// §6.1 authenticator data flags.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// §6.1 authenticator data, parsed.
struct AuthenticatorData {
    flags: u8,
    sign_count: u32,
    /// §6.5.1 attested credential data: the credential id and its COSE public key.
    credential: Option<(Vec<u8>, Vec<u8>)>,
}

/// A credential registered by [`verify_registration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub id: Vec<u8>,
    /// The COSE_Key (RFC 9052 §7) as the authenticator sent it.
    pub public_key: Vec<u8>,
    pub alg: i64,
    pub sign_count: u32,
    pub user_verified: bool,
    /// §6.1.3: the credential may be backed up (synced) to other devices.
    pub backup_eligible: bool,
}

/// What an assertion posts (§5.2.2 `AuthenticatorAssertionResponse`), decoded.
#[derive(Debug, Clone, Copy)]
pub struct Assertion<'a> {
    pub client_data_json: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
}

/// A verified assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    pub sign_count: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
}

/// The stored credential an assertion is checked against.
#[derive(Debug, Clone, Copy)]
pub struct StoredKey<'a> {
    pub public_key: &'a [u8],
    pub alg: i64,
    pub sign_count: u32,
}

/// §7.1 steps 5–12 and §7.2 steps 10–16: the client data is JSON of the expected type, for the
/// challenge this server issued, from this server's origin, not from a frame of another site.
fn check_client_data(rp: &RelyingParty, json: &[u8], kind: &str, challenge: &[u8]) -> Checked<()> {
    let c: ClientData = serde_json::from_slice(json).map_err(|_| CeremonyError::ClientData)?;
    if c.kind != kind {
        return Err(CeremonyError::Type);
    }
    let sent = b64url_decode(&c.challenge).ok_or(CeremonyError::Challenge)?;
    if !constant_time_eq(&sent, challenge) {
        return Err(CeremonyError::Challenge);
    }
    if c.origin != rp.origin || c.cross_origin {
        return Err(CeremonyError::Origin);
    }
    Ok(())
}

/// §6.1: rpIdHash (32), flags (1), signCount (4), then attested credential data when AT is set.
fn parse_authenticator_data(data: &[u8]) -> Checked<AuthenticatorData> {
    let bad = CeremonyError::AuthenticatorData;
    if data.len() < 37 {
        return Err(bad);
    }
    let flags = data[32];
    let sign_count = u32::from_be_bytes([data[33], data[34], data[35], data[36]]);
    let credential = if flags & AT != 0 {
        // §6.5.1: aaguid (16), credentialIdLength (2), credentialId, credentialPublicKey (CBOR).
        let rest = data.get(37 + 16..).ok_or(bad)?;
        let len = usize::from(u16::from_be_bytes([
            *rest.first().ok_or(bad)?,
            *rest.get(1).ok_or(bad)?,
        ]));
        if len == 0 || len > 1023 {
            return Err(bad);
        }
        let id = rest.get(2..2 + len).ok_or(bad)?.to_vec();
        let key_bytes = rest.get(2 + len..).ok_or(bad)?;
        let mut reader: &[u8] = key_bytes;
        let _: Value = ciborium::de::from_reader(&mut reader).map_err(|_| bad)?;
        let used = key_bytes.len() - reader.len();
        Some((id, key_bytes[..used].to_vec()))
    } else {
        None
    };
    Ok(AuthenticatorData {
        flags,
        sign_count,
        credential,
    })
}

/// §7.1 steps 13–17 / §7.2 steps 15–18: for this relying party, the user present, verified
/// when the policy requires it, and the backup flags consistent.
fn check_flags(rp: &RelyingParty, raw: &[u8], data: &AuthenticatorData) -> Checked<()> {
    if !constant_time_eq(&raw[..32], &sha256(rp.id.as_bytes())) {
        return Err(CeremonyError::RpId);
    }
    if data.flags & UP == 0 {
        return Err(CeremonyError::UserPresence);
    }
    if rp.user_verification == UserVerification::Required && data.flags & UV == 0 {
        return Err(CeremonyError::UserVerification);
    }
    // §6.1.3: a credential backed up must be eligible for backup.
    if data.flags & BS != 0 && data.flags & BE == 0 {
        return Err(CeremonyError::AuthenticatorData);
    }
    Ok(())
}

fn map_get<'v>(map: &'v [(Value, Value)], key: &Value) -> Option<&'v Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

fn bytes_of(map: &[(Value, Value)], key: i64) -> Checked<&[u8]> {
    map_get(map, &int(key))
        .and_then(Value::as_bytes)
        .map(Vec::as_slice)
        .ok_or(CeremonyError::PublicKey)
}

fn int_of(map: &[(Value, Value)], key: i64) -> Checked<i64> {
    map_get(map, &int(key))
        .and_then(Value::as_integer)
        .and_then(|i| i64::try_from(i).ok())
        .ok_or(CeremonyError::PublicKey)
}

/// A verifier for the COSE_Key (RFC 9052 §7, RFC 9053 §2): EC2 P-256 with ES256, OKP Ed25519
/// with EdDSA, RSA with RS256; the key's own `alg` is the one algorithm it verifies.
enum Verifier {
    Ec(Vec<u8>),
    Ed(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl Verifier {
    fn from_cose(cose: &[u8]) -> Checked<(Verifier, i64)> {
        let v: Value = ciborium::de::from_reader(cose).map_err(|_| CeremonyError::PublicKey)?;
        let map = v.as_map().ok_or(CeremonyError::PublicKey)?;
        let (kty, alg) = (int_of(map, 1)?, int_of(map, 3)?);
        let verifier = match (kty, alg) {
            (2, ES256) => {
                let (x, y) = (bytes_of(map, -2)?, bytes_of(map, -3)?);
                if int_of(map, -1)? != 1 || x.len() != 32 || y.len() != 32 {
                    return Err(CeremonyError::PublicKey);
                }
                let mut point = vec![0x04];
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Verifier::Ec(point)
            }
            (1, EDDSA) => {
                let x = bytes_of(map, -2)?;
                if int_of(map, -1)? != 6 || x.len() != 32 {
                    return Err(CeremonyError::PublicKey);
                }
                Verifier::Ed(x.to_vec())
            }
            (3, RS256) => {
                let (n, e) = (bytes_of(map, -1)?, bytes_of(map, -2)?);
                if n.len() < 256 || n.len() > 1024 || e.is_empty() || e.len() > 8 {
                    return Err(CeremonyError::PublicKey);
                }
                Verifier::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                }
            }
            _ => return Err(CeremonyError::PublicKey),
        };
        Ok((verifier, alg))
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Verifier::Ec(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Verifier::Ed(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            Verifier::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
        }
    }
}

/// §7.1: the registration of a new credential for `challenge`.
pub fn verify_registration(
    rp: &RelyingParty,
    challenge: &[u8],
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Checked<NewCredential> {
    check_client_data(rp, client_data_json, "webauthn.create", challenge)?;
    // Step 12: the attestation object is a CBOR map of fmt, attStmt and authData.
    let att: Value =
        ciborium::de::from_reader(attestation_object).map_err(|_| CeremonyError::Attestation)?;
    let map = att.as_map().ok_or(CeremonyError::Attestation)?;
    let text = |k: &str| Value::Text(k.to_owned());
    let raw = map_get(map, &text("authData"))
        .and_then(Value::as_bytes)
        .ok_or(CeremonyError::Attestation)?;
    map_get(map, &text("fmt"))
        .and_then(Value::as_text)
        .ok_or(CeremonyError::Attestation)?;
    // Steps 19–23: with conveyance "none" the client replaces any statement; one sent anyway is
    // trusted for nothing, so it is not verified.
    let data = parse_authenticator_data(raw)?;
    check_flags(rp, raw, &data)?;
    let (id, public_key) = data.credential.ok_or(CeremonyError::Attestation)?;
    // Step 18: the key's algorithm is one this server offered.
    let (_, alg) = Verifier::from_cose(&public_key)?;
    Ok(NewCredential {
        id,
        public_key,
        alg,
        sign_count: data.sign_count,
        user_verified: data.flags & UV != 0,
        backup_eligible: data.flags & BE != 0,
    })
}

/// §7.2: an assertion for `challenge` by the stored credential `key`.
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &[u8],
    a: &Assertion<'_>,
    key: StoredKey<'_>,
) -> Checked<Asserted> {
    check_client_data(rp, a.client_data_json, "webauthn.get", challenge)?;
    let data = parse_authenticator_data(a.authenticator_data)?;
    check_flags(rp, a.authenticator_data, &data)?;
    // Steps 19–20: the signature over authenticatorData || SHA-256(clientDataJSON).
    let (verifier, alg) = Verifier::from_cose(key.public_key)?;
    if alg != key.alg {
        return Err(CeremonyError::PublicKey);
    }
    let mut signed = a.authenticator_data.to_vec();
    signed.extend_from_slice(&sha256(a.client_data_json));
    if !verifier.verify(&signed, a.signature) {
        return Err(CeremonyError::Signature);
    }
    // Step 21: a counter that does not increase (when either is non-zero) signals a clone.
    if (data.sign_count != 0 || key.sign_count != 0) && data.sign_count <= key.sign_count {
        return Err(CeremonyError::Counter);
    }
    Ok(Asserted {
        sign_count: data.sign_count,
        user_verified: data.flags & UV != 0,
        backup_eligible: data.flags & BE != 0,
    })
}

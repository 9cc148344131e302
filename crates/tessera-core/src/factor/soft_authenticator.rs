//! A software authenticator: the other side of the WebAuthn ceremonies, for tests that run them
//! without a browser (the browser test uses Chromium's virtual authenticator instead). It signs
//! what a real one signs, and can be told to misbehave (another origin, a counter going back).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use ciborium::Value;

use crate::secret::{b64url, random_bytes, sha256};

/// One credential on a software authenticator.
pub struct SoftAuthenticator {
    pub credential_id: Vec<u8>,
    key: EcdsaKeyPair,
    pub sign_count: u32,
    /// The user handle it returns in assertions (discoverable credentials).
    pub user_handle: Vec<u8>,
}

impl std::fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("credential_id", &b64url(&self.credential_id))
            .finish_non_exhaustive()
    }
}

/// What a ceremony returns, base64url as the page posts it.
#[derive(Debug, Clone)]
pub struct Response {
    pub credential_id: String,
    pub client_data_json: String,
    /// Registration: the attestation object; assertion: the authenticator data.
    pub data: String,
    pub signature: String,
    pub user_handle: String,
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing CBOR into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(v, &mut out);
    out
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

impl SoftAuthenticator {
    /// A new ES256 credential for the user with handle `user_handle`.
    pub fn new(user_handle: &[u8]) -> Option<SoftAuthenticator> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).ok()?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).ok()?;
        Some(SoftAuthenticator {
            credential_id: random_bytes::<16>().to_vec(),
            key,
            sign_count: 0,
            user_handle: user_handle.to_vec(),
        })
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        cbor(&Value::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(point[1..33].to_vec())),
            (int(-3), Value::Bytes(point[33..65].to_vec())),
        ]))
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn auth_data(&self, rp_id: &str, flags: u8, attested: bool) -> Vec<u8> {
        let mut d = sha256(rp_id.as_bytes()).to_vec();
        d.push(flags | if attested { 0x40 } else { 0 });
        d.extend_from_slice(&self.sign_count.to_be_bytes());
        if attested {
            d.extend_from_slice(&[0u8; 16]);
            let len = u16::try_from(self.credential_id.len()).unwrap_or(0);
            d.extend_from_slice(&len.to_be_bytes());
            d.extend_from_slice(&self.credential_id);
            d.extend_from_slice(&self.cose_key());
        }
        d
    }

    /// `navigator.credentials.create()`: user present and verified, attestation "none".
    pub fn register(&self, rp_id: &str, origin: &str, challenge: &str) -> Response {
        let client_data = Self::client_data("webauthn.create", challenge, origin);
        let att = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (
                Value::Text("authData".into()),
                Value::Bytes(self.auth_data(rp_id, 0x05, true)),
            ),
        ]);
        Response {
            credential_id: b64url(&self.credential_id),
            client_data_json: b64url(&client_data),
            data: b64url(&cbor(&att)),
            signature: String::new(),
            user_handle: String::new(),
        }
    }

    /// `navigator.credentials.get()`: the counter goes up by one, user present and verified.
    pub fn assert(&mut self, rp_id: &str, origin: &str, challenge: &str) -> Response {
        self.sign_count += 1;
        let client_data = Self::client_data("webauthn.get", challenge, origin);
        let auth_data = self.auth_data(rp_id, 0x05, false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(&client_data));
        let rng = SystemRandom::new();
        let sig = self
            .key
            .sign(&rng, &signed)
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        Response {
            credential_id: b64url(&self.credential_id),
            client_data_json: b64url(&client_data),
            data: b64url(&auth_data),
            signature: b64url(&sig),
            user_handle: b64url(&self.user_handle),
        }
    }
}

//! Random handles, digests, and secrets at rest (DESIGN §3): AES-256-GCM under the master key,
//! SHA-256 digests of handles, constant-time comparison.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::model::ArtifactKey;

/// `n` bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // aws-lc's RNG only fails when the OS has no entropy source; there is no safe way on.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        panic!("the operating system's random number generator failed");
    }
    b
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub fn b64std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A handle (opaque token, code): base64url of an 8-byte time prefix (milliseconds since the
/// epoch and 16 random bits: an ordering hint for storage, not protocol time) and 256 random
/// bits (54 characters), and the key the store keeps: the prefix and SHA-256 of the handle. The
/// random bits of both come from one call to the CSPRNG.
pub fn new_handle() -> (String, ArtifactKey) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut raw: [u8; 40] = random_bytes();
    raw[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&raw[..8]);
    let handle = b64url(&raw);
    let key = ArtifactKey::new(prefix, sha256(handle.as_bytes()));
    (handle, key)
}

/// The store key of a presented handle; `None` when it cannot be one of ours.
pub fn handle_key(handle: &str) -> Option<ArtifactKey> {
    if handle.len() != 54 {
        return None;
    }
    let raw = b64url_decode(handle)?;
    let prefix: [u8; 8] = raw.get(..8)?.try_into().ok()?;
    (raw.len() == 40).then(|| ArtifactKey::new(prefix, sha256(handle.as_bytes())))
}

/// Client IDs: random, URL-safe, 22 characters (128 bits); seed 004 asks for >= 16.
pub fn new_client_id() -> String {
    b64url(&random_bytes::<16>())
}

/// Client secrets: 256 bits, URL-safe (43 characters).
pub fn new_client_secret() -> String {
    b64url(&random_bytes::<32>())
}

/// A JWT ID: 128 random bits.
pub fn new_jti() -> String {
    b64url(&random_bytes::<16>())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The key that encrypts private keys and client secrets at rest.
pub struct MasterKey {
    key: LessSafeKey,
    /// HMAC-SHA256 key derived from the master key for values that must be stable but
    /// unguessable (pairwise subjects, session-state salts).
    derive: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes, written as 64 hex digits or base64")]
    Format,
    #[error("a value could not be decrypted: wrong master key or corrupted data")]
    Decrypt,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, MasterKeyError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| MasterKeyError::Format)?;
        let mut label = b"tessera derived keys v1".to_vec();
        label.extend_from_slice(bytes);
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
            derive: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &sha256(&label)),
        })
    }

    /// Parses the text form: 64 hex digits, or base64 / base64url of 32 bytes.
    pub fn parse(text: &str) -> Result<MasterKey, MasterKeyError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| MasterKeyError::Format)?
        } else {
            STANDARD
                .decode(t)
                .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
                .map_err(|_| MasterKeyError::Format)?
        };
        if bytes.len() != 32 {
            return Err(MasterKeyError::Format);
        }
        MasterKey::from_bytes(&bytes)
    }

    /// HMAC-SHA256 of `data` under a key derived from the master key.
    pub fn derive(&self, data: &[u8]) -> [u8; 32] {
        let tag = aws_lc_rs::hmac::sign(&self.derive, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// A new random key in its text form (base64).
    pub fn generate_text() -> String {
        STANDARD.encode(random_bytes::<32>())
    }

    /// AES-256-GCM with a random 96-bit nonce; `context` (e.g. the client_id) is bound as AAD.
    pub fn encrypt(&self, context: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        if self
            .key
            .seal_in_place_append_tag(nonce, Aad::from(context.as_bytes()), &mut buf)
            .is_err()
        {
            panic!("AES-GCM sealing failed");
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        b64url(&out)
    }

    pub fn decrypt(&self, context: &str, ciphertext: &str) -> Result<Vec<u8>, MasterKeyError> {
        let raw = b64url_decode(ciphertext).ok_or(MasterKeyError::Decrypt)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(MasterKeyError::Decrypt);
        }
        let (n, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| MasterKeyError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_roundtrip_binds_context() {
        let mk = MasterKey::parse(&MasterKey::generate_text()).unwrap();
        let ct = mk.encrypt("client-a", b"s3cret");
        assert_eq!(mk.decrypt("client-a", &ct).unwrap(), b"s3cret");
        assert!(mk.decrypt("client-b", &ct).is_err());
        let other = MasterKey::parse(&"ab".repeat(32)).unwrap();
        assert!(other.decrypt("client-a", &ct).is_err());
        assert!(mk.decrypt("client-a", "garbage").is_err());
    }

    #[test]
    fn master_key_formats() {
        assert!(MasterKey::parse(&"0f".repeat(32)).is_ok());
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        assert!(MasterKey::parse("not base64 !!").is_err());
    }

    #[test]
    fn ids_and_secrets_have_the_promised_entropy() {
        let id = new_client_id();
        assert!(id.len() >= 16);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(b64url_decode(&new_client_secret()).unwrap().len(), 32);
        let (h, k) = new_handle();
        assert_eq!(h.len(), 54);
        assert_eq!(handle_key(&h), Some(k));
        assert_eq!(&k.0[8..], &sha256(h.as_bytes()));
        let (h2, k2) = new_handle();
        assert_ne!(h2, h);
        assert!(k2.0[..6] >= k.0[..6], "keys are time-ordered");
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&k.0[..6]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(
            now.abs_diff(u64::from_be_bytes(ms)) < 60_000,
            "the prefix starts with milliseconds since the epoch"
        );
        assert_eq!(handle_key("short"), None);
        assert_eq!(handle_key(&"!".repeat(54)), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "(?s).{0,120}") {
            let _ = MasterKey::parse(&text);
            let _ = handle_key(&text);
            let _ = b64url_decode(&text);
        }
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

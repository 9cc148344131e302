//! User passwords (DESIGN §3): argon2id (RFC 9106) PHC strings, verified off the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest and longest password accepted when one is set.
pub const PASSWORD_LENGTH: (usize, usize) = (8, 1024);

/// Hashes a password with argon2id and the crate's default cost (19 MiB, 2 passes).
pub fn hash(password: &str) -> Result<String, String> {
    let salt =
        SaltString::encode_b64(&crate::secret::random_bytes::<16>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `phc` is an argon2 PHC string Tessera can verify (for imported, pre-hashed passwords).
pub fn is_argon2_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        matches!(h.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") && h.hash.is_some()
    })
}

/// Checks a password against a PHC string; false for a malformed hash.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of nothing anyone knows: verifying against it costs what a real check costs, so an
/// unknown username answers as slowly as a wrong password.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let random = crate::secret::b64url(&crate::secret::random_bytes::<24>());
        hash(&random).unwrap_or_default()
    })
}

/// [`verify`] on a blocking thread; `None` as the hash spends the same time and answers false.
pub async fn verify_blocking(phc: Option<String>, password: String) -> bool {
    let checked = tokio::task::spawn_blocking(move || match phc {
        Some(h) => verify(&h, &password),
        None => {
            verify(decoy(), &password);
            false
        }
    })
    .await;
    checked.unwrap_or(false)
}

/// [`hash`] on a blocking thread.
pub async fn hash_blocking(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::is_argon2_phc(&h));
        assert!(super::verify(&h, "correct horse"));
        assert!(!super::verify(&h, "wrong"));
        assert!(!super::verify("not a hash", "x"));
        assert!(!super::is_argon2_phc("$2b$12$abcdefghijklmnopqrstuv"));
    }
}

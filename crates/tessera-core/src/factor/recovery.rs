//! Recovery codes: ten single-use codes shown once, for signing in when the second factor is
//! lost. Only keyed digests are stored (HMAC under a key derived from the master key, bound to the
//! user), so the database alone gives none of them; a code used is removed.

use crate::secret::{b64url, constant_time_eq, random_bytes, MasterKey};

/// How many codes a set holds.
pub const COUNT: usize = 10;
/// Characters of a code: no 0/o, 1/l/i, so a code read off paper is typed right.
const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Letters per half: two halves of five, 49 bits in all.
const HALF: usize = 5;

/// A new set: the codes to show once, and their digests to store.
pub fn generate(master: &MasterKey, user_id: &str) -> (Vec<String>, Vec<String>) {
    let mut codes = Vec::with_capacity(COUNT);
    while codes.len() < COUNT {
        // Bytes past the last whole multiple of 31 are drawn again, so every letter is as likely.
        let letters: String = std::iter::repeat_with(|| random_bytes::<1>()[0])
            .filter(|&b| usize::from(b) < 31 * 8)
            .take(2 * HALF)
            .map(|b| char::from(ALPHABET[usize::from(b) % 31]))
            .collect();
        let code = format!("{}-{}", &letters[..HALF], &letters[HALF..]);
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let digests = codes.iter().map(|c| digest(master, user_id, c)).collect();
    (codes, digests)
}

/// The stored form of a code: what was typed, without spaces or dashes, in lower case.
pub fn digest(master: &MasterKey, user_id: &str, code: &str) -> String {
    let typed: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    b64url(&master.derive(format!("recovery-code\0{user_id}\0{typed}").as_bytes()))
}

/// The index of the stored digest `code` matches, comparing every one in constant time.
pub fn find(master: &MasterKey, user_id: &str, stored: &[String], code: &str) -> Option<usize> {
    let d = digest(master, user_id, code);
    let mut found = None;
    for (i, s) in stored.iter().enumerate() {
        if constant_time_eq(s.as_bytes(), d.as_bytes()) {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_found_once_typed_loosely() {
        let mk = MasterKey::parse(&MasterKey::generate_text()).unwrap();
        let (codes, digests) = generate(&mk, "u1");
        assert_eq!(codes.len(), COUNT);
        assert_eq!(digests.len(), COUNT);
        for (i, c) in codes.iter().enumerate() {
            assert_eq!(c.len(), 11);
            assert!(c.chars().all(|x| x == '-' || ALPHABET.contains(&(x as u8))));
            assert_eq!(find(&mk, "u1", &digests, c), Some(i));
            let loose = format!(" {} ", c.to_uppercase().replace('-', " "));
            assert_eq!(find(&mk, "u1", &digests, &loose), Some(i));
            // Another user's code, or another master key, finds nothing.
            assert_eq!(find(&mk, "u2", &digests, c), None);
        }
        let other = MasterKey::parse(&MasterKey::generate_text()).unwrap();
        assert_eq!(find(&other, "u1", &digests, &codes[0]), None);
        assert_eq!(find(&mk, "u1", &digests, "aaaaa-aaaaa"), None);
    }
}

//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, six digits, 30-second
//! steps, one step either side for clock drift; the `otpauth://` URI authenticator apps scan.

use aws_lc_rs::hmac;

use crate::clock::Timestamp;
use crate::secret::constant_time_eq;

/// RFC 6238 §4.1 `X`: seconds per step.
pub const STEP: i64 = 30;
/// RFC 4226 §5.3: digits of a code.
pub const DIGITS: u32 = 6;
/// RFC 6238 §5.2: steps accepted either side of now ("at most one time step").
pub const DRIFT: i64 = 1;
/// RFC 4226 §4 R6: the shared secret is at least 128 bits; 160 is what it recommends.
pub const SECRET_LEN: usize = 20;

/// RFC 6238 §4.2: the step `T` a moment falls in.
pub fn step_of(now: Timestamp) -> i64 {
    now.0.div_euclid(STEP)
}

/// RFC 4226 §5.3: the code of counter `step` (HMAC-SHA-1, dynamic truncation, six digits).
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let h = tag.as_ref();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 10u32.pow(DIGITS))
}

/// The step a code was made for, if it is the code of a step within [`DRIFT`] of now and later
/// than `after` (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after
/// the successful validation has been issued for the first OTP").
pub fn verify(secret: &[u8], code: &str, now: Timestamp, after: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    let mut found = None;
    // Every candidate is computed and compared, so the time taken says nothing about which matched.
    for step in now_step - DRIFT..=now_step + DRIFT {
        if constant_time_eq(code_at(secret, step).as_bytes(), code.as_bytes()) && step > after {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 §6 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The Key Uri Format authenticator apps scan: `otpauth://totp/{issuer}:{account}?secret=…`.
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    // RFC 3986 §2.3: unreserved characters as they are, every other byte percent-encoded.
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    // The label's colon separates issuer and account; neither may carry one of its own.
    let label = format!("{}:{}", enc(&issuer.replace(':', "")), enc(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        base32(secret),
        enc(&issuer.replace(':', ""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column (the last six of the eight digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, step_of(Timestamp(t))), code, "T={t}");
        }
    }

    #[test]
    fn one_step_either_side_and_never_the_same_step_twice() {
        let secret = b"12345678901234567890";
        let now = Timestamp(1_111_111_111);
        let s = step_of(now);
        assert_eq!(verify(secret, &code_at(secret, s), now, 0), Some(s));
        assert_eq!(verify(secret, &code_at(secret, s - 1), now, 0), Some(s - 1));
        assert_eq!(verify(secret, &code_at(secret, s + 1), now, 0), Some(s + 1));
        assert_eq!(verify(secret, &code_at(secret, s - 2), now, 0), None);
        assert_eq!(verify(secret, &code_at(secret, s + 2), now, 0), None);
        // Used once: that step and every earlier one are spent.
        assert_eq!(verify(secret, &code_at(secret, s), now, s), None);
        assert_eq!(verify(secret, &code_at(secret, s - 1), now, s), None);
        assert_eq!(verify(secret, " 050 471 ", now, 0), Some(s));
        assert_eq!(verify(secret, "05047", now, 0), None);
        assert_eq!(verify(secret, "0504711", now, 0), None);
        assert_eq!(verify(secret, "abcdef", now, 0), None);
        assert_eq!(verify(b"another secret 12345", "050471", now, 0), None);
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        let u = uri("Tessera: Acme", "jane doe", b"12345678901234567890");
        assert_eq!(
            u,
            "otpauth://totp/Tessera%20Acme:jane%20doe?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tessera%20Acme&algorithm=SHA1&digits=6&period=30"
        );
    }
}

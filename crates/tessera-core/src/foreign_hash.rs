//! Password hashes made by other systems (bcrypt, PBKDF2, scrypt): read in the forms those
//! systems write, kept in one stored form each, and verified until the user's first sign-in
//! replaces them with Tessera's argon2id ([`crate::password`]).

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};

/// The most an imported hash may cost at each sign-in until it is replaced: a work budget,
/// not only parameters, so that no accepted hash holds one of the hashing threads for more than
/// about half a second (more would let one imported hash stall every sign-in, and tell its
/// account apart from an unknown one by the time it takes). The defaults of the systems people
/// migrate from fit: bcrypt 10 to 12, Django's 1.2 M PBKDF2-SHA256, Keycloak's 1.3 M
/// PBKDF2-SHA1, scrypt 16 MiB to 64 MiB.
const MAX_BCRYPT_COST: u32 = 13;
/// Iterations times the blocks of the derived key (RFC 8018 §5.2: each block runs every
/// iteration again).
const MAX_PBKDF2_WORK: u64 = 2_000_000;
/// scrypt's memory, 128 · r · N bytes (RFC 7914 §2), and its work, that times p.
const MAX_SCRYPT_MEMORY: u64 = 64 << 20;
const MAX_SCRYPT_WORK: u64 = 128 << 20;
/// The salt and derived key of PBKDF2, and scrypt's (which its crate bounds to 10 to 64 bytes).
const SALT_LENGTH: usize = 256;
const PBKDF2_LENGTH: (usize, usize) = (8, 128);
const SCRYPT_LENGTH: (usize, usize) = (10, 64);

/// The PBKDF2 pseudo-random function (RFC 8018 §5.2 with HMAC, RFC 2104).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

impl Prf {
    /// By the digest's name as the formats spell it (`sha256`, `SHA-256`, `sha512`, `sha1`).
    pub fn by_name(name: &str) -> Option<Prf> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Some(Prf::Sha1),
            "sha256" => Some(Prf::Sha256),
            "sha512" => Some(Prf::Sha512),
            _ => None,
        }
    }

    fn algorithm(self) -> pbkdf2::Algorithm {
        match self {
            Prf::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Prf::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Prf::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// The identifier of the stored form (passlib's modular crypt names).
    fn ident(self) -> &'static str {
        match self {
            Prf::Sha1 => "pbkdf2",
            Prf::Sha256 => "pbkdf2-sha256",
            Prf::Sha512 => "pbkdf2-sha512",
        }
    }
}

/// A hash of another system, read and checked against the cost limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Foreign {
    /// OpenBSD bcrypt, `$2a$`, `$2b$` or `$2y$` (PHP's name for `$2b$`).
    Bcrypt(String),
    /// Django's `bcrypt_sha256`: bcrypt of the lowercase hex SHA-256 of the password.
    BcryptSha256(String),
    /// PBKDF2 (RFC 8018 §5.2).
    Pbkdf2 {
        prf: Prf,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// scrypt (RFC 7914) with N = 2^`log_n`.
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// Standard base64 with or without padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64, or passlib's adapted form of it (`.` for `+`), padded or not.
fn b64(field: &str, s: &str) -> Result<Vec<u8>, String> {
    B64.decode(s.replace('.', "+"))
        .map_err(|_| format!("its {field} is not base64"))
}

/// passlib's adapted base64: `.` for `+`, no padding.
fn ab64(bytes: &[u8]) -> String {
    B64.encode(bytes).replace('+', ".")
}

fn hex(field: &str, s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("its {field} is not hexadecimal"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn number<T: std::str::FromStr>(field: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("its {field} {s:?} is not a number"))
}

/// `k=v,k=v` parameters of a PHC string.
fn phc_params(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(',').filter_map(|kv| kv.split_once('='))
}

impl Foreign {
    /// Reads a hash in any of the forms this module knows (the README's "Migrating" section
    /// lists them): the modular crypt forms (`$2b$…`, passlib's `$pbkdf2-sha256$…` and
    /// `$scrypt$…`, the PHC `$pbkdf2-sha256$i=…,l=…$…`), Django's (`pbkdf2_sha256$…`,
    /// `scrypt$…`) and Werkzeug's (`pbkdf2:sha256:…$…`, `scrypt:…$…`). `Err` says why not.
    pub fn parse(s: &str) -> Result<Foreign, String> {
        let parsed = if s.starts_with("$2") {
            bcrypt(s).map(Foreign::Bcrypt)
        } else if let Some(rest) = s.strip_prefix("bcrypt$") {
            bcrypt(rest).map(Foreign::Bcrypt)
        } else if let Some(rest) = s.strip_prefix("bcrypt_sha256$") {
            bcrypt(rest).map(Foreign::BcryptSha256)
        } else if let Some(rest) = s.strip_prefix("$pbkdf2") {
            modular_pbkdf2(rest)
        } else if let Some(rest) = s.strip_prefix("$scrypt$") {
            modular_scrypt(rest)
        } else if let Some(rest) = s.strip_prefix("pbkdf2_") {
            django_pbkdf2(rest)
        } else if let Some(rest) = s.strip_prefix("scrypt$") {
            django_scrypt(rest)
        } else if let Some(rest) = s.strip_prefix("pbkdf2:") {
            werkzeug_pbkdf2(rest)
        } else if let Some(rest) = s.strip_prefix("scrypt:") {
            werkzeug_scrypt(rest)
        } else {
            return Err(
                "is not a hash Tessera reads: argon2 ($argon2id$…), bcrypt ($2a$, $2b$, $2y$), \
                 PBKDF2 or scrypt (passlib, PHC, Django or Werkzeug forms)"
                    .into(),
            );
        }?;
        parsed.within_limits()?;
        Ok(parsed)
    }

    /// The costs and sizes every verification may take, and parameters it can compute with.
    fn within_limits(&self) -> Result<(), String> {
        match self {
            Foreign::Bcrypt(_) | Foreign::BcryptSha256(_) => Ok(()),
            Foreign::Pbkdf2 {
                prf,
                iterations,
                salt,
                hash,
            } => {
                lengths(salt, hash, PBKDF2_LENGTH)?;
                let digest = match prf {
                    Prf::Sha1 => 20,
                    Prf::Sha256 => 32,
                    Prf::Sha512 => 64,
                };
                let work = u64::from(*iterations) * hash.len().div_ceil(digest) as u64;
                if *iterations == 0 || work > MAX_PBKDF2_WORK {
                    return Err(format!(
                        "its {iterations} PBKDF2 iterations for a {}-byte hash are more than \
                         Tessera verifies ({MAX_PBKDF2_WORK} iterations per digest length)",
                        hash.len()
                    ));
                }
                Ok(())
            }
            Foreign::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                lengths(salt, hash, SCRYPT_LENGTH)?;
                let memory = 1u64
                    .checked_shl(u32::from(*log_n))
                    .and_then(|n| n.checked_mul(128 * u64::from(*r)))
                    .filter(|m| *m <= MAX_SCRYPT_MEMORY);
                let work = memory.and_then(|m| m.checked_mul(u64::from(*p)));
                if memory.is_none() || work.is_none_or(|w| w > MAX_SCRYPT_WORK) {
                    return Err(format!(
                        "its scrypt cost (N = 2^{log_n}, r = {r}, p = {p}) is more than Tessera \
                         verifies (at most {} MiB, {} MiB times p)",
                        MAX_SCRYPT_MEMORY >> 20,
                        MAX_SCRYPT_WORK >> 20
                    ));
                }
                scrypt::Params::new(*log_n, *r, *p, hash.len())
                    .map(|_| ())
                    .map_err(|e| format!("its scrypt parameters cannot be computed: {e}"))
            }
        }
    }

    /// Whether `password` is the one hashed; false for a hash that fails to compute.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Foreign::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Foreign::BcryptSha256(h) => {
                let digest = crate::secret::sha256(password.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                bcrypt::verify(hex, h).unwrap_or(false)
            }
            Foreign::Pbkdf2 {
                prf,
                iterations,
                salt,
                hash,
            } => NonZeroU32::new(*iterations).is_some_and(|n| {
                pbkdf2::verify(prf.algorithm(), n, salt, password.as_bytes(), hash).is_ok()
            }),
            Foreign::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, hash.len()) else {
                    return false;
                };
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(password.as_bytes(), salt, &params, &mut out).is_ok()
                    && crate::secret::constant_time_eq(&out, hash)
            }
        }
    }
}

/// The stored form: bcrypt as given (Django's `bcrypt_sha256$` prefix kept); PBKDF2 and scrypt in passlib's modular crypt forms
/// (`$pbkdf2-sha256$<iterations>$<salt>$<hash>`, `$scrypt$ln=…,r=…,p=…$<salt>$<hash>`, adapted
/// base64 of the raw bytes), which [`Foreign::parse`] reads back to the same value.
impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Foreign::Bcrypt(h) => f.write_str(h),
            Foreign::BcryptSha256(h) => write!(f, "bcrypt_sha256${h}"),
            Foreign::Pbkdf2 {
                prf,
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "${}${iterations}${}${}",
                prf.ident(),
                ab64(salt),
                ab64(hash)
            ),
            Foreign::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => write!(
                f,
                "$scrypt$ln={log_n},r={r},p={p}${}${}",
                ab64(salt),
                ab64(hash)
            ),
        }
    }
}

/// A PBKDF2 digest by its name, or why not.
fn prf(name: &str) -> Result<Prf, String> {
    Prf::by_name(name)
        .ok_or_else(|| format!("its PBKDF2 digest {name:?} is not SHA-1, SHA-256 or SHA-512"))
}

/// A salt of at most [`SALT_LENGTH`] bytes and a derived key within `hash`.
fn lengths(salt: &[u8], hash: &[u8], (lo, hi): (usize, usize)) -> Result<(), String> {
    if salt.len() > SALT_LENGTH || !(lo..=hi).contains(&hash.len()) {
        return Err(format!(
            "its salt or hash length is outside what Tessera verifies (a salt of at most \
             {SALT_LENGTH} bytes, a hash of {lo} to {hi})"
        ));
    }
    Ok(())
}

/// `$2b$12$` + 22 characters of salt + 31 of hash, in bcrypt's own base64 alphabet.
fn bcrypt(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('$').collect();
    let ["", version, cost, rest] = parts.as_slice() else {
        return Err("is not a bcrypt hash ($2b$<cost>$<53 characters>)".into());
    };
    if !matches!(*version, "2a" | "2b" | "2y") {
        return Err(format!(
            "is bcrypt ${version}$, which Tessera does not verify ($2a$, $2b$ and $2y$ only)"
        ));
    }
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    if cost.len() != 2 || rest.len() != 53 || !rest.bytes().all(alphabet) {
        return Err("is not a bcrypt hash ($2b$<cost>$<53 characters>)".into());
    }
    let cost: u32 = number("bcrypt cost", cost)?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "its bcrypt cost {cost} is outside 4..={MAX_BCRYPT_COST}"
        ));
    }
    Ok(s.to_owned())
}

/// After `$pbkdf2`: passlib's `-sha256$<rounds>$<ab64 salt>$<ab64 hash>` (`$pbkdf2$` is SHA-1),
/// or the PHC form `-sha256$i=<rounds>,l=<length>$<salt>$<hash>` of the RustCrypto `pbkdf2`
/// crate (`l` is the hash's length, which the hash itself gives).
fn modular_pbkdf2(rest: &str) -> Result<Foreign, String> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [digest, params, salt, hash] = parts.as_slice() else {
        return Err("is not a PBKDF2 hash ($pbkdf2-sha256$<rounds>$<salt>$<hash>)".into());
    };
    let prf = match digest.strip_prefix('-') {
        None if digest.is_empty() => Prf::Sha1,
        Some(name) => prf(name)?,
        None => return Err("is not a PBKDF2 hash ($pbkdf2-sha256$…)".into()),
    };
    if params.contains('=') {
        let mut iterations = None;
        for (k, v) in phc_params(params) {
            match k {
                "i" => iterations = Some(number("iteration count", v)?),
                "l" => {}
                _ => return Err(format!("its PBKDF2 parameter {k:?} is unknown")),
            }
        }
        return Ok(Foreign::Pbkdf2 {
            prf,
            iterations: iterations.ok_or("its PBKDF2 iteration count (i=) is missing")?,
            salt: b64("salt", salt)?,
            hash: b64("hash", hash)?,
        });
    }
    Ok(Foreign::Pbkdf2 {
        prf,
        iterations: number("iteration count", params)?,
        salt: b64("salt", salt)?,
        hash: b64("hash", hash)?,
    })
}

/// After `$scrypt$`: `ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, base64 of the raw bytes (as passlib
/// and the RustCrypto `scrypt` crate write it).
fn modular_scrypt(rest: &str) -> Result<Foreign, String> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [params, salt, hash] = parts.as_slice() else {
        return Err("is not an scrypt hash ($scrypt$ln=…,r=…,p=…$<salt>$<hash>)".into());
    };
    let (mut log_n, mut r, mut p) = (None, None, None);
    for (k, v) in phc_params(params) {
        match k {
            "ln" => log_n = Some(number("ln", v)?),
            "r" => r = Some(number("r", v)?),
            "p" => p = Some(number("p", v)?),
            _ => return Err(format!("its scrypt parameter {k:?} is unknown")),
        }
    }
    let (Some(log_n), Some(r), Some(p)) = (log_n, r, p) else {
        return Err("its scrypt parameters need ln, r and p".into());
    };
    Ok(Foreign::Scrypt {
        log_n,
        r,
        p,
        salt: b64("salt", salt)?,
        hash: b64("hash", hash)?,
    })
}

/// N as a power of two.
fn log2_of(n: u64) -> Result<u8, String> {
    if n.is_power_of_two() && n > 1 {
        u8::try_from(n.trailing_zeros()).map_err(|e| e.to_string())
    } else {
        Err(format!("its scrypt N {n} is not a power of two"))
    }
}

/// After Django's `pbkdf2_`: `sha256$<iterations>$<salt>$<base64 hash>`; the salt is used as
/// the text it is.
fn django_pbkdf2(rest: &str) -> Result<Foreign, String> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [digest, iterations, salt, hash] = parts.as_slice() else {
        return Err(
            "is not a Django PBKDF2 hash (pbkdf2_sha256$<iterations>$<salt>$<hash>)".into(),
        );
    };
    Ok(Foreign::Pbkdf2 {
        prf: prf(digest)?,
        iterations: number("iteration count", iterations)?,
        salt: salt.as_bytes().to_vec(),
        hash: b64("hash", hash)?,
    })
}

/// After Django's `scrypt$`: `<N>$<salt>$<r>$<p>$<base64 hash>`; the salt is used as the text it is.
fn django_scrypt(rest: &str) -> Result<Foreign, String> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [n, salt, r, p, hash] = parts.as_slice() else {
        return Err("is not a Django scrypt hash (scrypt$<N>$<salt>$<r>$<p>$<hash>)".into());
    };
    Ok(Foreign::Scrypt {
        log_n: log2_of(number("N", n)?)?,
        r: number("r", r)?,
        p: number("p", p)?,
        salt: salt.as_bytes().to_vec(),
        hash: b64("hash", hash)?,
    })
}

/// Werkzeug's `<method>$<salt>$<hex hash>`, split.
fn werkzeug_parts<'a>(rest: &'a str, what: &str) -> Result<(&'a str, &'a str, &'a str), String> {
    let mut parts = rest.splitn(3, '$');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(salt), Some(hash)) => Ok((method, salt, hash)),
        _ => Err(format!("is not a Werkzeug {what} hash")),
    }
}

/// After Werkzeug's `pbkdf2:`: `sha256:<iterations>$<salt>$<hex hash>`; the salt is text.
fn werkzeug_pbkdf2(rest: &str) -> Result<Foreign, String> {
    let (method, salt, hash) = werkzeug_parts(rest, "PBKDF2")?;
    let Some((digest, iterations)) = method.split_once(':') else {
        return Err(
            "is a Werkzeug PBKDF2 hash without its iteration count (pbkdf2:sha256:<iterations>$…)"
                .into(),
        );
    };
    Ok(Foreign::Pbkdf2 {
        prf: prf(digest)?,
        iterations: number("iteration count", iterations)?,
        salt: salt.as_bytes().to_vec(),
        hash: hex("hash", hash)?,
    })
}

/// After Werkzeug's `scrypt:`: `<N>:<r>:<p>$<salt>$<hex hash>`; the salt is text.
fn werkzeug_scrypt(rest: &str) -> Result<Foreign, String> {
    let (method, salt, hash) = werkzeug_parts(rest, "scrypt")?;
    let parts: Vec<&str> = method.split(':').collect();
    let [n, r, p] = parts.as_slice() else {
        return Err("is not a Werkzeug scrypt hash (scrypt:<N>:<r>:<p>$<salt>$<hash>)".into());
    };
    Ok(Foreign::Scrypt {
        log_n: log2_of(number("N", n)?)?,
        r: number("r", r)?,
        p: number("p", p)?,
        salt: salt.as_bytes().to_vec(),
        hash: hex("hash", hash)?,
    })
}

/// A Keycloak password credential (`kc.sh export`): `secretData` `{"value", "salt"}` (standard
/// base64 of the raw bytes) and `credentialData` `{"hashIterations", "algorithm",
/// "additionalParameters"}` (older exports: `algorithmData`), as Keycloak's PBKDF2 and argon2
/// providers write them, as a hash [`crate::password::stored_form`] reads (an argon2 one is judged
/// there). `Err` says why not.
pub fn from_keycloak(secret_data: &str, credential_data: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Secret {
        value: String,
        #[serde(default)]
        salt: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Credential {
        algorithm: String,
        hash_iterations: u32,
        #[serde(default, alias = "algorithmData")]
        additional_parameters: std::collections::BTreeMap<String, Vec<String>>,
    }
    let secret: Secret = serde_json::from_str(secret_data)
        .map_err(|e| format!("its secretData is not Keycloak's JSON: {e}"))?;
    let credential: Credential = serde_json::from_str(credential_data)
        .map_err(|e| format!("its credentialData is not Keycloak's JSON: {e}"))?;
    let (salt, hash) = (b64("salt", &secret.salt)?, b64("hash", &secret.value)?);
    let iterations = credential.hash_iterations;
    let prf = match credential.algorithm.as_str() {
        "pbkdf2" => Prf::Sha1,
        "pbkdf2-sha256" => Prf::Sha256,
        "pbkdf2-sha512" => Prf::Sha512,
        "argon2" => {
            let param = |k: &str, default: &str| -> String {
                credential
                    .additional_parameters
                    .get(k)
                    .and_then(|v| v.first())
                    .map_or_else(|| default.to_owned(), Clone::clone)
            };
            // Keycloak's defaults: argon2id 1.3, 7 MiB, one lane.
            let variant = match param("type", "id").as_str() {
                "id" => "argon2id",
                "i" => "argon2i",
                "d" => "argon2d",
                other => return Err(format!("its argon2 type {other:?} is unknown")),
            };
            let version = match param("version", "1.3").as_str() {
                "1.3" => 19,
                "1.0" => 16,
                other => return Err(format!("its argon2 version {other:?} is unknown")),
            };
            let (memory, lanes) = (param("memory", "7168"), param("parallelism", "1"));
            return Ok(format!(
                "${variant}$v={version}$m={memory},t={iterations},p={lanes}${}${}",
                B64.encode(&salt),
                B64.encode(&hash)
            ));
        }
        other => {
            return Err(format!(
                "its algorithm {other:?} is not one Tessera reads (pbkdf2, pbkdf2-sha256, \
                 pbkdf2-sha512, argon2)"
            ))
        }
    };
    let parsed = Foreign::Pbkdf2 {
        prf,
        iterations,
        salt,
        hash,
    };
    parsed.within_limits()?;
    Ok(parsed.to_string())
}

//! User passwords (DESIGN §3): argon2id (RFC 9106) PHC strings, verified on one hashing thread
//! per core, each reusing its working memory; imported hashes of other systems
//! ([`crate::foreign_hash`]) are verified on the same threads until a sign-in replaces them.

use std::sync::{mpsc, Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::foreign_hash::Foreign;

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

/// The costs an imported hash may ask for: at most 128 MiB and 16 lanes, and at most 192 MiB
/// times passes in all (argon2-cffi's default, 64 MiB and 3 passes; Tessera's own is 19 MiB and
/// 2). More would let one stored hash take a core and its memory for seconds at every sign-in.
const MAX_MEMORY_KIB: u32 = 128 * 1024;
const MAX_WORK_KIB: u64 = 192 * 1024;
const MAX_LANES: u32 = 16;

/// The parameters of an argon2 PHC string within those costs.
fn params_of(h: &PasswordHash<'_>) -> Option<Params> {
    let p = Params::try_from(h).ok()?;
    let work = u64::from(p.m_cost()) * u64::from(p.t_cost());
    (p.m_cost() <= MAX_MEMORY_KIB && work <= MAX_WORK_KIB && p.p_cost() <= MAX_LANES).then_some(p)
}

/// Whether `phc` is an argon2 PHC string Tessera can verify (for imported, pre-hashed passwords).
pub fn is_argon2_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        matches!(h.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d")
            && h.hash.is_some()
            && h.version.is_none_or(|v| Version::try_from(v).is_ok())
            && params_of(&h).is_some()
    })
}

/// What Tessera stores for an imported hash: an argon2 PHC string within [`MAX_COST`] as it is
/// (Django's `argon2$argon2id$…` without its prefix), any other hash [`Foreign::parse`] reads in
/// its stored form. `Err` says why the hash cannot be used.
pub fn stored_form(imported: &str) -> Result<String, String> {
    let argon2 = match imported.strip_prefix("argon2") {
        Some(django) if django.starts_with("$argon2") => django,
        _ => imported,
    };
    if argon2.starts_with("$argon2") {
        return if is_argon2_phc(argon2) {
            Ok(argon2.to_owned())
        } else {
            Err("is not an argon2 PHC string of version 16 or 19 within 128 MiB, 192 MiB times passes and 16 lanes".into())
        };
    }
    Foreign::parse(imported).map(|f| f.to_string())
}

/// Whether a stored hash is anything but argon2id at Tessera's own cost: such a hash is replaced
/// at the user's next successful sign-in.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return true;
    };
    let own = Params::default();
    let same_cost = Params::try_from(&h).is_ok_and(|p| {
        (p.m_cost(), p.t_cost(), p.p_cost()) == (own.m_cost(), own.t_cost(), own.p_cost())
    });
    h.algorithm.as_str() != "argon2id" || h.version != Some(Version::V0x13.into()) || !same_cost
}

/// The scheme of a stored hash, for the audit log: `argon2id`, `bcrypt`, `pbkdf2-sha256`, `scrypt`…
pub fn scheme_of(stored: &str) -> &str {
    match stored.trim_start_matches('$').split('$').next() {
        Some(v) if v.starts_with('2') => "bcrypt",
        Some(scheme) => scheme,
        None => "unknown",
    }
}

/// What [`crate::model::User::rehashed_from`] keeps of a replaced hash: its SHA-256.
pub fn rehash_mark(stored: &str) -> String {
    crate::secret::b64url(&crate::secret::sha256(stored.as_bytes()))
}

/// Checks a password against a stored hash; false for a malformed hash.
pub fn verify(stored: &str, password: &str) -> bool {
    verify_in(stored, password, &mut Vec::new())
}

/// [`verify`] with `memory` as argon2's working memory (grown as the hash's cost needs; RFC 9106
/// §3.1), so that a caller verifying again does not allocate and fault in 19 MiB each time.
/// A stored hash of another system is verified by [`Foreign::verify`].
fn verify_in(phc: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    if !phc.starts_with("$argon2") {
        return Foreign::parse(phc).is_ok_and(|f| f.verify(password));
    }
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (h.hash, h.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    // A PHC string without `v=` is argon2 1.0 (the version field came with 1.3).
    let version = match h.version.map(Version::try_from) {
        None => Version::V0x10,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Some(params) = params_of(&h) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && crate::secret::constant_time_eq(&out, expected.as_bytes())
}

/// A hash of nothing anyone knows: verifying against it costs what a real check costs, so an
/// unknown username answers as slowly as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = crate::secret::b64url(&crate::secret::random_bytes::<24>());
        hash(&random).unwrap_or_default()
    })
}

/// Argon2 is memory-hard on purpose: more computations than cores at once only evict each
/// other's 19 MiB from the caches (and a burst of sign-ins would hold 19 MiB each). So the checks
/// run on one hashing thread per core, each keeping its working memory, and queue for them. When
/// the CPUs the process may run on are as many as it may use (no CPU quota below them), each
/// thread stays on its own CPU: the scheduler then never parks two computations on one core while
/// another idles.
///
/// A check first takes a [`Place`]: twice as many as threads may be under way at once, so that
/// while some compute, the others read their counters and user and no hashing thread waits for
/// the database.
struct Hashers {
    checks: Arc<tokio::sync::Semaphore>,
    jobs: mpsc::Sender<Job>,
}

/// One verification for a hashing thread.
struct Job {
    phc: Option<String>,
    password: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

fn hashers() -> &'static Hashers {
    static HASHERS: OnceLock<Hashers> = OnceLock::new();
    HASHERS.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = core_affinity::get_core_ids().filter(|c| c.len() == threads);
        let (send, receive) = mpsc::channel::<Job>();
        let receive = Arc::new(Mutex::new(receive));
        for i in 0..threads {
            let receive = receive.clone();
            let core = cores.as_ref().map(|c| c[i]);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&receive, core));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hashers {
            checks: Arc::new(tokio::sync::Semaphore::new(2 * threads)),
            jobs: send,
        }
    })
}

/// Verifies the queued jobs one after the other, on `core` if given, until the queue closes.
fn hashing_thread(jobs: &Mutex<mpsc::Receiver<Job>>, core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
    let mut memory = Vec::new();
    loop {
        let next = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = next else { return };
        // A request that went away before its turn needs no answer.
        if job.answer.is_closed() {
            continue;
        }
        // A panic must not take the thread (and with all of them, every sign-in) away.
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &job.phc {
            Some(phc) => verify_in(phc, &job.password, &mut memory),
            None => {
                verify_in(decoy(), &job.password, &mut memory);
                false
            }
        }))
        .unwrap_or(false);
        // An imported hash of a larger cost does not keep its memory: the next is Tessera's.
        let own = Params::default().block_count();
        if memory.len() > own {
            memory.truncate(own);
            memory.shrink_to_fit();
        }
        let _ = job.answer.send(ok);
    }
}

/// A place among the password checks under way, taken before the check reads anything: waits
/// while twice as many as hashing threads are. Held (never read) until the check's outcome is
/// recorded; dropping it lets the next check in.
pub struct Place(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

pub async fn place() -> Option<Place> {
    hashers()
        .checks
        .clone()
        .acquire_owned()
        .await
        .ok()
        .map(Place)
}

/// [`verify`] on a hashing thread, for a check holding `_place`; `None` as the hash spends the
/// same time and answers false. `None` back when no hashing thread could answer (never a
/// verdict: the caller must not count it as a wrong password).
pub async fn verify_blocking(
    _place: &Place,
    phc: Option<String>,
    password: String,
) -> Option<bool> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job = Job {
        phc,
        password,
        answer,
    };
    hashers().jobs.send(job).ok()?;
    answered.await.ok()
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

    /// Imported hashes keep their own variant, version and cost; one working memory serves all.
    #[test]
    fn other_variants_versions_and_costs_verify_with_reused_memory() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        use argon2::{Algorithm, Argon2, Params, Version};
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let mut memory = Vec::new();
        for (alg, version, m, t, p) in [
            (Algorithm::Argon2i, Version::V0x13, 8 * 1024, 3, 1),
            (Algorithm::Argon2d, Version::V0x10, 4 * 1024, 1, 2),
            (Algorithm::Argon2id, Version::V0x13, 32 * 1024, 1, 4),
            (Algorithm::Argon2id, Version::V0x13, 1024, 2, 1),
        ] {
            let params = Params::new(m, t, p, Some(24)).unwrap();
            let phc = Argon2::new(alg, version, params)
                .hash_password(b"pass phrase", &salt)
                .unwrap()
                .to_string();
            assert!(super::verify_in(&phc, "pass phrase", &mut memory), "{phc}");
            assert!(!super::verify_in(&phc, "pass phrasf", &mut memory), "{phc}");
            let tampered = phc.replace(",t=", ",t=1").replace("t=11", "t=5");
            assert!(!super::verify_in(&tampered, "pass phrase", &mut memory));
        }
        assert_eq!(
            memory.len(),
            32 * 1024,
            "grown to the largest cost, not beyond"
        );
    }

    #[tokio::test]
    async fn blocking_checks_answer_like_verify() {
        let h = super::hash("correct horse").unwrap();
        let checks = (0..6).map(|i| {
            let (h, pw) = (h.clone(), if i % 2 == 0 { "correct horse" } else { "nope" });
            tokio::spawn(async move {
                let place = super::place().await.unwrap();
                super::verify_blocking(&place, Some(h), pw.to_owned()).await
            })
        });
        let mut answers = Vec::new();
        for c in checks {
            answers.push(c.await.unwrap());
        }
        let all = [true, false, true, false, true, false].map(Some);
        assert_eq!(answers, all);
        let place = super::place().await.unwrap();
        assert_eq!(
            super::verify_blocking(&place, None, "anything".into()).await,
            Some(false)
        );
    }
}

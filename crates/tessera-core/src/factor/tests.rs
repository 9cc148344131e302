//! The WebAuthn ceremonies against a software authenticator, and the factors' bookkeeping.

use super::soft_authenticator::SoftAuthenticator;
use super::webauthn::*;
use super::*;
use crate::secret::{b64url, b64url_decode};

fn rp() -> RelyingParty {
    RelyingParty {
        id: "login.example.com".into(),
        origin: "https://login.example.com".into(),
        user_verification: UserVerification::Required,
    }
}

fn d(s: &str) -> Vec<u8> {
    b64url_decode(s).unwrap()
}

fn registered(auth: &SoftAuthenticator, challenge: &[u8]) -> NewCredential {
    let r = auth.register(
        "login.example.com",
        "https://login.example.com",
        &b64url(challenge),
    );
    verify_registration(&rp(), challenge, &d(&r.client_data_json), &d(&r.data)).unwrap()
}

#[test]
fn a_credential_registers_and_then_signs_in() {
    let mut auth = SoftAuthenticator::new(b"user-1").unwrap();
    let cred = registered(&auth, b"challenge-1");
    assert_eq!(cred.id, auth.credential_id);
    assert_eq!(cred.alg, ES256);
    assert!(cred.user_verified);
    let a = auth.assert(
        "login.example.com",
        "https://login.example.com",
        &b64url(b"c2"),
    );
    let (cd, ad, sig) = (d(&a.client_data_json), d(&a.data), d(&a.signature));
    let assertion = Assertion {
        client_data_json: &cd,
        authenticator_data: &ad,
        signature: &sig,
    };
    let key = StoredKey {
        public_key: &cred.public_key,
        alg: cred.alg,
        sign_count: cred.sign_count,
    };
    let ok = verify_assertion(&rp(), b"c2", &assertion, key).unwrap();
    assert_eq!(ok.sign_count, 1);
    assert!(ok.user_verified);

    // Another challenge, a tampered signature, a stored counter ahead (a clone), another
    // algorithm than the key's: each refused for its own reason.
    let refuse = |challenge: &[u8], a: Assertion<'_>, key: StoredKey<'_>| {
        verify_assertion(&rp(), challenge, &a, key).unwrap_err()
    };
    assert_eq!(refuse(b"other", assertion, key), CeremonyError::Challenge);
    let mut bad_sig = sig.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    let tampered = Assertion {
        signature: &bad_sig,
        ..assertion
    };
    assert_eq!(refuse(b"c2", tampered, key), CeremonyError::Signature);
    let ahead = StoredKey {
        sign_count: 1,
        ..key
    };
    assert_eq!(refuse(b"c2", assertion, ahead), CeremonyError::Counter);
    let other_alg = StoredKey { alg: RS256, ..key };
    assert_eq!(
        refuse(b"c2", assertion, other_alg),
        CeremonyError::PublicKey
    );
    // Signed data of another credential.
    let other = registered(&SoftAuthenticator::new(b"user-2").unwrap(), b"c3");
    let wrong_key = StoredKey {
        public_key: &other.public_key,
        ..key
    };
    assert_eq!(
        refuse(b"c2", assertion, wrong_key),
        CeremonyError::Signature
    );
}

#[test]
fn a_ceremony_for_another_site_or_type_is_refused() {
    let mut auth = SoftAuthenticator::new(b"user-1").unwrap();
    let ch = b64url(b"challenge");
    let reg = |rp_id: &str, origin: &str| {
        let r = auth.register(rp_id, origin, &ch);
        verify_registration(&rp(), b"challenge", &d(&r.client_data_json), &d(&r.data))
    };
    assert_eq!(
        reg("login.example.com", "https://evil.example.com").unwrap_err(),
        CeremonyError::Origin
    );
    assert_eq!(
        reg("evil.example.com", "https://login.example.com").unwrap_err(),
        CeremonyError::RpId
    );
    assert_eq!(
        reg("login.example.com", "http://login.example.com").unwrap_err(),
        CeremonyError::Origin
    );
    // An assertion presented as a registration.
    let a = auth.assert("login.example.com", "https://login.example.com", &ch);
    assert_eq!(
        verify_registration(&rp(), b"challenge", &d(&a.client_data_json), &d(&a.data)).unwrap_err(),
        CeremonyError::Type
    );
    assert_eq!(
        verify_registration(&rp(), b"challenge", b"not json", b"").unwrap_err(),
        CeremonyError::ClientData
    );
    let r = auth.register("login.example.com", "https://login.example.com", &ch);
    assert_eq!(
        verify_registration(&rp(), b"challenge", &d(&r.client_data_json), b"\xa0").unwrap_err(),
        CeremonyError::Attestation
    );
}

proptest::proptest! {
    #[test]
    fn ceremonies_never_panic(cd in proptest::collection::vec(0u8..=255, 0..200),
                              data in proptest::collection::vec(0u8..=255, 0..300)) {
        let _ = verify_registration(&rp(), b"c", &cd, &data);
        let a = Assertion { client_data_json: &cd, authenticator_data: &data, signature: &data };
        let _ = verify_assertion(&rp(), b"c", &a, StoredKey { public_key: &data, alg: ES256, sign_count: 0 });
    }
}

#[test]
fn removing_the_last_second_factor_removes_the_recovery_codes() {
    let t = crate::Timestamp(1);
    let mut f = Factors {
        totp: Some(TotpFactor {
            secret_ciphertext: "x".into(),
            last_step: 0,
            created_at: t,
            last_used_at: None,
        }),
        passkeys: vec![PasskeyFactor {
            id: "abc".into(),
            name: "Laptop".into(),
            public_key: "k".into(),
            alg: ES256,
            sign_count: 0,
            backup_eligible: false,
            created_at: t,
            last_used_at: None,
        }],
        recovery: Some(RecoveryCodes {
            digests: vec!["d".into()],
            created_at: t,
        }),
        enrolment_required: false,
    };
    let ids: Vec<String> = f.views().into_iter().map(|v| v.id).collect();
    assert_eq!(ids, ["totp", "passkey:abc", "recovery_codes"]);
    assert!(!f.remove("passkey:nope"));
    assert!(f.remove("totp"));
    assert!(f.recovery.is_some());
    assert!(f.remove("passkey:abc"));
    assert!(f.recovery.is_none() && f.is_empty());
    assert!(FactorUse::passkey(t, true, true).amr == ["swk", "user", "pin"]);
    assert!(FactorUse::recovery(t).proves(Method::Totp, true));
    assert!(!FactorUse::recovery(t).proves(Method::Passkey, false));
    assert!(!FactorUse::recovery(t).proves(Method::Password, true));
}

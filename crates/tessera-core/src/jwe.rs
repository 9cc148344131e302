//! JSON Web Encryption (RFC 7516 compact serialization) with the algorithms of RFC 7518 that
//! Tessera speaks: key management RSA-OAEP-256 (§4.3) and ECDH-ES, direct or with AES Key Wrap
//! (§4.6, Concat KDF); content encryption AES-GCM (§5.3) and AES-CBC with HMAC-SHA2 (§5.2).
//! Tessera encrypts to a client's public key (ID tokens, userinfo, introspection and
//! authorization responses) and decrypts with a private key of its own.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{
    self, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::key_wrap::{self, KeyEncryptionKey, KeyWrap};
use aws_lc_rs::rsa::{
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PublicEncryptingKey, PublicKeyComponents,
    OAEP_SHA256_MGF1SHA256,
};
use serde_json::{json, Map, Value};

use crate::model::{ContentEncryption, KeyManagement};
use crate::secret::{b64url, b64url_decode, random_bytes};

/// The largest compact JWE Tessera reads.
pub const MAX_JWE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JweError {
    /// The recipient's key cannot be used for the algorithm (wrong type or curve, malformed).
    #[error("the key cannot be used for {0}")]
    Key(&'static str),
    #[error("encryption failed")]
    Crypto,
}

/// A private key Tessera decrypts with.
pub enum Decrypter<'a> {
    Rsa(&'a OaepPrivateDecryptingKey),
    Ec(&'a PrivateKey),
}

impl ContentEncryption {
    /// RFC 7518 §5.1: the content encryption key's length in bytes.
    fn key_len(self) -> usize {
        match self {
            ContentEncryption::A128Gcm => 16,
            ContentEncryption::A256Gcm | ContentEncryption::A128CbcHs256 => 32,
            ContentEncryption::A256CbcHs512 => 64,
        }
    }
    fn iv_len(self) -> usize {
        match self {
            ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => 12,
            _ => 16,
        }
    }
}

/// RFC 7517 §4.3: what a key's `key_ops` must allow for Tessera to encrypt to it.
const ENCRYPTING_OPS: [&str; 4] = ["encrypt", "wrapKey", "deriveKey", "deriveBits"];

/// Whether a JWK of a client's set, as published, may receive `alg` (RFC 7517 §4.2-4.4): `use`
/// absent or `enc`, `key_ops` absent, empty or allowing encryption, `alg` absent or exactly this
/// one, and the key type (and curve) the algorithm needs.
pub fn key_fits(jwk: &Value, alg: KeyManagement) -> bool {
    let use_ok = jwk.get("use").is_none_or(|u| u == "enc");
    let ops_ok = match jwk.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => {
            ops.is_empty()
                || ops
                    .iter()
                    .any(|o| o.as_str().is_some_and(|o| ENCRYPTING_OPS.contains(&o)))
        }
        Some(_) => false,
    };
    let named_ok = jwk.get("alg").is_none_or(|a| a == alg.as_str());
    let type_ok = match (jwk["kty"].as_str(), alg) {
        (Some("RSA"), KeyManagement::RsaOaep256) => true,
        (Some("EC"), KeyManagement::RsaOaep256) => false,
        (Some("EC"), _) => Curve::named(jwk["crv"].as_str()).is_some(),
        _ => false,
    };
    use_ok && ops_ok && named_ok && type_ok
}

/// A member of a JWK as bytes (base64url), or `None`.
fn member(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    b64url_decode(jwk.get(name)?.as_str()?)
}

/// RFC 7516 §5.1: `plaintext` encrypted to `key` (a client's public JWK), compact serialization.
/// `cty` is `JWT` for a signed JWT inside (RFC 7519 §5.2).
pub fn encrypt(
    plaintext: &[u8],
    key: &Value,
    alg: KeyManagement,
    enc: ContentEncryption,
    cty: Option<&str>,
) -> Result<String, JweError> {
    if !key_fits(key, alg) {
        return Err(JweError::Key(alg.as_str()));
    }
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg.as_str()));
    header.insert("enc".into(), json!(enc.as_str()));
    if let Some(kid) = key.get("kid").and_then(Value::as_str) {
        header.insert("kid".into(), json!(kid));
    }
    if let Some(c) = cty {
        header.insert("cty".into(), json!(c));
    }
    let unusable = || JweError::Key(alg.as_str());
    let (cek, encrypted_key) = match alg {
        KeyManagement::RsaOaep256 => {
            let cek = random_cek(enc);
            let n = member(key, "n").ok_or_else(unusable)?;
            let e = member(key, "e").ok_or_else(unusable)?;
            let public: PublicEncryptingKey = PublicKeyComponents { n, e }
                .try_into()
                .map_err(|_| JweError::Key(alg.as_str()))?;
            let public = OaepPublicEncryptingKey::new(public).map_err(|_| JweError::Crypto)?;
            let mut out = vec![0u8; public.ciphertext_size()];
            let wrapped = public
                .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut out, None)
                .map_err(|_| JweError::Crypto)?
                .to_vec();
            (cek, wrapped)
        }
        _ => {
            let curve = Curve::named(key["crv"].as_str()).ok_or_else(unusable)?;
            let x = member(key, "x").ok_or_else(unusable)?;
            let y = member(key, "y").ok_or_else(unusable)?;
            let peer = curve.point(&x, &y).ok_or(JweError::Key(alg.as_str()))?;
            let ephemeral = PrivateKey::generate(curve.alg).map_err(|_| JweError::Crypto)?;
            let epk = ephemeral
                .compute_public_key()
                .map_err(|_| JweError::Crypto)?;
            let point = epk.as_ref();
            let half = (point.len() - 1) / 2;
            header.insert(
                "epk".into(),
                json!({"kty": "EC", "crv": curve.name, "x": b64url(&point[1..=half]), "y": b64url(&point[1 + half..])}),
            );
            let z = agreement::agree(
                &ephemeral,
                UnparsedPublicKey::new(curve.alg, peer),
                JweError::Key(alg.as_str()),
                |z| Ok(z.to_vec()),
            )?;
            match kek_len(alg) {
                None => (concat_kdf(&z, enc.as_str(), enc.key_len()), Vec::new()),
                Some(len) => {
                    let kek = concat_kdf(&z, alg.as_str(), len);
                    let cek = random_cek(enc);
                    (cek.clone(), wrap(&kek, &cek)?)
                }
            }
        }
    };
    let protected = b64url(Value::Object(header).to_string().as_bytes());
    let iv = random_iv(enc);
    let (ciphertext, tag) = seal(enc, &cek, &iv, protected.as_bytes(), plaintext)?;
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        b64url(&encrypted_key),
        b64url(&iv),
        b64url(&ciphertext),
        b64url(&tag)
    ))
}

/// RFC 7516 §5.2: the plaintext and protected header of `token`, decrypted with `key`, when its
/// `alg` and `enc` are among `algs` and `encs`; `None` for every failure alike (RFC 7516 §11.5:
/// nothing tells a wrong key from a bad tag).
pub fn decrypt(
    token: &str,
    key: Decrypter<'_>,
    algs: &[KeyManagement],
    encs: &[ContentEncryption],
) -> Option<(Map<String, Value>, Vec<u8>)> {
    if token.len() > MAX_JWE {
        return None;
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return None;
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64url_decode(protected)?).ok()?;
    // No extension Tessera understands (RFC 7516 §4.1.13), and no compression.
    if header.contains_key("crit") || header.contains_key("zip") {
        return None;
    }
    let alg = KeyManagement::parse(header.get("alg")?.as_str()?)?;
    let enc = ContentEncryption::parse(header.get("enc")?.as_str()?)?;
    if !algs.contains(&alg) || !encs.contains(&enc) {
        return None;
    }
    let encrypted_key = b64url_decode(encrypted_key)?;
    let cek = match (key, alg) {
        (Decrypter::Rsa(k), KeyManagement::RsaOaep256) => {
            let mut out = vec![0u8; k.min_output_size()];
            k.decrypt(&OAEP_SHA256_MGF1SHA256, &encrypted_key, &mut out, None)
                .ok()?
                .to_vec()
        }
        (
            Decrypter::Ec(k),
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw,
        ) => {
            let epk = header.get("epk")?;
            let curve = Curve::named(epk.get("crv")?.as_str())?;
            if !std::ptr::eq(curve.alg, k.algorithm()) || epk.get("kty")?.as_str()? != "EC" {
                return None;
            }
            let x = b64url_decode(epk.get("x")?.as_str()?)?;
            let y = b64url_decode(epk.get("y")?.as_str()?)?;
            let peer = curve.point(&x, &y)?;
            let z = agreement::agree(k, UnparsedPublicKey::new(curve.alg, peer), (), |z| {
                Ok(z.to_vec())
            })
            .ok()?;
            let party = |name: &str| match header.get(name) {
                None => Some(Vec::new()),
                Some(v) => b64url_decode(v.as_str()?),
            };
            let (apu, apv) = (party("apu")?, party("apv")?);
            match kek_len(alg) {
                None if encrypted_key.is_empty() => {
                    concat_kdf_with(&z, enc.as_str(), &apu, &apv, enc.key_len())
                }
                None => return None,
                Some(len) => {
                    let kek = concat_kdf_with(&z, alg.as_str(), &apu, &apv, len);
                    unwrap(&kek, &encrypted_key)?
                }
            }
        }
        _ => return None,
    };
    if cek.len() != enc.key_len() {
        return None;
    }
    let iv = b64url_decode(iv)?;
    if iv.len() != enc.iv_len() {
        return None;
    }
    let plain = open(
        enc,
        &cek,
        &iv,
        protected.as_bytes(),
        b64url_decode(ciphertext)?,
        &b64url_decode(tag)?,
    )?;
    Some((header, plain))
}

/// An elliptic curve of ECDH-ES, with the fixed length of its coordinates.
struct Curve {
    alg: &'static agreement::Algorithm,
    name: &'static str,
    len: usize,
}

impl Curve {
    fn named(name: Option<&str>) -> Option<Curve> {
        let (alg, name, len) = match name? {
            "P-256" => (&agreement::ECDH_P256, "P-256", 32),
            "P-384" => (&agreement::ECDH_P384, "P-384", 48),
            "P-521" => (&agreement::ECDH_P521, "P-521", 66),
            _ => return None,
        };
        Some(Curve { alg, name, len })
    }
    /// SEC 1 §2.3.3 uncompressed point; coordinates must have the curve's full length (RFC 7518
    /// §6.2.1.2-3). Whether the point is on the curve is checked by the agreement.
    fn point(&self, x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
        (x.len() == self.len && y.len() == self.len).then(|| [&[4u8][..], x, y].concat())
    }
}

/// The AES Key Wrap key length of `alg`; `None` for direct key agreement.
fn kek_len(alg: KeyManagement) -> Option<usize> {
    match alg {
        KeyManagement::EcdhEsA128Kw => Some(16),
        KeyManagement::EcdhEsA256Kw => Some(32),
        _ => None,
    }
}

fn random_cek(enc: ContentEncryption) -> Vec<u8> {
    let bytes: [u8; 64] = random_bytes();
    bytes[..enc.key_len()].to_vec()
}

fn random_iv(enc: ContentEncryption) -> Vec<u8> {
    let bytes: [u8; 16] = random_bytes();
    bytes[..enc.iv_len()].to_vec()
}

/// RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A §5.8.1) with SHA-256, no party information.
fn concat_kdf(z: &[u8], alg_id: &str, len: usize) -> Vec<u8> {
    concat_kdf_with(z, alg_id, &[], &[], len)
}

fn concat_kdf_with(z: &[u8], alg_id: &str, apu: &[u8], apv: &[u8], len: usize) -> Vec<u8> {
    let mut other = Vec::new();
    for part in [alg_id.as_bytes(), apu, apv] {
        other.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        other.extend_from_slice(part);
    }
    other.extend_from_slice(&u32::try_from(len * 8).unwrap_or(0).to_be_bytes());
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 1u32;
    while out.len() < len {
        let mut h = digest::Context::new(&digest::SHA256);
        h.update(&counter.to_be_bytes());
        h.update(z);
        h.update(&other);
        out.extend_from_slice(h.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn kw_cipher(kek: &[u8]) -> Option<&'static key_wrap::AesBlockCipher> {
    match kek.len() {
        16 => Some(&key_wrap::AES_128),
        32 => Some(&key_wrap::AES_256),
        _ => None,
    }
}

/// RFC 3394 AES Key Wrap.
fn wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, JweError> {
    let cipher = kw_cipher(kek).ok_or(JweError::Crypto)?;
    let key = KeyEncryptionKey::new(cipher, kek).map_err(|_| JweError::Crypto)?;
    let mut out = vec![0u8; cek.len() + 8];
    let len = key.wrap(cek, &mut out).map_err(|_| JweError::Crypto)?.len();
    out.truncate(len);
    Ok(out)
}

fn unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let key = KeyEncryptionKey::new(kw_cipher(kek)?, kek).ok()?;
    let mut out = vec![0u8; wrapped.len()];
    let len = key.unwrap(wrapped, &mut out).ok()?.len();
    out.truncate(len);
    Some(out)
}

/// RFC 7518 §5.2.2.1 step 5-6: the HMAC over AAD, IV, ciphertext and the AAD's bit length,
/// truncated to half the key.
fn cbc_tag(enc: ContentEncryption, mac_key: &[u8], aad: &[u8], iv: &[u8], c: &[u8]) -> Vec<u8> {
    let alg = if enc == ContentEncryption::A256CbcHs512 {
        hmac::HMAC_SHA512
    } else {
        hmac::HMAC_SHA256
    };
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(alg, mac_key));
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(c);
    ctx.update(&u64::try_from(aad.len() * 8).unwrap_or(0).to_be_bytes());
    ctx.sign().as_ref()[..mac_key.len()].to_vec()
}

fn aes(len: usize) -> &'static cipher::Algorithm {
    if len == 16 {
        &cipher::AES_128
    } else {
        &cipher::AES_256
    }
}

fn gcm(enc: ContentEncryption) -> &'static aead::Algorithm {
    if enc == ContentEncryption::A128Gcm {
        &aead::AES_128_GCM
    } else {
        &aead::AES_256_GCM
    }
}

/// RFC 7516 §5.1 steps 15-16: ciphertext and tag.
fn seal(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), JweError> {
    let crypto = |_| JweError::Crypto;
    match enc {
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let key = LessSafeKey::new(UnboundKey::new(gcm(enc), cek).map_err(crypto)?);
            let nonce = Nonce::try_assume_unique_for_key(iv).map_err(crypto)?;
            let mut data = plaintext.to_vec();
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut data)
                .map_err(crypto)?;
            Ok((data, tag.as_ref().to_vec()))
        }
        ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => {
            let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
            let key = PaddedBlockEncryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(aes(enc_key.len()), enc_key).map_err(crypto)?,
            )
            .map_err(crypto)?;
            let iv: [u8; 16] = iv.try_into().map_err(|_| JweError::Crypto)?;
            let mut data = plaintext.to_vec();
            key.less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(crypto)?;
            let tag = cbc_tag(enc, mac_key, aad, &iv, &data);
            Ok((data, tag))
        }
    }
}

/// RFC 7516 §5.2 step 16: the tag is checked before anything is decrypted.
fn open(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    mut data: Vec<u8>,
    tag: &[u8],
) -> Option<Vec<u8>> {
    match enc {
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            if tag.len() != 16 {
                return None;
            }
            let key = LessSafeKey::new(UnboundKey::new(gcm(enc), cek).ok()?);
            let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
            data.extend_from_slice(tag);
            let plain = key.open_in_place(nonce, Aad::from(aad), &mut data).ok()?;
            Some(plain.to_vec())
        }
        ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => {
            let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
            let expected = cbc_tag(enc, mac_key, aad, iv, &data);
            aws_lc_rs::constant_time::verify_slices_are_equal(&expected, tag).ok()?;
            let key = PaddedBlockDecryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(aes(enc_key.len()), enc_key).ok()?,
            )
            .ok()?;
            let iv: [u8; 16] = iv.try_into().ok()?;
            let plain = key
                .decrypt(&mut data, DecryptionContext::Iv128(FixedLength::from(iv)))
                .ok()?;
            Some(plain.to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};

    const ALL_ENC: [ContentEncryption; 4] = [
        ContentEncryption::A128Gcm,
        ContentEncryption::A256Gcm,
        ContentEncryption::A128CbcHs256,
        ContentEncryption::A256CbcHs512,
    ];
    const ALL_EC: [KeyManagement; 3] = [
        KeyManagement::EcdhEs,
        KeyManagement::EcdhEsA128Kw,
        KeyManagement::EcdhEsA256Kw,
    ];

    fn jwk(v: Value) -> Value {
        v
    }

    fn ec_pair() -> (PrivateKey, Value) {
        let k = PrivateKey::generate(&agreement::ECDH_P256).expect("key");
        let p = k.compute_public_key().expect("public");
        let p = p.as_ref();
        let j = jwk(
            json!({"kty": "EC", "crv": "P-256", "kid": "e1", "x": b64url(&p[1..33]), "y": b64url(&p[33..])}),
        );
        (k, j)
    }

    fn rsa_pair() -> (OaepPrivateDecryptingKey, Value) {
        let kp = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("key");
        let c =
            PublicKeyComponents::<Vec<u8>>::from(aws_lc_rs::signature::KeyPair::public_key(&kp));
        let j = jwk(
            json!({"kty": "RSA", "kid": "r1", "use": "enc", "n": b64url(&c.n), "e": b64url(&c.e)}),
        );
        let pkcs8 = kp.as_der().expect("pkcs8");
        let k = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).expect("decrypting key");
        (OaepPrivateDecryptingKey::new(k).expect("oaep"), j)
    }

    #[test]
    fn every_algorithm_round_trips_and_a_changed_byte_fails() {
        let (ec, ec_jwk) = ec_pair();
        let (rsa, rsa_jwk) = rsa_pair();
        let msg = b"{\"sub\":\"alice\"}";
        let mut cases: Vec<(KeyManagement, Decrypter<'_>, &Value)> = ALL_EC
            .iter()
            .map(|a| (*a, Decrypter::Ec(&ec), &ec_jwk))
            .collect();
        cases.push((KeyManagement::RsaOaep256, Decrypter::Rsa(&rsa), &rsa_jwk));
        for (alg, key, public) in cases {
            for enc in ALL_ENC {
                let t = encrypt(msg, public, alg, enc, Some("JWT")).expect("encrypt");
                let (h, plain) = decrypt(&t, key.clone_ref(), &[alg], &[enc]).expect("decrypt");
                assert_eq!(plain, msg, "{alg:?} {enc:?}");
                assert_eq!(h["cty"], "JWT");
                assert_eq!(h["kid"], public["kid"]);
                // Not accepted where the algorithm is not allowed.
                assert!(decrypt(&t, key.clone_ref(), &[], &[enc]).is_none());
                // Every part is authenticated: one changed character anywhere fails.
                let parts: Vec<&str> = t.split('.').collect();
                for i in 0..5 {
                    if parts[i].is_empty() {
                        continue;
                    }
                    let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
                    let c = if p[i].starts_with('A') { "B" } else { "A" };
                    p[i].replace_range(0..1, c);
                    assert!(
                        decrypt(&p.join("."), key.clone_ref(), &[alg], &[enc]).is_none(),
                        "{alg:?} {enc:?}: part {i} changed"
                    );
                }
            }
        }
    }

    impl Decrypter<'_> {
        fn clone_ref(&self) -> Decrypter<'_> {
            match self {
                Decrypter::Rsa(k) => Decrypter::Rsa(k),
                Decrypter::Ec(k) => Decrypter::Ec(k),
            }
        }
    }

    #[test]
    fn keys_that_do_not_fit_are_refused() {
        let (_, ec_jwk) = ec_pair();
        let (_, rsa_jwk) = rsa_pair();
        assert!(encrypt(
            b"x",
            &ec_jwk,
            KeyManagement::RsaOaep256,
            ContentEncryption::A128Gcm,
            None
        )
        .is_err());
        assert!(encrypt(
            b"x",
            &rsa_jwk,
            KeyManagement::EcdhEs,
            ContentEncryption::A128Gcm,
            None
        )
        .is_err());
        let mut sig = rsa_jwk.clone();
        sig["use"] = json!("sig");
        assert!(
            !key_fits(&sig, KeyManagement::RsaOaep256),
            "a signature key never encrypts"
        );
        let mut oaep1 = rsa_jwk.clone();
        oaep1["alg"] = json!("RSA-OAEP");
        assert!(
            !key_fits(&oaep1, KeyManagement::RsaOaep256),
            "a key naming RSA-OAEP (SHA-1)"
        );
        // Review regressions: a key is judged as published, its alg and key_ops included.
        let mut verify_only = ec_jwk.clone();
        verify_only["key_ops"] = json!(["verify"]);
        assert!(
            !key_fits(&verify_only, KeyManagement::EcdhEs),
            "key_ops verify"
        );
        let mut es512 = ec_jwk.clone();
        es512["alg"] = json!("ES512");
        assert!(!key_fits(&es512, KeyManagement::EcdhEs), "a signing alg");
        let mut a256kw = ec_jwk.clone();
        a256kw["alg"] = json!("ECDH-ES+A256KW");
        assert!(key_fits(&a256kw, KeyManagement::EcdhEsA256Kw));
        assert!(!key_fits(&a256kw, KeyManagement::EcdhEs));
        assert!(!key_fits(&a256kw, KeyManagement::EcdhEsA128Kw));
        let mut derive = ec_jwk.clone();
        derive["key_ops"] = json!([]);
        assert!(
            key_fits(&derive, KeyManagement::EcdhEs),
            "WebCrypto's empty key_ops"
        );
        let off_curve = jwk(
            json!({"kty": "EC", "crv": "P-256", "x": b64url(&[1u8; 32]), "y": b64url(&[2u8; 32])}),
        );
        assert_eq!(
            encrypt(
                b"x",
                &off_curve,
                KeyManagement::EcdhEs,
                ContentEncryption::A128Gcm,
                None
            ),
            Err(JweError::Key("ECDH-ES")),
            "a point not on the curve"
        );
    }

    /// RFC 7518 Appendix C: ECDH-ES key agreement for A128GCM between Alice and Bob.
    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let bob_d = b64url_decode("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw").unwrap();
        let bob = PrivateKey::from_private_key(&agreement::ECDH_P256, &bob_d).expect("bob");
        let x = b64url_decode("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0").unwrap();
        let y = b64url_decode("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps").unwrap();
        let peer = Curve::named(Some("P-256")).unwrap().point(&x, &y).unwrap();
        let z = agreement::agree(
            &bob,
            UnparsedPublicKey::new(&agreement::ECDH_P256, peer),
            (),
            |z| Ok(z.to_vec()),
        )
        .unwrap();
        let key = concat_kdf_with(&z, "A128GCM", b"Alice", b"Bob", 16);
        assert_eq!(b64url(&key), "VqqN6vgjbSBcIijNcacQGg");
    }

    /// RFC 7516 Appendix A.3's content: AES_128_CBC_HMAC_SHA_256 with its key, IV and AAD.
    #[test]
    fn cbc_hmac_matches_rfc7516_appendix_a3() {
        let cek: Vec<u8> = vec![
            4, 211, 31, 197, 84, 157, 252, 254, 11, 100, 157, 250, 63, 170, 106, 206, 107, 124,
            212, 45, 111, 107, 9, 219, 200, 177, 0, 240, 143, 156, 44, 207,
        ];
        let iv = b64url_decode("AxY8DCtDaGlsbGljb3RoZQ").unwrap();
        let aad = b"eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0";
        let (c, tag) = seal(
            ContentEncryption::A128CbcHs256,
            &cek,
            &iv,
            aad,
            b"Live long and prosper.",
        )
        .unwrap();
        assert_eq!(b64url(&c), "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY");
        assert_eq!(b64url(&tag), "U0m_YmjN04DJvceFICbCVQ");
        let wrapped = wrap(&b64url_decode("GawgguFyGrWKav7AX4VKUg").unwrap(), &cek).unwrap();
        assert_eq!(
            b64url(&wrapped),
            "6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ"
        );
    }

    #[test]
    fn crit_zip_and_wrong_sizes_are_refused() {
        let (ec, ec_jwk) = ec_pair();
        let t = encrypt(
            b"x",
            &ec_jwk,
            KeyManagement::EcdhEs,
            ContentEncryption::A128Gcm,
            None,
        )
        .unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let mut h: Map<String, Value> =
            serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
        for extra in ["crit", "zip"] {
            let mut h2 = h.clone();
            h2.insert(extra.into(), json!("DEF"));
            let t2 = format!(
                "{}.{}",
                b64url(Value::Object(h2).to_string().as_bytes()),
                parts[1..].join(".")
            );
            assert!(
                decrypt(&t2, Decrypter::Ec(&ec), &ALL_EC, &ALL_ENC).is_none(),
                "{extra}"
            );
        }
        // ECDH-ES direct carries no encrypted key.
        let t3 = format!("{}.AAAA.{}", parts[0], parts[2..].join("."));
        assert!(decrypt(&t3, Decrypter::Ec(&ec), &ALL_EC, &ALL_ENC).is_none());
        h.insert(
            "epk".into(),
            json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}),
        );
        let t4 = format!(
            "{}.{}",
            b64url(Value::Object(h).to_string().as_bytes()),
            parts[1..].join(".")
        );
        assert!(decrypt(&t4, Decrypter::Ec(&ec), &ALL_EC, &ALL_ENC).is_none());
        assert!(decrypt("a.b.c.d", Decrypter::Ec(&ec), &ALL_EC, &ALL_ENC).is_none());
    }
}

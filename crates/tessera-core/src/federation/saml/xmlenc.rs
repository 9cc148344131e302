//! XML Encryption 1.1 (W3C xmlenc-core1) of SAML assertions (SAML Core §2.3.4, §6.2): the
//! `EncryptedAssertion` Tessera's service provider receives. The content key comes with
//! RSA-OAEP, to one of Tessera's RS256 keys (the certificates of its SP metadata); the assertion
//! is encrypted with AES-GCM, or with AES-CBC only where the identity provider's signature covers
//! the ciphertext: unauthenticated CBC lets whoever can alter a Response and watch the answer
//! read it (Jager and Somorovsky, "How to Break XML Encryption", 2011). RSA PKCS#1 v1.5 key
//! transport (Bleichenbacher's attack) and Triple DES are refused. Once the algorithms are known,
//! every failure is the same one answer: nothing tells a caller which step failed.

use std::sync::Arc;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{self, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    OaepAlgorithm, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
    OAEP_SHA512_MGF1SHA512,
};
use base64::Engine;
use roxmltree::Node;

use crate::keys::SigningKey;

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const MORE: &str = "http://www.w3.org/2001/04/xmldsig-more#";

/// The one answer for every failure once the algorithms are known, up to the plaintext being one
/// well-formed assertion ([`super::verify`] gives it too): an altered CBC ciphertext whose padding
/// held reads no differently from one whose padding failed.
pub(super) const FAILED: &str =
    "the encrypted assertion does not decrypt with Tessera's keys to one well-formed SAML assertion";

/// At most this many `EncryptedKey`s are tried (one per recipient is usual).
const MAX_KEYS: usize = 4;

/// Whether the identity provider's signature covers the ciphertext (a signed Response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cover {
    Signed,
    Unsigned,
}

/// The content encryption (xmlenc-core1 §5.2): the algorithm and its key length in bytes.
enum Content {
    Gcm(&'static aead::Algorithm, usize),
    Cbc(&'static cipher::Algorithm, usize),
}

fn is(n: &Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn elements<'a, 'i>(n: &Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(Node::is_element)
}

fn algorithm<'a>(method: Option<Node<'a, '_>>) -> Result<&'a str, String> {
    method
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or_else(|| "an EncryptionMethod is missing".to_owned())
}

/// xmlenc-core1 §5.2.2 (AES-GCM) and §5.2.1 (AES-CBC).
fn content(uri: &str) -> Result<Content, String> {
    Ok(match uri.strip_prefix(XENC11).or(uri.strip_prefix(XENC)) {
        Some("aes128-gcm") if uri.starts_with(XENC11) => Content::Gcm(&aead::AES_128_GCM, 16),
        Some("aes192-gcm") if uri.starts_with(XENC11) => Content::Gcm(&aead::AES_192_GCM, 24),
        Some("aes256-gcm") if uri.starts_with(XENC11) => Content::Gcm(&aead::AES_256_GCM, 32),
        Some("aes128-cbc") if uri.starts_with(XENC) => Content::Cbc(&cipher::AES_128, 16),
        Some("aes192-cbc") if uri.starts_with(XENC) => Content::Cbc(&cipher::AES_192, 24),
        Some("aes256-cbc") if uri.starts_with(XENC) => Content::Cbc(&cipher::AES_256, 32),
        Some("tripledes-cbc") => return Err("Triple DES content encryption is refused".into()),
        _ => return Err(format!("the content encryption {uri:?} is not supported")),
    })
}

/// xmlenc-core1 §5.5.2 (RSA-OAEP): `rsa-oaep-mgf1p` (MGF1 with SHA-1, the digest SHA-1) or
/// `xmlenc11#rsa-oaep` with one SHA-2 (or SHA-1) for both the digest and MGF1; the OAEP label
/// from `OAEPparams`.
fn key_transport(
    method: Node<'_, '_>,
) -> Result<(&'static OaepAlgorithm, Option<Vec<u8>>), String> {
    let uri = algorithm(Some(method))?;
    let child = |ns: &str, name: &str| elements(&method).find(|c| is(c, ns, name));
    let digest = child(DSIG, "DigestMethod").and_then(|d| d.attribute("Algorithm"));
    let hash = |d: Option<&str>| match d {
        None => Some(1),
        Some(d) if d == format!("{DSIG}sha1") => Some(1),
        Some(d) if d == format!("{XENC}sha256") => Some(256),
        Some(d) if d == format!("{MORE}sha384") => Some(384),
        Some(d) if d == format!("{XENC}sha512") => Some(512),
        Some(_) => None,
    };
    let oaep = if uri == format!("{XENC}rsa-oaep-mgf1p") {
        match hash(digest) {
            Some(1) => &OAEP_SHA1_MGF1SHA1,
            _ => {
                return Err("rsa-oaep-mgf1p with a digest other than SHA-1 is not supported".into())
            }
        }
    } else if uri == format!("{XENC11}rsa-oaep") {
        let mgf = match child(XENC11, "MGF").and_then(|m| m.attribute("Algorithm")) {
            None => Some(1),
            Some(m) => m
                .strip_prefix(XENC11)
                .and_then(|m| m.strip_prefix("mgf1sha"))
                .and_then(|bits| bits.parse::<u32>().ok()),
        };
        match (hash(digest), mgf) {
            (Some(1), Some(1)) => &OAEP_SHA1_MGF1SHA1,
            (Some(256), Some(256)) => &OAEP_SHA256_MGF1SHA256,
            (Some(384), Some(384)) => &OAEP_SHA384_MGF1SHA384,
            (Some(512), Some(512)) => &OAEP_SHA512_MGF1SHA512,
            _ => {
                return Err(
                    "RSA-OAEP is supported with one hash for the digest and MGF1 (SHA-1 or SHA-2)"
                        .into(),
                )
            }
        }
    } else if uri == format!("{XENC}rsa-1_5") {
        return Err(
            "RSA PKCS#1 v1.5 key transport is refused (Bleichenbacher); use RSA-OAEP".into(),
        );
    } else {
        return Err(format!("the key transport {uri:?} is not supported"));
    };
    let label = match child(XENC, "OAEPparams") {
        Some(p) => Some(base64(p.text().unwrap_or_default())?),
        None => None,
    };
    Ok((oaep, label))
}

/// Base64 with whitespace (XML Schema base64Binary), at most 512 KiB.
fn base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > super::MAX_XML * 4 / 3 + 4 {
        return Err("a CipherValue is larger than 512 KiB".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "a CipherValue is not base64".to_owned())
}

/// The `CipherData/CipherValue` of an `EncryptedData` or `EncryptedKey` (never a
/// `CipherReference`: nothing is fetched).
fn cipher_value(n: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let data: Vec<_> = elements(&n).filter(|c| is(c, XENC, "CipherData")).collect();
    let [data] = data.as_slice() else {
        return Err("an encrypted element has no single CipherData".into());
    };
    let mut parts = elements(data);
    match (parts.next(), parts.next()) {
        (Some(v), None) if is(&v, XENC, "CipherValue") => base64(v.text().unwrap_or_default()),
        _ => Err("a CipherData holds no single CipherValue (a CipherReference is refused)".into()),
    }
}

/// The assertion an `EncryptedAssertion` carries, as the bytes the identity provider encrypted
/// (an XML element, UTF-8): the content key from an `EncryptedKey` (in the `EncryptedData`'s
/// `KeyInfo` or beside it, addressed to one of `recipients` or to no one in particular) opened
/// with one of `keys`.
pub(crate) fn decrypt_assertion(
    enc: Node<'_, '_>,
    keys: &[Arc<SigningKey>],
    cover: Cover,
    recipients: &[String],
) -> Result<String, String> {
    let mut data = None;
    let mut beside = Vec::new();
    for c in elements(&enc) {
        if is(&c, XENC, "EncryptedData") && data.is_none() {
            data = Some(c);
        } else if is(&c, XENC, "EncryptedKey") {
            beside.push(c);
        } else {
            return Err(format!(
                "the EncryptedAssertion carries an unexpected {}",
                c.tag_name().name()
            ));
        }
    }
    let data = data.ok_or("the EncryptedAssertion has no EncryptedData")?;
    if data
        .attribute("Type")
        .is_some_and(|t| t != format!("{XENC}Element"))
    {
        return Err("the EncryptedData does not hold an element".into());
    }
    let method = elements(&data).find(|c| is(c, XENC, "EncryptionMethod"));
    let content = content(algorithm(method)?)?;
    if matches!(content, Content::Cbc(..)) && cover == Cover::Unsigned {
        return Err(
            "AES-CBC is accepted only when the identity provider signs the whole Response (or encrypts with AES-GCM)"
                .into(),
        );
    }
    let inside = elements(&data)
        .filter(|c| is(c, DSIG, "KeyInfo"))
        .flat_map(|k| {
            elements(&k)
                .filter(|c| is(c, XENC, "EncryptedKey"))
                .collect::<Vec<_>>()
        });
    let candidates: Vec<Node<'_, '_>> = inside
        .chain(beside)
        .filter(|k| {
            k.attribute("Recipient")
                .is_none_or(|r| recipients.iter().any(|x| x == r))
        })
        .collect();
    if candidates.is_empty() {
        return Err("the EncryptedAssertion carries no EncryptedKey for Tessera".into());
    }
    if candidates.len() > MAX_KEYS {
        return Err("the EncryptedAssertion carries too many EncryptedKeys".into());
    }
    let mut wrapped = Vec::new();
    for k in &candidates {
        let method = elements(k)
            .find(|c| is(c, XENC, "EncryptionMethod"))
            .ok_or("an EncryptedKey has no EncryptionMethod")?;
        let (oaep, label) = key_transport(method)?;
        wrapped.push((oaep, label, cipher_value(*k)?));
    }
    let ciphertext = cipher_value(data)?;
    if keys.is_empty() {
        return Err("Tessera has no RS256 key to decrypt with".into());
    }
    let want = match content {
        Content::Gcm(_, n) | Content::Cbc(_, n) => n,
    };
    let content_key = wrapped
        .iter()
        .flat_map(|(oaep, label, w)| {
            keys.iter()
                .map(move |key| key.decrypt_oaep(oaep, w, label.as_deref()))
        })
        .flatten()
        .find(|k| k.len() == want)
        .ok_or(FAILED)?;
    let plain = match content {
        Content::Gcm(alg, _) => gcm(alg, &content_key, ciphertext),
        Content::Cbc(alg, _) => cbc(alg, &content_key, ciphertext),
    }
    .ok_or(FAILED)?;
    String::from_utf8(plain).map_err(|_| FAILED.to_owned())
}

/// xmlenc-core1 §5.2.4: a 96-bit IV, the ciphertext, a 128-bit tag.
fn gcm(alg: &'static aead::Algorithm, key: &[u8], data: Vec<u8>) -> Option<Vec<u8>> {
    if data.len() < 12 + 16 {
        return None;
    }
    let key = LessSafeKey::new(UnboundKey::new(alg, key).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(&data[..12]).ok()?;
    let mut in_out = data[12..].to_vec();
    let plain = key.open_in_place(nonce, Aad::empty(), &mut in_out).ok()?;
    Some(plain.to_vec())
}

/// xmlenc-core1 §5.2.1: a 128-bit IV, then the ciphertext, whose last plaintext byte counts the
/// padding bytes (the others are arbitrary).
fn cbc(alg: &'static cipher::Algorithm, key: &[u8], data: Vec<u8>) -> Option<Vec<u8>> {
    if data.len() < 32 || data.len() % 16 != 0 {
        return None;
    }
    let key = DecryptingKey::cbc(UnboundCipherKey::new(alg, key).ok()?).ok()?;
    let iv: [u8; 16] = data[..16].try_into().ok()?;
    let mut in_out = data[16..].to_vec();
    let plain = key
        .decrypt(
            &mut in_out,
            DecryptionContext::Iv128(FixedLength::from(&iv)),
        )
        .ok()?;
    let pad = usize::from(*plain.last()?);
    if pad == 0 || pad > 16 || pad > plain.len() {
        return None;
    }
    let len = plain.len() - pad;
    Some(plain[..len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_named_exactly() {
        assert!(matches!(
            content(&format!("{XENC11}aes256-gcm")),
            Ok(Content::Gcm(_, 32))
        ));
        assert!(matches!(
            content(&format!("{XENC}aes128-cbc")),
            Ok(Content::Cbc(_, 16))
        ));
        // GCM under the 2001 namespace and CBC under the 2009 one are no such algorithms.
        assert!(content(&format!("{XENC}aes256-gcm")).is_err());
        assert!(content(&format!("{XENC11}aes128-cbc")).is_err());
        assert!(content(&format!("{XENC}tripledes-cbc")).is_err());
        let doc = |m: &str| {
            format!(
                r#"<x:EncryptionMethod xmlns:x="{XENC}" xmlns:ds="{DSIG}" xmlns:y="{XENC11}" Algorithm="{m}"/>"#
            )
        };
        for (uri, ok) in [
            (format!("{XENC}rsa-oaep-mgf1p"), true),
            (format!("{XENC11}rsa-oaep"), true),
            (format!("{XENC}rsa-1_5"), false),
            ("urn:other".to_owned(), false),
        ] {
            let xml = doc(&uri);
            let d = roxmltree::Document::parse(&xml).unwrap();
            assert_eq!(key_transport(d.root_element()).is_ok(), ok, "{uri}");
        }
        // A SHA-256 digest with rsa-oaep-mgf1p would need MGF1-SHA-1: not offered.
        let xml = format!(
            r#"<x:EncryptionMethod xmlns:x="{XENC}" xmlns:ds="{DSIG}" Algorithm="{XENC}rsa-oaep-mgf1p"><ds:DigestMethod Algorithm="{XENC}sha256"/></x:EncryptionMethod>"#
        );
        let d = roxmltree::Document::parse(&xml).unwrap();
        assert!(key_transport(d.root_element()).is_err());
        let xml = format!(
            r#"<x:EncryptionMethod xmlns:x="{XENC}" xmlns:ds="{DSIG}" xmlns:y="{XENC11}" Algorithm="{XENC11}rsa-oaep"><ds:DigestMethod Algorithm="{XENC}sha256"/><y:MGF Algorithm="{XENC11}mgf1sha256"/></x:EncryptionMethod>"#
        );
        let d = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(
            key_transport(d.root_element()).unwrap().0.id(),
            OAEP_SHA256_MGF1SHA256.id()
        );
    }

    #[test]
    fn cbc_padding_and_gcm_tags_fail_without_panicking() {
        let key = [7u8; 16];
        for len in [0, 15, 16, 31, 33] {
            assert!(cbc(&cipher::AES_128, &key, vec![0; len]).is_none(), "{len}");
            assert!(
                gcm(&aead::AES_128_GCM, &key, vec![0; len]).is_none(),
                "{len}"
            );
        }
        assert!(cbc(&cipher::AES_128, &[0; 3], vec![0; 48]).is_none());
    }
}

//! A certificate's public key as a JWK states it (RFC 7518 §6), to compare a client certificate
//! with the keys a client registered (RFC 8705 §2.2).

use serde_json::Value;
use x509_parser::prelude::X509Certificate;
use x509_parser::public_key::PublicKey;

use crate::secret::b64url_decode;

/// A certificate's public key, as a JWK states it (RFC 7518 §6): what a registered key must
/// match for `self_signed_tls_client_auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyParts {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

fn unsigned(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

impl PublicKeyParts {
    pub(crate) fn of(cert: &X509Certificate<'_>) -> Option<PublicKeyParts> {
        let spki = cert.public_key();
        let oid = spki.algorithm.algorithm.to_id_string();
        if oid == "1.3.101.112" {
            return Some(PublicKeyParts::Ed25519 {
                x: spki.subject_public_key.data.to_vec(),
            });
        }
        match spki.parsed().ok()? {
            PublicKey::RSA(k) => Some(PublicKeyParts::Rsa {
                n: unsigned(k.modulus),
                e: unsigned(k.exponent),
            }),
            PublicKey::EC(point) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())?;
                let (crv, len) = match curve.as_str() {
                    "1.2.840.10045.3.1.7" => ("P-256", 32),
                    "1.3.132.0.34" => ("P-384", 48),
                    "1.3.132.0.35" => ("P-521", 66),
                    _ => return None,
                };
                let d = point.data();
                if d.len() != 1 + 2 * len || d[0] != 4 {
                    return None;
                }
                Some(PublicKeyParts::Ec {
                    crv,
                    x: d[1..=len].to_vec(),
                    y: d[1 + len..].to_vec(),
                })
            }
            _ => None,
        }
    }

    /// Whether the published JWK is this key (members compared as numbers and points).
    pub(crate) fn matches(&self, jwk: &Value) -> bool {
        let member = |m: &str| jwk[m].as_str().and_then(b64url_decode);
        match self {
            PublicKeyParts::Rsa { n, e } => {
                jwk["kty"] == "RSA"
                    && member("n").is_some_and(|v| unsigned(&v) == *n)
                    && member("e").is_some_and(|v| unsigned(&v) == *e)
            }
            PublicKeyParts::Ec { crv, x, y } => {
                jwk["kty"] == "EC"
                    && jwk["crv"] == *crv
                    && member("x").as_ref() == Some(x)
                    && member("y").as_ref() == Some(y)
            }
            PublicKeyParts::Ed25519 { x } => {
                jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519" && member("x").as_ref() == Some(x)
            }
        }
    }
}

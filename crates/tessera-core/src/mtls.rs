//! Mutual TLS (RFC 8705): client authentication with a TLS client certificate, issued by a
//! trusted CA and matched by subject (§2.1) or self-signed with a key the client registered
//! (§2.2), and the certificate thumbprint tokens are bound to (§3).

use std::net::IpAddr;

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::clock::Timestamp;
use crate::jwks::KeySource;
use crate::model::{AuthMethod, Client, MutualTls};
use crate::provider::Provider;
use crate::public_key::PublicKeyParts;
use crate::secret::{b64url, sha256};

/// RFC 8705 §3.1: `x5t#S256`, the base64url SHA-256 of the certificate's DER.
pub fn thumbprint(der: &[u8]) -> String {
    b64url(&sha256(der))
}

/// A distinguished name: its RDNs in RFC 4514 order (most specific first), each a set of
/// `TYPE=value` pairs (sorted), types upper-case and values lower-case (the usual attributes
/// compare case-insensitively).
type Dn = Vec<Vec<(String, String)>>;

/// RFC 4514 §3: parses a DN string: RDNs separated by `,`, multi-valued RDNs by `+`, escapes
/// `\,` and `\XX` (UTF-8 bytes in hex) resolved. A hex-encoded BER value (`#…`), an unescaped
/// `;` or `=` in a value, or an empty RDN is refused (`None`).
fn parse_dn(dn: &str) -> Option<Dn> {
    let mut rdns: Dn = Vec::new();
    let mut rdn: Vec<(String, String)> = Vec::new();
    let mut key: Option<String> = None;
    let mut current: Vec<u8> = Vec::new();
    let bytes = dn.as_bytes();
    let mut i = 0;
    let finish = |key: &mut Option<String>, current: &mut Vec<u8>| {
        let k = key.take()?;
        let v = String::from_utf8(std::mem::take(current)).ok()?;
        let (k, v) = (k.trim().to_ascii_uppercase(), v.trim().to_lowercase());
        (!k.is_empty() && !v.starts_with('#')).then_some((k, v))
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_hexdigit() {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    current.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                } else {
                    current.push(next);
                    i += 2;
                }
                continue;
            }
            b'=' if key.is_none() => {
                key = Some(String::from_utf8(std::mem::take(&mut current)).ok()?);
            }
            b'=' | b';' => return None,
            b'+' => rdn.push(finish(&mut key, &mut current)?),
            b',' => {
                rdn.push(finish(&mut key, &mut current)?);
                rdn.sort();
                rdns.push(std::mem::take(&mut rdn));
            }
            _ => current.push(b),
        }
        i += 1;
    }
    rdn.push(finish(&mut key, &mut current)?);
    rdn.sort();
    rdns.push(rdn);
    Some(rdns)
}

/// Whether a configured DN is well-formed (checked when an application is saved).
pub fn valid_dn(dn: &str) -> bool {
    parse_dn(dn).is_some_and(|v| !v.is_empty())
}

/// The certificate's subject as [`parse_dn`] gives a DN string: most specific RDN first.
fn subject_dn(cert: &X509Certificate<'_>) -> Option<Dn> {
    let registry = x509_parser::objects::oid_registry();
    let mut out: Dn = Vec::new();
    for rdn in cert.subject().iter() {
        let mut set = Vec::new();
        for atv in rdn.iter() {
            let name = x509_parser::objects::oid2abbrev(atv.attr_type(), registry)
                .map(str::to_owned)
                .unwrap_or_else(|_| atv.attr_type().to_id_string());
            set.push((name.to_ascii_uppercase(), atv.as_str().ok()?.to_lowercase()));
        }
        set.sort();
        out.push(set);
    }
    out.reverse();
    Some(out)
}

/// RFC 8705 §2.1.2: the certificate matches the one subject field the client registered.
fn subject_matches(m: &MutualTls, cert: &X509Certificate<'_>) -> bool {
    let fields = m.subject_fields();
    let [(field, expected)] = fields.as_slice() else {
        return false;
    };
    if *field == "tls_client_auth_subject_dn" {
        // RFC 4517 distinguishedNameMatch: the same RDNs in the same order (RFC 4514 writes
        // the most specific first; the other way round, as some tools print a DN, is taken
        // too), each RDN the same set of attributes and values.
        return match (parse_dn(expected), subject_dn(cert)) {
            (Some(a), Some(mut b)) => {
                if a == b {
                    return true;
                }
                b.reverse();
                a == b
            }
            _ => false,
        };
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|n| match (*field, n) {
        ("tls_client_auth_san_dns", GeneralName::DNSName(d)) => d.eq_ignore_ascii_case(expected),
        ("tls_client_auth_san_uri", GeneralName::URI(u)) => u == expected,
        ("tls_client_auth_san_email", GeneralName::RFC822Name(e)) => {
            e.eq_ignore_ascii_case(expected)
        }
        ("tls_client_auth_san_ip", GeneralName::IPAddress(b)) => {
            let ip = match b.len() {
                4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                _ => None,
            };
            ip.is_some_and(|ip| expected.parse::<IpAddr>().is_ok_and(|e| e == ip))
        }
        _ => false,
    })
}

/// RFC 8705 §2.1: the certificate chains to one of the trusted CAs (PKIX path validation for
/// TLS client authentication at `now`).
fn chain_ok(der: &[u8], anchors: &[Vec<u8>], now: Timestamp) -> bool {
    use rustls_pki_types::{CertificateDer, UnixTime};
    let cert = CertificateDer::from(der);
    let Ok(ee) = webpki::EndEntityCert::try_from(&cert) else {
        return false;
    };
    let ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.as_slice()))
        .collect();
    let roots: Vec<_> = ders
        .iter()
        .filter_map(|d| webpki::anchor_from_trusted_cert(d).ok())
        .collect();
    let Ok(secs) = u64::try_from(now.0) else {
        return false;
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &roots,
        &[],
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .is_ok()
}

/// Whether the certificate's validity window holds `now` (a self-signed certificate is not
/// path-validated, but an expired one is still refused).
fn in_validity(cert: &X509Certificate<'_>, now: Timestamp) -> bool {
    let v = cert.validity();
    v.not_before.timestamp() <= now.0 && now.0 <= v.not_after.timestamp()
}

impl Provider {
    /// RFC 8705 §2: whether the TLS client certificate `der` authenticates `client`, by the
    /// method it registered (`tls_client_auth` or `self_signed_tls_client_auth`).
    pub(crate) async fn certificate_authenticates(
        &self,
        client: &Client,
        der: Option<&[u8]>,
        now: Timestamp,
    ) -> bool {
        let Some(der) = der else {
            return false;
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return false;
        };
        match client.auth_method {
            AuthMethod::TlsClientAuth => {
                subject_matches(&client.mtls, &cert)
                    && chain_ok(der, &self.settings.mtls.trust_anchors, now)
            }
            AuthMethod::SelfSignedTlsClientAuth => {
                let Some(parts) = PublicKeyParts::of(&cert) else {
                    return false;
                };
                let source = KeySource {
                    inline: client.federation.jwks.as_ref(),
                    uri: client.federation.jwks_uri.as_deref(),
                };
                in_validity(&cert, now)
                    && self
                        .jwks
                        .same_key(&*self.outbound, now, source, &parts)
                        .await
                        .is_ok_and(|found| found)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(dn: &[(rcgen::DnType, &str)], sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        p.distinguished_name = name;
        p.subject_alt_names = sans;
        let key = rcgen::KeyPair::generate().expect("key");
        p.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn subjects_match_by_dn_or_one_san() {
        let der = cert_with(
            &[
                (rcgen::DnType::CountryName, "DE"),
                (rcgen::DnType::OrganizationName, "Example, Inc."),
                (rcgen::DnType::CommonName, "Client One"),
            ],
            vec![
                rcgen::SanType::DnsName("client.example.com".try_into().unwrap()),
                rcgen::SanType::IpAddress("192.0.2.7".parse().unwrap()),
            ],
        );
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let with = |f: &dyn Fn(&mut MutualTls)| {
            let mut m = MutualTls::default();
            f(&mut m);
            subject_matches(&m, &cert)
        };
        assert!(with(&|m| m.tls_client_auth_subject_dn =
            Some("CN=client one, O=Example\\, Inc., C=DE".into())));
        assert!(!with(
            &|m| m.tls_client_auth_subject_dn = Some("CN=Client One,O=Example\\, Inc.".into())
        ));
        assert!(with(
            &|m| m.tls_client_auth_subject_dn = Some("C=DE,O=Example\\, Inc.,CN=Client One".into())
        ));
        assert!(!with(
            &|m| m.tls_client_auth_subject_dn = Some("C=DE,O=Example,CN=Client One".into())
        ));
        // Shuffled, or attributes of separate RDNs put in one: not the same DN.
        assert!(!with(
            &|m| m.tls_client_auth_subject_dn = Some("CN=Client One,C=DE,O=Example\\, Inc.".into())
        ));
        assert!(!with(
            &|m| m.tls_client_auth_subject_dn = Some("CN=Client One+O=Example\\, Inc.,C=DE".into())
        ));
        assert!(with(
            &|m| m.tls_client_auth_san_dns = Some("Client.Example.com".into())
        ));
        assert!(!with(
            &|m| m.tls_client_auth_san_dns = Some("other.example.com".into())
        ));
        assert!(with(
            &|m| m.tls_client_auth_san_ip = Some("192.0.2.7".into())
        ));
        assert!(!with(
            &|m| m.tls_client_auth_san_uri = Some("https://client.example.com".into())
        ));
        // Two subject fields at once match nothing.
        assert!(!with(&|m| {
            m.tls_client_auth_san_dns = Some("client.example.com".into());
            m.tls_client_auth_san_ip = Some("192.0.2.7".into());
        }));
        assert!(!with(&|_| {}));
    }

    #[test]
    fn dn_strings_resolve_escapes_and_refuse_what_they_cannot_match() {
        let der = cert_with(&[(rcgen::DnType::CommonName, "José, a+b")], vec![]);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let with = |dn: &str| {
            subject_matches(
                &MutualTls {
                    tls_client_auth_subject_dn: Some(dn.into()),
                    ..Default::default()
                },
                &cert,
            )
        };
        assert!(with("CN=Jos\\C3\\A9\\2C a\\+b"));
        assert!(with("CN=josé\\, a\\+b"));
        assert!(!with("CN=JosC3A9\\, a\\+b"));
        for bad in [
            "CN=#0C05726F626F74",
            "CN=robot;O=Example",
            "CN=a=b",
            "=x",
            "CN=\\",
            "CN=x,",
            "",
        ] {
            assert!(!valid_dn(bad), "{bad}");
        }
        assert!(valid_dn("CN=robot,O=Example"));
    }

    #[test]
    fn a_certificate_key_matches_its_jwk_only() {
        let key = rcgen::KeyPair::generate().expect("key");
        let der = rcgen::CertificateParams::default()
            .self_signed(&key)
            .expect("cert")
            .der()
            .to_vec();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let parts = PublicKeyParts::of(&cert).expect("EC key");
        let raw = key.public_key_raw();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])});
        assert!(parts.matches(&jwk));
        let mut other = jwk.clone();
        other["y"] = serde_json::json!(b64url(&raw[1..33]));
        assert!(!parts.matches(&other));
        assert_eq!(thumbprint(&der).len(), 43);
    }
}

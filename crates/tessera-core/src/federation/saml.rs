//! SAML 2.0 identity providers, Tessera as the service provider (SAML Profiles §4.1, the Web
//! Browser SSO Profile): an AuthnRequest over HTTP-Redirect (Bindings §3.4) with a 128-bit ID
//! and the sign-in's `state` as RelayState; the Response over HTTP-POST (Bindings §3.5) is
//! accepted only as far as the identity provider's signature covers it. xmlsec verifies the
//! signatures with the certificates of the provider's metadata (never a certificate the
//! Response carries), under an allow-list of algorithms (no SHA-1), and the document is reduced
//! to what they cover before anything is read, so a wrapped (XSW) or unsigned assertion is never
//! read. The assertion must come from the provider's entity ID, answer Tessera's request
//! (`InResponseTo`), be addressed to Tessera (`Recipient`, `Destination`, an `AudienceRestriction`
//! naming Tessera), be in time, have no comments (which could split a `NameID`), and be used
//! once (its ID). Unsolicited (IdP-initiated) responses are never accepted.

use std::collections::HashMap;
use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use base64::Engine;
use samael::crypto::{
    AllowedSignatureAlgorithm as SigAlg, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use samael::metadata::EntityDescriptor;
use samael::schema::{Assertion, Response};
use serde_json::{Map, Value};

use super::{IdentityProvider, IdpProtocol};
use crate::assertion::SKEW;
use crate::clock::Timestamp;
use crate::keys::SigningKey;
use crate::model::Alg;
use crate::outbound::{redact_url, Request};
use crate::provider::Provider;
use crate::secret::random_bytes;

/// The HTTP-Redirect binding (Bindings §3.4).
pub const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// The HTTP-POST binding (Bindings §3.5).
pub const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// How far a LogoutRequest's IssueInstant may be from now, either way (five minutes and skew).
pub const LOGOUT_FRESH: i64 = 300 + SKEW;

/// The largest metadata document or Response Tessera reads.
pub const MAX_XML: usize = 512 * 1024;

/// Where the Response posted for the sign-in of state `relay` is kept.
fn stash_key(relay: &str) -> crate::model::ArtifactKey {
    let digest = crate::secret::sha256(format!("saml-posted\0{relay}").as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    crate::model::ArtifactKey::new(prefix, digest)
}

/// Seconds a posted Response waits for the browser to fetch it back.
const STASH_TTL: i64 = 300;

/// Seconds an identity provider's metadata read from its URL is used before it is read again.
const METADATA_FRESH: i64 = 3_600;

/// The signature algorithms accepted: SHA-2 RSA and ECDSA (SHA-1 and DSA are not).
const ALGORITHMS: [SigAlg; 6] = [
    SigAlg::RsaSha256,
    SigAlg::RsaSha384,
    SigAlg::RsaSha512,
    SigAlg::EcdsaSha256,
    SigAlg::EcdsaSha384,
    SigAlg::EcdsaSha512,
];

/// What Tessera reads from an identity provider's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// The HTTP-Redirect SingleSignOnService.
    pub sso: String,
    /// The HTTP-Redirect SingleLogoutService, when there is one.
    pub slo: Option<String>,
    /// The DER certificates of its signing keys.
    pub certs: Vec<Vec<u8>>,
}

/// A DOCTYPE (and so any entity declaration) has no place in SAML.
fn has_doctype(xml: &str) -> bool {
    xml.to_ascii_uppercase().contains("<!DOCTYPE")
}

/// An identity provider's metadata (SAML Metadata §2.4.3): its entity ID, the Redirect-binding
/// sign-in service and its signing certificates, without which there is nothing to verify.
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, String> {
    if xml.len() > MAX_XML {
        return Err("the metadata is larger than 512 KiB".into());
    }
    if has_doctype(xml) {
        return Err("the metadata carries a DOCTYPE".into());
    }
    let ed = EntityDescriptor::from_str(xml)
        .map_err(|e| format!("the metadata is not a SAML EntityDescriptor: {e}"))?;
    let entity_id = ed
        .entity_id
        .filter(|e| !e.is_empty())
        .ok_or("the metadata has no entityID")?;
    let idp = ed
        .idp_sso_descriptors
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or("the metadata describes no identity provider (IDPSSODescriptor)")?;
    let sso = idp
        .single_sign_on_services
        .iter()
        .find(|s| s.binding == REDIRECT)
        .map(|s| s.location.clone())
        .ok_or("the identity provider has no HTTP-Redirect SingleSignOnService")?;
    let slo = idp
        .single_logout_services
        .iter()
        .find(|s| s.binding == REDIRECT)
        .map(|s| s.location.clone());
    let mut certs = Vec::new();
    for kd in &idp.key_descriptors {
        if kd.key_use.as_deref().is_some_and(|u| u != "signing") {
            continue;
        }
        for c in kd
            .key_info
            .x509_data
            .iter()
            .flat_map(|d| d.certificates.iter())
        {
            let b64: String = c.chars().filter(|ch| !ch.is_ascii_whitespace()).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "a signing certificate in the metadata is not base64")?;
            x509_parser::parse_x509_certificate(&der)
                .map_err(|_| "a signing certificate in the metadata is not X.509")?;
            certs.push(der);
        }
    }
    if certs.is_empty() {
        return Err(
            "the metadata names no signing certificate: there would be nothing to verify responses with"
                .into(),
        );
    }
    for url in std::iter::once(&sso).chain(slo.iter()) {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") => {}
            _ => return Err(format!("{} is not an http(s) URL", redact_url(url))),
        }
    }
    Ok(IdpMetadata {
        entity_id,
        sso,
        slo,
        certs,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// SAML Core §1.3.3: an xs:dateTime in UTC.
fn instant(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A fresh request ID: 128 random bits, starting with a letter as xs:ID wants (Core §1.3.4).
pub fn request_id() -> String {
    let hex: String = random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("_{hex}")
}

/// Tessera's service-provider metadata for one identity provider (Metadata §2.4.4).
pub fn sp_metadata(
    entity_id: &str,
    acs: &str,
    slo: &str,
    name_id_format: Option<&str>,
    signing_certs: &[String],
) -> String {
    let format = name_id_format
        .map(|f| format!("<md:NameIDFormat>{}</md:NameIDFormat>", escape(f)))
        .unwrap_or_default();
    let keys: String = signing_certs
        .iter()
        .map(|c| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                escape(c)
            )
        })
        .collect();
    let signed = if signing_certs.is_empty() {
        "false"
    } else {
        "true"
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {keys}
    <md:SingleLogoutService Binding="{REDIRECT}" Location="{slo}"/>
    {format}
    <md:AssertionConsumerService Binding="{POST}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = escape(entity_id),
        acs = escape(acs),
        slo = escape(slo),
    )
}

/// Tessera as the service provider towards one identity provider.
#[derive(Debug, Clone, Copy)]
pub struct Sp<'a> {
    pub entity_id: &'a str,
    pub acs: &'a str,
    /// The key its requests are signed with, if any.
    pub key: Option<&'a SigningKey>,
}

/// The AuthnRequest (Core §3.4.1) and the URL that carries it (Bindings §3.4.4: DEFLATE, base64,
/// URL-encoded, with the RelayState).
pub fn authn_request_url(
    md: &IdpMetadata,
    id: &str,
    sp: &Sp<'_>,
    name_id_format: Option<&str>,
    relay_state: &str,
    now: Timestamp,
) -> Result<String, String> {
    let policy = match name_id_format {
        Some(f) => format!(
            r#"<samlp:NameIDPolicy Format="{}" AllowCreate="true"/>"#,
            escape(f)
        ),
        None => r#"<samlp:NameIDPolicy AllowCreate="true"/>"#.to_owned(),
    };
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{POST}"><saml:Issuer>{issuer}</saml:Issuer>{policy}</samlp:AuthnRequest>"#,
        id = escape(id),
        at = instant(now),
        dest = escape(&md.sso),
        acs = escape(sp.acs),
        issuer = escape(sp.entity_id),
    );
    redirect_url(&md.sso, "SAMLRequest", &xml, Some(relay_state), sp.key)
}

/// The URI of RSA-SHA256, the signature Tessera's SAML requests carry.
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// Bindings §3.4.4: a message on a URL: DEFLATE, base64, URL-encoded, with its RelayState;
/// signed (§3.4.4.1, `SigAlg` and `Signature` over the query as sent) when `key` is given.
fn redirect_url(
    endpoint: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
    key: Option<&SigningKey>,
) -> Result<String, String> {
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate
        .write_all(xml.as_bytes())
        .and_then(|()| deflate.flush())
        .map_err(|e| e.to_string())?;
    let raw = deflate.finish().map_err(|e| e.to_string())?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair(
        param,
        &base64::engine::general_purpose::STANDARD.encode(raw),
    );
    if let Some(r) = relay_state {
        q.append_pair("RelayState", r);
    }
    let mut query = q.finish();
    if let Some(k) = key {
        let alg: String = form_urlencoded::byte_serialize(RSA_SHA256.as_bytes()).collect();
        query.push_str(&format!("&SigAlg={alg}"));
        let signature = k.sign(query.as_bytes()).map_err(|e| e.to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
        let enc: String = form_urlencoded::byte_serialize(b64.as_bytes()).collect();
        query.push_str(&format!("&Signature={enc}"));
    }
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    Ok(format!("{endpoint}{sep}{query}"))
}

/// A message of the Redirect binding: base64, then DEFLATE (at most [`MAX_XML`] inflated).
fn inflated(b64: &str) -> Result<String, String> {
    use std::io::Read;
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "the SAML message is not base64")?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .take(MAX_XML as u64 + 1)
        .read_to_string(&mut xml)
        .map_err(|_| "the SAML message is not DEFLATE-compressed UTF-8")?;
    if xml.len() > MAX_XML {
        return Err("the SAML message is larger than 512 KiB".into());
    }
    if has_doctype(&xml) {
        return Err("the SAML message carries a DOCTYPE".into());
    }
    Ok(xml)
}

/// Bindings §3.4.4.1: the Redirect-binding message `param` (`SAMLRequest` or `SAMLResponse`),
/// its signature verified over `param=…&RelayState=…&SigAlg=…` exactly as the query carried
/// them, by a certificate of the metadata; RSA or ECDSA with SHA-256/384/512 (SHA-1 is refused).
/// Names are compared decoded (`SAML%52equest` is a `SAMLRequest`), each at most once, and the
/// query holds one message only: the message verified is the one returned, decoded.
fn signed_redirect(raw_query: &str, md: &IdpMetadata, param: &str) -> Result<String, String> {
    use aws_lc_rs::signature as sig;
    let decode = |v: &str| -> String {
        form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, x)| x.into_owned())
            .unwrap_or_default()
    };
    // (decoded name, raw value)
    let mut pairs: Vec<(String, &str)> = Vec::new();
    for kv in raw_query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let name = decode(k);
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(format!("{name} is given twice"));
        }
        pairs.push((name, v));
    }
    let raw = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let other = if param == "SAMLRequest" {
        "SAMLResponse"
    } else {
        "SAMLRequest"
    };
    if raw(other).is_some() {
        return Err("the query carries more than one SAML message".into());
    }
    let message = raw(param).ok_or_else(|| format!("no {param}"))?;
    let sig_alg = raw("SigAlg").ok_or("the message is not signed (no SigAlg)")?;
    let signature = raw("Signature").ok_or("the message is not signed (no Signature)")?;
    let mut signed = format!("{param}={message}");
    if let Some(r) = raw("RelayState") {
        signed.push_str(&format!("&RelayState={r}"));
    }
    signed.push_str(&format!("&SigAlg={sig_alg}"));
    let algorithm: &dyn sig::VerificationAlgorithm = match decode(sig_alg).as_str() {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => &sig::RSA_PKCS1_2048_8192_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => &sig::RSA_PKCS1_2048_8192_SHA384,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => &sig::RSA_PKCS1_2048_8192_SHA512,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => &sig::ECDSA_P256_SHA256_ASN1,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => &sig::ECDSA_P384_SHA384_ASN1,
        other => return Err(format!("the signature algorithm {other} is not accepted")),
    };
    let signature = base64::engine::general_purpose::STANDARD
        .decode(decode(signature))
        .map_err(|_| "the Signature is not base64")?;
    let verified = md.certs.iter().any(|der| {
        x509_parser::parse_x509_certificate(der).is_ok_and(|(_, cert)| {
            let key = &cert.public_key().subject_public_key.data;
            sig::UnparsedPublicKey::new(algorithm, key.as_ref())
                .verify(signed.as_bytes(), &signature)
                .is_ok()
        })
    });
    if verified {
        Ok(decode(message))
    } else {
        Err(
            "the message's signature does not verify with the identity provider's certificates"
                .into(),
        )
    }
}

/// A LogoutRequest from the identity provider (Core §3.7.1), its Redirect-binding signature
/// verified: the request's ID, the NameID and the SessionIndex.
pub fn verify_logout_request(
    raw_query: &str,
    md: &IdpMetadata,
    slo: &str,
    now: Timestamp,
) -> Result<(String, String, Option<String>), String> {
    let b64 = signed_redirect(raw_query, md, "SAMLRequest")?;
    let xml = inflated(&b64)?;
    if xml.contains("<!--") {
        return Err("the LogoutRequest carries an XML comment".into());
    }
    let r = samael::schema::LogoutRequest::from_str(&xml)
        .map_err(|e| format!("the LogoutRequest cannot be read: {e}"))?;
    let issuer = r
        .issuer
        .as_ref()
        .and_then(|i| i.value.as_deref())
        .map(str::trim);
    if issuer != Some(md.entity_id.as_str()) {
        return Err("the LogoutRequest's Issuer is not the identity provider".into());
    }
    // Bindings §3.4.5.2: a signed message names its destination; and it is fresh, so a signed
    // request for another service provider, or an old one, ends nothing here.
    if r.destination.as_deref() != Some(slo) {
        return Err("the LogoutRequest is not addressed to Tessera's SLO service".into());
    }
    if r.issue_instant
        .as_ref()
        .is_none_or(|t| (t.timestamp() - now.0).abs() > LOGOUT_FRESH)
    {
        return Err("the LogoutRequest was issued too long ago, or in the future".into());
    }
    let id =
        r.id.clone()
            .filter(|i| !i.is_empty())
            .ok_or("the LogoutRequest has no ID")?;
    let name_id = r
        .name_id
        .as_ref()
        .map(|n| n.value.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or("the LogoutRequest names no NameID")?;
    Ok((id, name_id, r.session_index.clone()))
}

/// The LogoutRequest Tessera sends when its user signs out (Core §3.7.1), on a URL.
pub fn logout_request_url(
    slo: &str,
    sp_entity_id: &str,
    name_id: (&str, Option<&str>),
    session_index: Option<&str>,
    relay_state: &str,
    key: Option<&SigningKey>,
    now: Timestamp,
) -> Result<String, String> {
    let format = name_id
        .1
        .map(|f| format!(r#" Format="{}""#, escape(f)))
        .unwrap_or_default();
    let index = session_index
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(s)))
        .unwrap_or_default();
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer><saml:NameID{format}>{name}</saml:NameID>{index}</samlp:LogoutRequest>"#,
        id = request_id(),
        at = instant(now),
        dest = escape(slo),
        issuer = escape(sp_entity_id),
        name = escape(name_id.0),
    );
    redirect_url(slo, "SAMLRequest", &xml, Some(relay_state), key)
}

/// Tessera's LogoutResponse to the identity provider's LogoutRequest `in_response_to`.
pub fn logout_response_url(
    slo: &str,
    sp_entity_id: &str,
    in_response_to: &str,
    relay_state: Option<&str>,
    key: Option<&SigningKey>,
    now: Timestamp,
) -> Result<String, String> {
    let xml = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{SUCCESS}"/></samlp:Status></samlp:LogoutResponse>"#,
        id = request_id(),
        at = instant(now),
        dest = escape(slo),
        irt = escape(in_response_to),
        issuer = escape(sp_entity_id),
    );
    redirect_url(slo, "SAMLResponse", &xml, relay_state, key)
}

/// What Tessera expects of an assertion.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// An `AudienceRestriction` must name one of these (every restriction, one of them).
    pub audiences: &'a [String],
    /// The bearer confirmation's `Recipient` (and a signed Response's `Destination`).
    pub recipients: &'a [String],
    /// At a sign-in: the ID of the AuthnRequest the Response must answer. As a bearer
    /// assertion (RFC 7522) there is none.
    pub request_id: Option<&'a str>,
    pub now: Timestamp,
}

impl Expected<'_> {
    fn recipient_ok(&self, r: Option<&str>) -> bool {
        r.is_some_and(|r| self.recipients.iter().any(|x| x == r))
    }
}

/// A verified assertion: its ID and expiry (for the replay check), and what it says of the
/// user as claims (`name_id`, `name_id_format`, `session_index`, `acr` from the
/// AuthnContextClassRef, and each attribute by its Name: one value as a string, several as a
/// list).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub assertion_id: String,
    pub not_on_or_after: Timestamp,
    pub claims: Map<String, Value>,
}

/// How many elements of local name `name` the document opens.
fn count_elements(xml: &str, name: &str) -> usize {
    xml.split('<')
        .skip(1)
        .filter(|rest| {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let tag = &rest[..end];
            tag.rsplit(':').next() == Some(name)
        })
        .count()
}

/// The local name of the document's root element.
fn root_name(xml: &str) -> Option<&str> {
    let mut rest = xml;
    loop {
        let start = rest.find('<')?;
        rest = &rest[start + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let name = &rest[..end];
        return Some(name.rsplit(':').next().unwrap_or(name));
    }
}

/// A SAML document in base64 (whitespace ignored; RFC 7522's base64url too), as UTF-8 XML.
fn decoded(b64: &str) -> Result<String, String> {
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > MAX_XML * 4 / 3 + 4 {
        return Err("the SAML document is larger than 512 KiB".into());
    }
    let url_safe = compact.contains(['-', '_']) || compact.len() % 4 != 0;
    let raw = if url_safe {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(compact.trim_end_matches('='))
    } else {
        base64::engine::general_purpose::STANDARD.decode(&compact)
    }
    .map_err(|_| "the SAML document is not base64")?;
    String::from_utf8(raw).map_err(|_| "the SAML document is not UTF-8".into())
}

/// RFC 7522 §2.1 and RFC 8693 (`urn:ietf:params:oauth:token-type:saml2`): a bare assertion,
/// base64url-encoded, signed itself by the identity provider.
pub fn verify_assertion(b64: &str, md: &IdpMetadata, e: &Expected<'_>) -> Result<Verified, String> {
    let xml = decoded(b64)?;
    if has_doctype(&xml) {
        return Err("the assertion carries a DOCTYPE".into());
    }
    if root_name(&xml) != Some("Assertion") || count_elements(&xml, "Assertion") != 1 {
        return Err("the token is not one SAML assertion".into());
    }
    let signed = signed_part(&xml, md)?;
    if root_name(&signed) != Some("Assertion") {
        return Err("the signature does not cover the assertion".into());
    }
    let a = Assertion::from_str(&signed)
        .map_err(|err| format!("the signed Assertion cannot be read: {err}"))?;
    check_assertion(&a, md, e, e.now)
}

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// The document as XML parses it: UTF-8 only (a document libxml2 would read as UTF-16 could say
/// something else to it than to the checks here), no DTD, at most 100,000 nodes.
fn parsed(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    let body = xml.trim_start_matches('\u{feff}').trim_start();
    if !body.starts_with('<') || xml.contains('\0') {
        return Err("the SAML document is not UTF-8 XML".into());
    }
    if let Some(decl) = body.strip_prefix("<?xml") {
        let decl = &decl[..decl.find("?>").unwrap_or(decl.len())];
        let lower = decl.to_ascii_lowercase();
        if let Some(at) = lower.find("encoding") {
            let value: String = lower[at + "encoding".len()..]
                .chars()
                .skip_while(|c| *c == '=' || *c == '"' || *c == '\'' || c.is_whitespace())
                .take_while(|c| *c != '"' && *c != '\'')
                .collect();
            if value != "utf-8" {
                return Err("the SAML document is not UTF-8 XML".into());
            }
        }
    }
    roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: 100_000,
        },
    )
    .map_err(|e| format!("the SAML document is not well-formed XML ({e})"))
}

fn is(n: &roxmltree::Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

/// Every XML signature of the document in the one shape SAML uses (SAML Core §5.4), checked
/// before xmlsec sees it, so xmlsec never dereferences, transforms or fetches anything else: it
/// sits on a Response or Assertion and has one Reference, to that element's ID; its transforms
/// are enveloped-signature and exclusive C14N, as is its canonicalization; its KeyInfo holds
/// certificates or names only (never a RetrievalMethod); it carries no Object.
fn check_signatures(doc: &roxmltree::Document<'_>) -> Result<(), String> {
    let wrong = |what: &str| Err(format!("a signature {what}"));
    for sig in doc.descendants().filter(|n| is(n, DSIG, "Signature")) {
        let Some(parent) = sig.parent_element() else {
            return wrong("is the whole document");
        };
        let signs_saml = is(&parent, PROTOCOL, "Response")
            || is(&parent, ASSERTION, "Assertion")
            || is(&parent, PROTOCOL, "LogoutRequest")
            || is(&parent, PROTOCOL, "LogoutResponse");
        if !signs_saml {
            return wrong("is not on a SAML Response or Assertion");
        }
        let Some(id) = parent.attribute("ID") else {
            return wrong("is on an element without an ID");
        };
        let mut signed_info = 0;
        for part in sig.children().filter(roxmltree::Node::is_element) {
            if is(&part, DSIG, "SignedInfo") {
                signed_info += 1;
                check_signed_info(&part, id)?;
            } else if is(&part, DSIG, "KeyInfo") {
                let plain = part
                    .children()
                    .filter(roxmltree::Node::is_element)
                    .all(|k| {
                        is(&k, DSIG, "KeyName")
                            || (is(&k, DSIG, "X509Data")
                                && k.children().filter(roxmltree::Node::is_element).all(|x| {
                                    [
                                        "X509Certificate",
                                        "X509IssuerSerial",
                                        "X509SubjectName",
                                        "X509SKI",
                                    ]
                                    .iter()
                                    .any(|name| is(&x, DSIG, name))
                                }))
                    });
                if !plain {
                    return wrong("names its key otherwise than by certificate or name");
                }
            } else if !is(&part, DSIG, "SignatureValue") {
                return wrong(&format!("carries a {}", part.tag_name().name()));
            }
        }
        if signed_info != 1 {
            return wrong("has no single SignedInfo");
        }
    }
    Ok(())
}

fn check_signed_info(si: &roxmltree::Node<'_, '_>, id: &str) -> Result<(), String> {
    let wrong = |what: &str| Err(format!("a signature {what}"));
    let mut references = 0;
    for part in si.children().filter(roxmltree::Node::is_element) {
        if is(&part, DSIG, "CanonicalizationMethod") {
            if part.attribute("Algorithm") != Some(EXC_C14N) {
                return wrong("is canonicalized otherwise than by exclusive C14N");
            }
        } else if is(&part, DSIG, "SignatureMethod") {
            // Judged by the algorithm allow-list xmlsec is given.
        } else if is(&part, DSIG, "Reference") {
            references += 1;
            if part.attribute("URI") != Some(format!("#{id}").as_str()) {
                return wrong("refers to something other than the element it is on");
            }
            for r in part.children().filter(roxmltree::Node::is_element) {
                if is(&r, DSIG, "Transforms") {
                    let transforms: Vec<_> =
                        r.children().filter(roxmltree::Node::is_element).collect();
                    let known = transforms.len() <= 2
                        && transforms.iter().all(|t| {
                            is(t, DSIG, "Transform")
                                && matches!(t.attribute("Algorithm"), Some(ENVELOPED | EXC_C14N))
                                && t.children()
                                    .filter(roxmltree::Node::is_element)
                                    .all(|c| is(&c, EXC_C14N, "InclusiveNamespaces"))
                        });
                    if !known {
                        return wrong(
                            "transforms otherwise than by enveloped-signature and exclusive C14N",
                        );
                    }
                } else if !is(&r, DSIG, "DigestMethod") && !is(&r, DSIG, "DigestValue") {
                    return wrong(&format!("reference carries a {}", r.tag_name().name()));
                }
            }
        } else {
            return wrong(&format!("carries a {}", part.tag_name().name()));
        }
    }
    if references != 1 {
        return wrong("has no single Reference");
    }
    Ok(())
}

/// The document reduced to what the identity provider's signatures cover (xmlsec, the
/// metadata's certificates, SHA-2 only), without comments.
fn signed_part(xml: &str, md: &IdpMetadata) -> Result<String, String> {
    check_signatures(&parsed(xml)?)?;
    let certs: Vec<CertificateDer> = md.certs.iter().cloned().map(CertificateDer::from).collect();
    let signed = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALGORITHMS),
    )
    .map_err(|e| format!("no valid signature of the identity provider ({e})"))?;
    // Exclusive C14N leaves comments out of the digest: one inside a NameID would split what
    // was signed from what a reader takes.
    if signed.contains("<!--") {
        return Err("the signed content carries an XML comment".into());
    }
    Ok(signed)
}

/// Verifies a base64 SAMLResponse (whitespace ignored) against the identity provider's
/// metadata and what Tessera expects; the reason, for the log, otherwise.
pub fn verify_response(b64: &str, md: &IdpMetadata, e: &Expected<'_>) -> Result<Verified, String> {
    let xml = decoded(b64)?;
    if has_doctype(&xml) {
        return Err("the Response carries a DOCTYPE".into());
    }
    // One assertion per Response: a second one is where a signature-wrapping attack hides the
    // assertion it wants read.
    if count_elements(&xml, "Assertion") + count_elements(&xml, "EncryptedAssertion") > 1 {
        return Err("the Response carries more than one assertion".into());
    }
    // Only what the identity provider's signature covers is kept; everything below reads that.
    let signed = signed_part(&xml, md).map_err(|w| format!("the Response carries {w}"))?;
    let now = e.now;
    let assertion = match root_name(&signed) {
        Some("Response") => {
            let r = Response::from_str(&signed)
                .map_err(|e| format!("the signed Response cannot be read: {e}"))?;
            let status = r.status.as_ref().and_then(|s| s.status_code.value.clone());
            if status.as_deref() != Some(SUCCESS) {
                return Err(format!("the identity provider answered {status:?}"));
            }
            // Bindings §3.5.5.2: a signed message names its destination.
            if !r
                .destination
                .as_deref()
                .is_some_and(|d| e.recipients.iter().any(|x| x == d))
            {
                return Err("the Response's Destination is not Tessera's ACS".into());
            }
            if r.in_response_to.as_deref() != e.request_id {
                return Err("the Response does not answer Tessera's request".into());
            }
            if let Some(i) = r.issuer.as_ref().and_then(|i| i.value.as_deref()) {
                if i.trim() != md.entity_id {
                    return Err("the Response's Issuer is not the identity provider".into());
                }
            }
            if r.encrypted_assertion.is_some() {
                return Err("encrypted assertions are not supported".into());
            }
            r.assertion
                .ok_or("the signed Response holds no assertion")?
        }
        Some("Assertion") => Assertion::from_str(&signed)
            .map_err(|e| format!("the signed Assertion cannot be read: {e}"))?,
        other => {
            return Err(format!(
                "the signature covers a {other:?}, not a Response or Assertion"
            ))
        }
    };
    check_assertion(&assertion, md, e, now)
}

/// Core §2.3-2.7 and Profiles §4.1.4.2-3 on the signed assertion.
fn check_assertion(
    a: &Assertion,
    md: &IdpMetadata,
    e: &Expected<'_>,
    now: Timestamp,
) -> Result<Verified, String> {
    if a.version != "2.0" {
        return Err("the assertion is not SAML 2.0".into());
    }
    if a.issuer.value.as_deref().map(str::trim) != Some(md.entity_id.as_str()) {
        return Err("the assertion's Issuer is not the identity provider".into());
    }
    if a.issue_instant.timestamp() > now.0 + SKEW {
        return Err("the assertion was issued in the future".into());
    }
    if a.id.is_empty() || a.id.len() > 256 {
        return Err("the assertion has no usable ID".into());
    }
    let subject = a.subject.as_ref().ok_or("the assertion has no Subject")?;
    let name_id = subject
        .name_id
        .as_ref()
        .map(|n| (n.value.trim().to_owned(), n.format.clone()))
        .filter(|(v, _)| !v.is_empty() && v.len() <= 255)
        .ok_or("the assertion names no NameID")?;
    // A bearer confirmation for Tessera's request, at Tessera's ACS, still in time.
    let confirmed = subject
        .subject_confirmations
        .iter()
        .flatten()
        .filter(|c| c.method.as_deref() == Some(BEARER))
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .find(|d| {
            e.recipient_ok(d.recipient.as_deref())
                && (e.request_id.is_none() || d.in_response_to.as_deref() == e.request_id)
                && d.not_on_or_after
                    .as_ref()
                    .is_some_and(|t| t.timestamp() + SKEW > now.0)
                && d.not_before
                    .as_ref()
                    .is_none_or(|t| t.timestamp() - SKEW <= now.0)
        });
    let Some(confirmed) = confirmed else {
        return Err(
            "no bearer SubjectConfirmation answers Tessera's request at its ACS in time (Recipient, InResponseTo, NotOnOrAfter)"
                .into(),
        );
    };
    let conditions = a
        .conditions
        .as_ref()
        .ok_or("the assertion has no Conditions")?;
    if conditions
        .not_before
        .as_ref()
        .is_some_and(|t| t.timestamp() - SKEW > now.0)
    {
        return Err("the assertion is not valid yet".into());
    }
    let mut until = confirmed
        .not_on_or_after
        .as_ref()
        .map_or(now, |t| Timestamp(t.timestamp()));
    if let Some(t) = &conditions.not_on_or_after {
        if t.timestamp() + SKEW <= now.0 {
            return Err("the assertion has expired".into());
        }
        until = Timestamp(until.0.min(t.timestamp()));
    }
    // Core §2.5.1.4: every AudienceRestriction must name Tessera, and there must be one.
    let restrictions = conditions
        .audience_restrictions
        .as_deref()
        .unwrap_or_default();
    if restrictions.is_empty() {
        return Err("the assertion has no AudienceRestriction".into());
    }
    if !restrictions.iter().all(|r| {
        r.audience
            .iter()
            .any(|x| e.audiences.iter().any(|a| a == x.trim()))
    }) {
        return Err("the assertion is for another audience".into());
    }
    // Profiles §4.1.4.2: a sign-in's assertion says how the user authenticated; a bearer
    // assertion (RFC 7522 §3) may not.
    let authn = a.authn_statements.as_deref().and_then(<[_]>::first);
    if authn.is_none() && e.request_id.is_some() {
        return Err("the assertion has no AuthnStatement".into());
    }
    let mut claims = Map::new();
    claims.insert("name_id".into(), Value::String(name_id.0));
    if let Some(f) = name_id.1 {
        claims.insert("name_id_format".into(), Value::String(f));
    }
    if let Some(s) = authn.and_then(|a| a.session_index.as_ref()) {
        claims.insert("session_index".into(), Value::String(s.clone()));
    }
    if let Some(acr) = authn
        .and_then(|a| a.authn_context.as_ref())
        .and_then(|c| c.value.as_ref())
        .and_then(|v| v.value.clone())
    {
        claims.insert("acr".into(), Value::String(acr));
    }
    for statement in a.attribute_statements.iter().flatten() {
        for attr in &statement.attributes {
            let Some(name) = attr.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let values: Vec<Value> = attr
                .values
                .iter()
                .filter_map(|v| v.value.clone())
                .map(Value::String)
                .collect();
            let value = match values.len() {
                0 => continue,
                1 => values.into_iter().next().unwrap_or(Value::Null),
                _ => Value::Array(values),
            };
            // Names of Tessera's own making stay Tessera's.
            if !["name_id", "name_id_format", "session_index", "acr"].contains(&name) {
                claims.insert(name.to_owned(), value);
            }
        }
    }
    Ok(Verified {
        assertion_id: a.id.clone(),
        not_on_or_after: until,
        claims,
    })
}

/// SAML has no `email_verified`: a provider trusted for email (`link_by_email`) vouches for the
/// address it maps to `email`, as its administrator decided; any other's address is unverified.
pub(crate) fn trust_email(idp: &IdentityProvider, p: &mut super::mapping::Profile) {
    p.email_verified = idp.link_by_email && p.email.is_some();
    if p.email.is_some() {
        p.claims
            .insert("email_verified".into(), Value::Bool(p.email_verified));
    }
}

/// When metadata was read, for which version of the provider's configuration, and what it said.
type Read = (Timestamp, Timestamp, Arc<IdpMetadata>);

/// SAML metadata read, by identity provider name.
#[derive(Debug, Default)]
pub struct SamlMetadataCache {
    entries: RwLock<HashMap<String, Read>>,
}

impl Provider {
    /// Tessera's entity ID towards the identity provider `idp`: its metadata URL.
    pub fn saml_entity_id(&self, idp: &str) -> String {
        self.settings
            .endpoint(&format!("/saml/metadata/{}", super::oidc::urlencode(idp)))
    }

    /// The key Tessera signs its SAML requests with: its RS256 signing key, when it has one.
    pub(crate) fn saml_request_key(&self, now: Timestamp) -> Option<Arc<SigningKey>> {
        self.keys().signer(Alg::RS256, now).cloned()
    }

    /// Tessera's single logout service for `idp` (HTTP-Redirect).
    pub fn saml_slo(&self, idp: &str) -> String {
        self.federation_endpoint(idp, "slo")
    }

    /// Tessera's assertion consumer service for `idp` (HTTP-POST).
    pub fn saml_acs(&self, idp: &str) -> String {
        self.federation_endpoint(idp, "acs")
    }

    /// `GET /saml/metadata/{idp}`: Tessera's service-provider metadata for a SAML provider.
    pub fn saml_sp_metadata(&self, idp: &str) -> Option<String> {
        let i = self.idp(idp).filter(|i| i.protocol == IdpProtocol::Saml)?;
        let now = self.now();
        // Every RSA key still published (one signing now, and those rotated in or out), so a
        // provider that caches the metadata verifies across a rotation.
        let certs: Vec<String> = self
            .keys()
            .all()
            .filter(|k| k.alg == Alg::RS256 && k.published_at(now))
            .filter_map(|k| k.jwk()["x5c"][0].as_str().map(str::to_owned))
            .collect();
        Some(sp_metadata(
            &self.saml_entity_id(&i.name),
            &self.saml_acs(&i.name),
            &self.saml_slo(&i.name),
            i.name_id_format.as_deref(),
            &certs,
        ))
    }

    /// The provider's metadata: given inline, or read from its URL through the guarded
    /// outbound path (an hour at a time, read again when the configuration changed).
    pub(crate) async fn saml_metadata(
        &self,
        idp: &IdentityProvider,
        now: Timestamp,
    ) -> Result<Arc<IdpMetadata>, String> {
        if let Some(xml) = &idp.metadata_xml {
            return parse_idp_metadata(xml).map(Arc::new);
        }
        if let Some((at, version, m)) = self
            .saml_metadata_cache
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&idp.name)
        {
            if now.0 - at.0 < METADATA_FRESH && *version == idp.updated_at {
                return Ok(m.clone());
            }
        }
        let url = idp
            .metadata_url
            .clone()
            .ok_or("the provider has neither metadata_url nor metadata_xml")?;
        let res = self
            .outbound
            .send(&Request {
                url: url.clone(),
                form: None,
                authorization: None,
                accept: "application/samlmetadata+xml, application/xml",
            })
            .await
            .map_err(|e| format!("the metadata could not be read: {e}"))?;
        if !res.is_success() {
            return Err(format!(
                "the metadata at {} answered {}",
                redact_url(&url),
                res.status
            ));
        }
        let xml = String::from_utf8(res.body).map_err(|_| "the metadata is not UTF-8")?;
        let m = Arc::new(parse_idp_metadata(&xml)?);
        self.saml_metadata_cache
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(idp.name.clone(), (now, idp.updated_at, m.clone()));
        Ok(m)
    }

    /// A bare assertion of `idp` presented at the token endpoint (RFC 7522 §3, RFC 8693),
    /// verified for Tessera and spent; its claims, with `not_on_or_after` (seconds).
    pub(crate) async fn verified_saml_assertion(
        &self,
        idp: &IdentityProvider,
        token: &str,
        now: Timestamp,
    ) -> Result<Map<String, Value>, String> {
        let md = self.saml_metadata(idp, now).await?;
        let mut audiences = self.assertion_audiences();
        audiences.push(self.saml_entity_id(&idp.name));
        // RFC 7522 §3 item 4: the bearer confirmation names the token endpoint; an assertion of
        // a browser sign-in (for the ACS) is not one to redeem here.
        let recipients = [self.settings.endpoint("/token")];
        let (b64, m) = (token.to_owned(), md.clone());
        let _turn = self.saml_gate.acquire().await.map_err(|e| e.to_string())?;
        let v = tokio::task::spawn_blocking(move || {
            verify_assertion(
                &b64,
                &m,
                &Expected {
                    audiences: &audiences,
                    recipients: &recipients,
                    request_id: None,
                    now,
                },
            )
        })
        .await
        .map_err(|e| format!("the verification stopped: {e}"))??;
        self.spend_assertion(&md, &v, now).await?;
        let mut claims = v.claims;
        claims.insert("not_on_or_after".into(), Value::from(v.not_on_or_after.0));
        Ok(claims)
    }

    /// An assertion is used once, wherever it is presented (a sign-in or the token endpoint).
    async fn spend_assertion(
        &self,
        md: &IdpMetadata,
        v: &Verified,
        now: Timestamp,
    ) -> Result<(), String> {
        let until = Timestamp(v.not_on_or_after.0.max(now.0) + SKEW);
        match self
            .first_use_of_jti("saml-assertion", &md.entity_id, &v.assertion_id, until)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err("the assertion was used before".into()),
            Err(e) => Err(format!("the replay check failed: {e}")),
        }
    }

    /// `POST /federation/{idp}/acs`: the browser posts the Response cross-site, so its SameSite
    /// cookies stay behind. It is kept (five minutes, once) and the browser sent on to fetch it
    /// back with `GET`, which carries them; the path to send it to.
    pub async fn saml_post(
        &self,
        idp: &str,
        response: Option<&str>,
        relay_state: Option<&str>,
    ) -> crate::error::Result<String> {
        let now = self.now();
        if self
            .idp(idp)
            .is_none_or(|i| i.protocol != IdpProtocol::Saml || !i.enabled)
        {
            return Err(crate::error::Error::invalid_request(
                "there is no enabled SAML identity provider of that name",
            ));
        }
        let response = response
            .filter(|r| !r.is_empty() && r.len() <= MAX_XML * 4 / 3 + 4096)
            .ok_or_else(|| {
                crate::error::Error::invalid_request("SAMLResponse is missing or too large")
            })?;
        // Only a Response to a sign-in under way is kept, and one per sign-in: its key follows
        // from the sign-in's state (the RelayState), so no one fills the store with Responses.
        let unknown = || {
            crate::error::Error::invalid_request(
                "the sign-in at the identity provider is unknown, expired or was already completed; start signing in again from the application",
            )
        };
        let relay = relay_state.ok_or_else(unknown)?;
        let pending = crate::secret::handle_key(relay).ok_or_else(unknown)?;
        let live = self.store.get_artifact(&pending).await?.is_some_and(|a| {
            a.kind == crate::model::ArtifactKind::Federation
                && a.client_id == idp
                && a.consumed_at.is_none()
                && a.revoked_at.is_none()
                && a.expires_at > now
        });
        if !live {
            return Err(unknown());
        }
        let inserted = self
            .store
            .insert_artifact(&crate::model::Artifact {
                key: stash_key(relay),
                kind: crate::model::ArtifactKind::SamlResponse,
                client_id: idp.to_owned(),
                grant_id: None,
                user_id: None,
                expires_at: now.plus(STASH_TTL),
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::json!({"response": response, "relay_state": relay}),
            })
            .await;
        match inserted {
            Ok(()) => {}
            Err(crate::store::StoreError::Conflict(_)) => {
                return Err(crate::error::Error::invalid_request(
                    "a Response was posted for this sign-in already",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(format!(
            "/federation/{}/acs?posted={}",
            super::oidc::urlencode(idp),
            super::oidc::urlencode(relay)
        ))
    }

    /// The Response posted for `idp` under `handle` (once): it and its RelayState.
    pub async fn saml_posted(
        &self,
        idp: &str,
        handle: Option<&str>,
    ) -> crate::error::Result<Option<(String, Option<String>)>> {
        let now = self.now();
        let Some(key) = handle.filter(|h| h.len() <= 256).map(stash_key) else {
            return Ok(None);
        };
        let consumed = self
            .store
            .consume_artifact(
                crate::store::Consume {
                    key: &key,
                    kind: crate::model::ArtifactKind::SamlResponse,
                    client_id: idp,
                },
                now,
                None,
            )
            .await?;
        Ok(match consumed {
            crate::store::Consumed::First(a) if a.expires_at > now => {
                let response = a.payload["response"].as_str().map(str::to_owned);
                let relay = a.payload["relay_state"].as_str().map(str::to_owned);
                response.map(|r| (r, relay))
            }
            _ => None,
        })
    }

    /// Verifies a posted Response for the request `request_id` (off the async threads: xmlsec
    /// is CPU work) and spends its assertion ID; the claims, or the reason for the log.
    pub(crate) async fn verified_saml(
        &self,
        idp: &IdentityProvider,
        response: &str,
        request_id: &str,
        now: Timestamp,
    ) -> Result<Map<String, Value>, String> {
        let md = self.saml_metadata(idp, now).await?;
        let (b64, audiences, recipients, rid) = (
            response.to_owned(),
            [self.saml_entity_id(&idp.name)],
            [self.saml_acs(&idp.name)],
            request_id.to_owned(),
        );
        let m = md.clone();
        let _turn = self.saml_gate.acquire().await.map_err(|e| e.to_string())?;
        let v = tokio::task::spawn_blocking(move || {
            verify_response(
                &b64,
                &m,
                &Expected {
                    audiences: &audiences,
                    recipients: &recipients,
                    request_id: Some(&rid),
                    now,
                },
            )
        })
        .await
        .map_err(|e| format!("the verification stopped: {e}"))??;
        self.spend_assertion(&md, &v, now).await?;
        Ok(v.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_element_is_found_past_declarations() {
        assert_eq!(
            root_name("<?xml version=\"1.0\"?><!-- x --><saml2p:Response ID=\"a\">"),
            Some("Response")
        );
        assert_eq!(root_name("<Assertion/>"), Some("Assertion"));
        assert_eq!(root_name("nothing"), None);
    }

    fn signed(reference: &str, transforms: &str, key_info: &str, extra: &str) -> String {
        format!(
            r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="r1"><ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="{reference}"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue>{key_info}{extra}</ds:Signature></samlp:Response>"##
        )
    }

    const STANDARD: &str = r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;

    /// Nothing xmlsec would dereference, transform or fetch reaches it: the one SAML shape only.
    #[test]
    fn signatures_have_the_one_saml_shape_before_xmlsec_sees_them() {
        let check = |xml: &str| parsed(xml).and_then(|d| check_signatures(&d));
        assert_eq!(check(&signed("#r1", STANDARD, "", "")), Ok(()));
        let certificate = "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>MII</ds:X509Certificate></ds:X509Data></ds:KeyInfo>";
        assert_eq!(check(&signed("#r1", STANDARD, certificate, "")), Ok(()));
        for (what, xml) in [
            (
                "an external reference",
                signed("http://127.0.0.1:9/x", STANDARD, "", ""),
            ),
            ("a file", signed("file:///dev/zero", STANDARD, "", "")),
            ("the whole document", signed("", STANDARD, "", "")),
            ("another element", signed("#other", STANDARD, "", "")),
            (
                "an XPath transform",
                signed(
                    "#r1",
                    r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>count(//a)</ds:XPath></ds:Transform>"#,
                    "",
                    "",
                ),
            ),
            (
                "an XSLT transform",
                signed(
                    "#r1",
                    r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#,
                    "",
                    "",
                ),
            ),
            (
                "a RetrievalMethod",
                signed(
                    "#r1",
                    STANDARD,
                    r#"<ds:KeyInfo><ds:RetrievalMethod URI="http://127.0.0.1:9/k"/></ds:KeyInfo>"#,
                    "",
                ),
            ),
            (
                "an Object",
                signed("#r1", STANDARD, "", "<ds:Object>x</ds:Object>"),
            ),
        ] {
            assert!(check(&xml).is_err(), "{what}");
        }
        // A signature inside Extensions (not on the Response or an Assertion).
        let nested = signed("#r1", STANDARD, "", "")
            .replacen("<ds:Signature>", "<samlp:Extensions><ds:Signature>", 1)
            .replacen("</ds:Signature>", "</ds:Signature></samlp:Extensions>", 1);
        assert!(check(&nested).is_err());
        // UTF-16 (valid UTF-8 bytes, NULs between), a DTD, another declared encoding.
        let utf16: String = signed("#r1", STANDARD, "", "")
            .chars()
            .flat_map(|c| [c, '\0'])
            .collect();
        assert!(check(&utf16).is_err());
        assert!(check("<!DOCTYPE r [<!ENTITY a \"b\">]><r>&a;</r>").is_err());
        assert!(check("<?xml version=\"1.0\" encoding=\"UTF-16\"?><r/>").is_err());
        assert!(check("<?xml version=\"1.0\" encoding=\"utf-8\"?><r/>").is_ok());
    }

    #[test]
    fn elements_are_counted_by_local_name() {
        let xml = "<p:Response><a:Assertion ID=\"1\"/><Assertion><x:AssertionX/></Assertion></p:Response>";
        assert_eq!(count_elements(xml, "Assertion"), 2);
        assert_eq!(count_elements(xml, "Response"), 1);
        assert_eq!(count_elements("<a:EncryptedAssertion>", "Assertion"), 0);
    }

    #[test]
    fn request_ids_are_128_bit_xs_ids() {
        let a = request_id();
        assert_eq!(a.len(), 33);
        assert!(a.starts_with('_'));
        assert_ne!(a, request_id());
    }

    #[test]
    fn metadata_without_a_signing_certificate_is_refused() {
        let xml = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#;
        let e = parse_idp_metadata(xml).expect_err("no certificate");
        assert!(e.contains("no signing certificate"), "{e}");
        assert!(parse_idp_metadata("<!DOCTYPE x [<!ENTITY a \"b\">]><x/>").is_err());
        assert!(parse_idp_metadata("not xml").is_err());
    }

    #[test]
    fn garbage_responses_are_refused_without_panicking() {
        let md = IdpMetadata {
            entity_id: "https://idp.example.com".into(),
            sso: "https://idp.example.com/sso".into(),
            slo: None,
            certs: vec![vec![0x30, 0x00]],
        };
        let (aud, acs) = (["https://sp".to_owned()], ["https://sp/acs".to_owned()]);
        let e = Expected {
            audiences: &aud,
            recipients: &acs,
            request_id: Some("_1"),
            now: Timestamp(1_700_000_000),
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for bad in [
            "%%%".to_owned(),
            b64("<x/>"),
            b64("<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><r>&e;</r>"),
            b64("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"a\"/>"),
        ] {
            assert!(verify_response(&bad, &md, &e).is_err(), "{bad}");
        }
    }
}

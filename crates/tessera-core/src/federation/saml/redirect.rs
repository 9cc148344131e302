//! The HTTP-Redirect binding (SAML Bindings §3.4): the AuthnRequest and logout messages Tessera
//! sends on a URL, signed with its RS256 key, and the identity provider's signed LogoutRequest.

use std::io::Write;
use std::str::FromStr;

use base64::Engine;

use super::{escape, instant, request_id, screened, IdpMetadata, MAX_XML, POST, SUCCESS};
use crate::clock::Timestamp;
use crate::keys::SigningKey;

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
    screened(&xml, "SAML message")?;
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
    (now, skew): (Timestamp, i64),
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
        .is_none_or(|t| (t.timestamp() - now.0).abs() > super::logout_fresh(skew))
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

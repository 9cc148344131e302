//! A Response or bare assertion of a SAML identity provider, verified: signatures in the one
//! SAML shape checked, then xmlsec with the metadata's certificates, the document reduced to
//! what they cover, an encrypted assertion decrypted, and the assertion's conditions.

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use samael::crypto::{
    AllowedSignatureAlgorithm as SigAlg, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use samael::schema::Assertion;
use serde_json::{Map, Value};

use super::xmlenc::{decrypt_assertion, Cover, FAILED};
use super::{escape, screened, IdpMetadata, BEARER, MAX_XML, SUCCESS};
use crate::clock::Timestamp;
use crate::keys::SigningKey;

/// The signature algorithms accepted: SHA-2 RSA and ECDSA (SHA-1 and DSA are not).
const ALGORITHMS: [SigAlg; 6] = [
    SigAlg::RsaSha256,
    SigAlg::RsaSha384,
    SigAlg::RsaSha512,
    SigAlg::EcdsaSha256,
    SigAlg::EcdsaSha384,
    SigAlg::EcdsaSha512,
];

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
    /// Leeway for the provider's clock, in seconds (the `clock_skew` setting).
    pub skew: i64,
    /// The keys an encrypted assertion may be encrypted to (Tessera's RS256 keys).
    pub decrypt_with: &'a [Arc<SigningKey>],
    /// The provider's assertions must come encrypted.
    pub encrypted_only: bool,
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
    screened(&xml, "assertion")?;
    if root_name(&xml) != Some("Assertion") || count_elements(&xml, "Assertion") != 1 {
        return Err("the token is not one SAML assertion".into());
    }
    check_assertion(&signed_assertion(&xml, md)?, md, e, e.now)
}

/// An assertion document that must carry the identity provider's signature, as it covers it.
fn signed_assertion(xml: &str, md: &IdpMetadata) -> Result<Assertion, String> {
    let signed = signed_part(xml, md)?;
    if root_name(&signed) != Some("Assertion") {
        return Err("the signature does not cover the assertion".into());
    }
    read_assertion(&signed)
}

fn read_assertion(xml: &str) -> Result<Assertion, String> {
    Assertion::from_str(xml).map_err(|err| format!("the Assertion cannot be read: {err}"))
}

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// The document as XML parses it: UTF-8 only (a document libxml2 would read as UTF-16 could say
/// something else to it than to the checks here), no DTD, at most 100,000 nodes nested at most
/// 256 deep (roxmltree recurses into elements).
fn parsed(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    screened(xml, "SAML document")?;
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
    screened(&xml, "Response")?;
    // One assertion per Response: a second one is where a signature-wrapping attack hides the
    // assertion it wants read.
    let encrypted = count_elements(&xml, "EncryptedAssertion");
    if count_elements(&xml, "Assertion") + encrypted > 1 {
        return Err("the Response carries more than one assertion".into());
    }
    if e.encrypted_only && encrypted == 0 {
        return Err("the assertion is not encrypted, and this provider's must be".into());
    }
    let assertion = if encrypted == 1 && !response_signed(&xml)? {
        // Nothing vouches for the Response itself: only its encrypted assertion is read, with
        // authenticated encryption, and it must carry the provider's signature inside.
        let doc = parsed(&xml)?;
        let enc = response_parts(&doc)?
            .encrypted
            .ok_or("the Response holds no encrypted assertion of its own")?;
        let (plain, _) = decrypted(enc, e, Cover::Unsigned)?;
        signed_assertion(&plain, md)?
    } else {
        // Only what the identity provider's signature covers is kept; everything below reads that.
        let signed = signed_part(&xml, md).map_err(|w| format!("the Response carries {w}"))?;
        match root_name(&signed) {
            Some("Response") => {
                let doc = parsed(&signed)?;
                let r = response_parts(&doc)?;
                r.check(md, e)?;
                match (r.assertion, r.encrypted) {
                    (Some(a), None) => read_assertion(&standalone(&doc, a)?)?,
                    // The Response's signature covers the ciphertext; a signature inside, if
                    // any, must hold too.
                    (None, Some(enc)) => match decrypted(enc, e, Cover::Signed)? {
                        (plain, true) => signed_assertion(&plain, md)?,
                        (plain, false) => read_assertion(&plain)?,
                    },
                    _ => return Err("the signed Response holds no assertion".into()),
                }
            }
            Some("Assertion") if encrypted == 0 => read_assertion(&signed)?,
            other => {
                return Err(format!(
                    "the signature covers a {other:?}, not a Response or Assertion"
                ))
            }
        }
    };
    check_assertion(&assertion, md, e, e.now)
}

/// Whether the Response (the root) carries a signature of its own.
fn response_signed(xml: &str) -> Result<bool, String> {
    let doc = parsed(xml)?;
    Ok(doc
        .root_element()
        .children()
        .any(|c| is(&c, DSIG, "Signature")))
}

/// A Response's own parts (Core §3.2.2, §3.3.3), read from a parsed document.
struct ResponseParts<'a, 'i> {
    destination: Option<&'a str>,
    in_response_to: Option<&'a str>,
    issuer: Option<&'a str>,
    status: Option<&'a str>,
    assertion: Option<roxmltree::Node<'a, 'i>>,
    encrypted: Option<roxmltree::Node<'a, 'i>>,
}

fn response_parts<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<ResponseParts<'a, 'i>, String> {
    let root = doc.root_element();
    if !is(&root, PROTOCOL, "Response") {
        return Err("the document is not a SAML Response".into());
    }
    let child = |ns: &str, name: &str| -> Result<Option<roxmltree::Node<'a, 'i>>, String> {
        let mut found = root.children().filter(|c| is(c, ns, name));
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("the Response carries more than one {name}"));
        }
        Ok(first)
    };
    let status = child(PROTOCOL, "Status")?
        .and_then(|s| s.children().find(|c| is(c, PROTOCOL, "StatusCode")))
        .and_then(|c| c.attribute("Value"));
    Ok(ResponseParts {
        destination: root.attribute("Destination"),
        in_response_to: root.attribute("InResponseTo"),
        issuer: child(ASSERTION, "Issuer")?.and_then(|i| i.text()),
        status,
        assertion: child(ASSERTION, "Assertion")?,
        encrypted: child(ASSERTION, "EncryptedAssertion")?,
    })
}

impl ResponseParts<'_, '_> {
    /// What a signed Response says of itself (Core §3.2.2, Bindings §3.5.5.2).
    fn check(&self, md: &IdpMetadata, e: &Expected<'_>) -> Result<(), String> {
        if self.status != Some(SUCCESS) {
            return Err(format!("the identity provider answered {:?}", self.status));
        }
        // Bindings §3.5.5.2: a signed message names its destination.
        if !self
            .destination
            .is_some_and(|d| e.recipients.iter().any(|x| x == d))
        {
            return Err("the Response's Destination is not Tessera's ACS".into());
        }
        if self.in_response_to != e.request_id {
            return Err("the Response does not answer Tessera's request".into());
        }
        if self.issuer.is_some_and(|i| i.trim() != md.entity_id) {
            return Err("the Response's Issuer is not the identity provider".into());
        }
        Ok(())
    }
}

/// An element of `doc` as a document of its own: its text, with the namespace declarations it
/// inherited added to its start tag.
fn standalone(doc: &roxmltree::Document<'_>, n: roxmltree::Node<'_, '_>) -> Result<String, String> {
    declare_namespaces(&doc.input_text()[n.range()], n)
}

/// `fragment` (one element) with the namespaces in scope at `at` declared on its start tag,
/// where it does not declare the prefix itself; an element's text out of its document (or
/// decrypted from it) means the same as in it.
fn declare_namespaces(fragment: &str, at: roxmltree::Node<'_, '_>) -> Result<String, String> {
    let bad = || "the assertion is not an XML element".to_owned();
    let body = fragment.trim_start();
    let rest = body.strip_prefix('<').ok_or_else(bad)?;
    if rest.starts_with(['?', '!', '/']) {
        return Err(bad());
    }
    let name_end = rest
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .ok_or_else(bad)?;
    // The start tag's attributes, read lexically (quoted values may hold anything but their quote).
    let mut declared = Vec::new();
    let mut i = name_end;
    let bytes = rest.as_bytes();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'>' | b'/') => break,
            None => return Err(bad()),
            _ => {}
        }
        let eq = rest[i..].find('=').ok_or_else(bad)? + i;
        declared.push(rest[i..eq].trim().to_owned());
        let open = rest[eq + 1..].find(['"', '\'']).ok_or_else(bad)? + eq + 1;
        let quote = bytes[open] as char;
        let close = rest[open + 1..].find(quote).ok_or_else(bad)? + open + 1;
        i = close + 1;
    }
    let mut extra = String::new();
    for ns in at.namespaces() {
        let attr = match ns.name() {
            Some("xml") => continue,
            Some(p) => format!("xmlns:{p}"),
            None => "xmlns".to_owned(),
        };
        if !declared.contains(&attr) {
            extra.push_str(&format!(" {attr}=\"{}\"", escape(ns.uri())));
        }
    }
    let at_name = fragment.len() - body.len() + 1 + name_end;
    Ok(format!(
        "{}{extra}{}",
        &fragment[..at_name],
        &fragment[at_name..]
    ))
}

/// The assertion of an `EncryptedAssertion`, decrypted (SAML Core §2.3.4), as a document of its
/// own; and whether it carries a signature of its own.
fn decrypted(
    enc: roxmltree::Node<'_, '_>,
    e: &Expected<'_>,
    cover: Cover,
) -> Result<(String, bool), String> {
    let plain = decrypt_assertion(enc, e.decrypt_with, cover, e.audiences)?;
    // Whatever is wrong with the plaintext is the decryption's one answer too.
    let xml = declare_namespaces(&plain, enc).map_err(|_| FAILED)?;
    let doc = parsed(&xml).map_err(|_| FAILED)?;
    let root = doc.root_element();
    if !is(&root, ASSERTION, "Assertion")
        || count_elements(&xml, "Assertion") != 1
        || count_elements(&xml, "EncryptedAssertion") != 0
        || xml.contains("<!--")
    {
        return Err(FAILED.into());
    }
    let signed = root.children().any(|c| is(&c, DSIG, "Signature"));
    Ok((xml, signed))
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
    let skew = e.skew;
    if a.issue_instant.timestamp() > now.0 + skew {
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
                    .is_some_and(|t| t.timestamp() + skew > now.0)
                && d.not_before
                    .as_ref()
                    .is_none_or(|t| t.timestamp() - skew <= now.0)
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
        .is_some_and(|t| t.timestamp() - skew > now.0)
    {
        return Err("the assertion is not valid yet".into());
    }
    let mut until = confirmed
        .not_on_or_after
        .as_ref()
        .map_or(now, |t| Timestamp(t.timestamp()));
    if let Some(t) = &conditions.not_on_or_after {
        if t.timestamp() + skew <= now.0 {
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
    fn an_element_out_of_its_document_keeps_its_inherited_namespaces() {
        let xml = r#"<p:Response xmlns:p="urn:p" xmlns:saml="urn:a" xmlns="urn:d"><saml:Assertion xmlns:p="urn:p" a='x>"y'><saml:NameID>n</saml:NameID></saml:Assertion></p:Response>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let a = doc.root_element().first_element_child().unwrap();
        let out = standalone(&doc, a).unwrap();
        assert!(
            out.starts_with(r#"<saml:Assertion xmlns:saml="urn:a" xmlns="urn:d" xmlns:p="urn:p""#)
                || out.starts_with(
                    r#"<saml:Assertion xmlns="urn:d" xmlns:saml="urn:a" xmlns:p="urn:p""#
                ),
            "{out}"
        );
        let again = roxmltree::Document::parse(&out).expect("well-formed, no duplicate xmlns:p");
        assert_eq!(again.root_element().tag_name().namespace(), Some("urn:a"));
        assert_eq!(again.root_element().attribute("a"), Some("x>\"y"));
        for bad in [
            "",
            "text",
            "<?xml version='1.0'?><a/>",
            "<!-- c --><a/>",
            "<a b='1",
        ] {
            assert!(declare_namespaces(bad, a).is_err(), "{bad}");
        }
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
            skew: 300,
            decrypt_with: &[],
            encrypted_only: false,
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

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

mod redirect;
mod verify;
mod xmlenc;

pub use redirect::{
    authn_request_url, logout_request_url, logout_response_url, verify_logout_request, Sp,
};
pub use verify::{verify_assertion, verify_response, Expected, Verified};

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use samael::metadata::EntityDescriptor;
use serde_json::{Map, Value};

use super::{IdentityProvider, IdpProtocol};
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

/// How far a LogoutRequest's IssueInstant may be from now, either way: five minutes and the
/// configured clock skew.
pub fn logout_fresh(skew: i64) -> i64 {
    300 + skew
}

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

pub use super::metadata::IdpMetadata;

/// How deep elements may nest in a SAML document (libxml2's own limit): SAML needs a dozen
/// levels, and XML readers that recurse run out of stack on thousands.
const MAX_DEPTH: usize = 256;

/// What no SAML document has, checked before any XML reader sees it: a DOCTYPE (and so any
/// entity declaration), or elements nested deeper than [`MAX_DEPTH`]. `what` names the
/// document in the reason.
fn screened(xml: &str, what: &str) -> Result<(), String> {
    if xml.to_ascii_uppercase().contains("<!DOCTYPE") {
        return Err(format!("the {what} carries a DOCTYPE"));
    }
    if nesting(xml) > MAX_DEPTH {
        return Err(format!(
            "the {what} nests elements deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(())
}

/// The deepest element nesting of `xml`, read lexically (comments, CDATA sections, processing
/// instructions and quoted attribute values skipped); a malformed document may count deeper
/// than it is, never shallower.
fn nesting(xml: &str) -> usize {
    let b = xml.as_bytes();
    let skip_to = |from: usize, end: &[u8]| {
        b[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(b.len(), |at| from + at + end.len())
    };
    let (mut i, mut depth, mut deepest) = (0, 0usize, 0);
    while let Some(at) = b[i..].iter().position(|&c| c == b'<') {
        i += at + 1;
        let rest = &b[i..];
        if rest.starts_with(b"!--") {
            i = skip_to(i, b"-->");
        } else if rest.starts_with(b"![CDATA[") {
            i = skip_to(i, b"]]>");
        } else if rest.starts_with(b"?") {
            i = skip_to(i, b"?>");
        } else if rest.starts_with(b"!") {
            i = skip_to(i, b">");
        } else if rest.starts_with(b"/") {
            depth = depth.saturating_sub(1);
            i = skip_to(i, b">");
        } else {
            // A start tag: to its `>`, past quoted values; `/>` closes it at once.
            let mut quote = None;
            let mut empty = false;
            while i < b.len() {
                let c = b[i];
                i += 1;
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => break,
                    None => {}
                }
                empty = quote.is_none() && c == b'/';
            }
            if !empty {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
    }
    deepest
}

/// An identity provider's metadata (SAML Metadata §2.4.3): its entity ID, the Redirect-binding
/// sign-in service and its signing certificates, without which there is nothing to verify.
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, String> {
    if xml.len() > MAX_XML {
        return Err("the metadata is larger than 512 KiB".into());
    }
    screened(xml, "metadata")?;
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
    certs: &[String],
    encryption: bool,
) -> String {
    let format = name_id_format
        .map(|f| format!("<md:NameIDFormat>{}</md:NameIDFormat>", escape(f)))
        .unwrap_or_default();
    let key = |usage: &str, c: &String, methods: &str| {
        format!(
            r#"<md:KeyDescriptor use="{usage}"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{methods}</md:KeyDescriptor>"#,
            escape(c)
        )
    };
    let mut keys: String = certs.iter().map(|c| key("signing", c, "")).collect();
    // Metadata §2.4.1.1: what Tessera decrypts, preferred first (xmlenc-core1 §5.2, §5.5.2).
    if encryption {
        let methods: String = [
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        ]
        .iter()
        .map(|m| format!(r#"<md:EncryptionMethod Algorithm="{m}"/>"#))
        .collect();
        keys.extend(certs.iter().map(|c| key("encryption", c, &methods)));
    }
    let signed = if certs.is_empty() { "false" } else { "true" };
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

/// SAML has no `email_verified`: a provider trusted for email (`link_by_email`) vouches for the
/// address it maps to `email`, as its administrator decided; any other's address is unverified.
pub(crate) fn trust_email(idp: &IdentityProvider, p: &mut super::mapping::Profile) {
    p.email_verified = idp.link_by_email && p.email.is_some();
    if p.email.is_some() {
        p.claims
            .insert("email_verified".into(), Value::Bool(p.email_verified));
    }
}

impl Provider {
    /// Tessera's entity ID towards the identity provider `idp`: its metadata URL.
    pub fn saml_entity_id(&self, idp: &str) -> String {
        self.settings
            .endpoint(&format!("/saml/metadata/{}", super::oidc::urlencode(idp)))
    }

    /// Tessera's RSA keys towards SAML providers, in its metadata: every RS256 key still
    /// published (one signing now, and those rotated in or out), so a provider that caches the
    /// metadata verifies and encrypts across a rotation.
    fn saml_keys(&self, now: Timestamp) -> Vec<Arc<SigningKey>> {
        self.keys()
            .all()
            .filter(|k| k.alg == Alg::RS256 && k.published_at(now))
            .cloned()
            .collect()
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
        let certs: Vec<String> = self
            .saml_keys(now)
            .iter()
            .filter_map(|k| k.jwk()["x5c"][0].as_str().map(str::to_owned))
            .collect();
        Some(sp_metadata(
            &self.saml_entity_id(&i.name),
            &self.saml_acs(&i.name),
            &self.saml_slo(&i.name),
            i.name_id_format.as_deref(),
            &certs,
            i.encrypted_assertions,
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
        if let Some(m) =
            self.saml_metadata_cache
                .fresh(&idp.name, idp.updated_at, now, METADATA_FRESH)
        {
            return Ok(m);
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
                max_bytes: None,
                json: None,
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
            .put(&idp.name, idp.updated_at, now, m.clone());
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
        let skew = self.settings.clock_skew;
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
                    skew,
                    decrypt_with: &[],
                    encrypted_only: false,
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
        let until = Timestamp(v.not_on_or_after.0.max(now.0));
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
        let (m, keys, encrypted_only) = (md.clone(), self.saml_keys(now), idp.encrypted_assertions);
        let skew = self.settings.clock_skew;
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
                    skew,
                    decrypt_with: &keys,
                    encrypted_only,
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
    fn nesting_is_counted_past_comments_quotes_and_empty_elements() {
        assert_eq!(nesting("<a><b/><c x='>' y=\"/>\"><d></d></c></a>"), 3);
        assert_eq!(
            nesting("<?xml version='1.0'?><!-- <x><x> --><a><![CDATA[<y><y>]]></a>"),
            1
        );
        assert_eq!(nesting(&"<x>".repeat(5000)), 5000);
        assert!(screened(&"<x>".repeat(MAX_DEPTH + 1), "Response").is_err());
        assert!(screened(
            &format!("{}{}", "<x>".repeat(MAX_DEPTH), "</x>".repeat(MAX_DEPTH)),
            "Response"
        )
        .is_ok());
        assert!(screened("<!doctype r><r/>", "Response").is_err());
        assert_eq!(nesting("<a b='unterminated"), 1);
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
}

//! What an upstream says about a user, turned into Tessera's terms by the identity provider's
//! mappings (seed 001 "propagated to the attribute set"): a username for a new user, standard
//! claims, custom attributes and groups; and its `amr`/`acr` values mapped onto RFC 8176 values,
//! never copied. A value of the wrong type or name is left out, never stored as it came; the
//! administrators' group is never given by an upstream.

use serde_json::{Map, Value};

use super::{IdentityProvider, IdpProtocol, Mapping};
use crate::names::ADMIN_GROUP;

/// RFC 8176 §2 (the IANA "Authentication Method Reference Values" registry), plus `fed`.
pub const AMR_VALUES: [&str; 22] = [
    "face", "fed", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd",
    "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia",
];

/// The mappings an identity provider starts with when its administrator names none.
pub fn default_mappings(protocol: IdpProtocol) -> Vec<Mapping> {
    let pairs: &[(&str, &str)] = match protocol {
        IdpProtocol::Oidc => &[
            ("preferred_username", "username"),
            ("email", "email"),
            ("name", "name"),
            ("given_name", "given_name"),
            ("family_name", "family_name"),
        ],
        IdpProtocol::Oauth2 => &[("login", "username"), ("email", "email"), ("name", "name")],
        // The common attribute names (eduPerson, the LDAP OIDs, and the short forms).
        IdpProtocol::Saml => &[
            ("uid", "username"),
            ("urn:oid:0.9.2342.19200300.100.1.1", "username"),
            ("email", "email"),
            ("mail", "email"),
            ("urn:oid:0.9.2342.19200300.100.1.3", "email"),
            ("displayName", "name"),
            ("urn:oid:2.16.840.1.113730.3.1.241", "name"),
            ("givenName", "given_name"),
            ("urn:oid:2.5.4.42", "given_name"),
            ("sn", "family_name"),
            ("surname", "family_name"),
            ("urn:oid:2.5.4.4", "family_name"),
        ],
    };
    pairs
        .iter()
        .map(|(c, t)| Mapping {
            claim: (*c).to_owned(),
            to: (*t).to_owned(),
        })
        .collect()
}

/// A mapping's target, checked when the identity provider is written.
pub fn check_target(to: &str) -> Result<(), String> {
    if to == "username" || to == "groups" {
        return Ok(());
    }
    if let Some(name) = to.strip_prefix("attributes.") {
        let mut one = Map::new();
        one.insert(name.to_owned(), Value::Null);
        return crate::admin::check_attribute_names(&one);
    }
    if to == "email_verified" {
        return Err(
            "email_verified is taken from the upstream only when it is trusted for email (link_by_email)"
                .into(),
        );
    }
    if to == "phone_number_verified" {
        return Err("a phone number's verification is not taken from an upstream".into());
    }
    if crate::admin::standard_claim(to) {
        return Ok(());
    }
    Err(format!(
        "{to} is not username, groups, an OpenID Connect standard claim or attributes.{{name}}"
    ))
}

/// The user as the upstream describes them, mapped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// The user's subject at the upstream.
    pub subject: String,
    /// The username a new user would get (before it is made unique).
    pub username: Option<String>,
    pub email: Option<String>,
    /// The upstream says the email is verified, and is trusted for email.
    pub email_verified: bool,
    pub claims: Map<String, Value>,
    pub attributes: Map<String, Value>,
    pub groups: Vec<String>,
    /// RFC 8176 values the upstream's `amr`/`acr` map to, `fed` first.
    pub amr: Vec<String>,
}

/// An email address in its one form (trimmed, the domain in lower case); `None` for anything
/// that is not one address (spaces or control characters inside, not one `@`, too long).
pub fn normal_email(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.split_once('@')?;
    let fits = !local.is_empty()
        && !domain.is_empty()
        && s.len() <= 254
        && !domain.contains('@')
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control());
    fits.then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// A claim value as one string: strings as they are, numbers in decimal.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Maps the upstream's claims (the ID token's, with the userinfo answer's over them).
pub fn profile(idp: &IdentityProvider, upstream: &Map<String, Value>) -> Result<Profile, String> {
    let subject = upstream
        .get(&idp.subject_claim)
        .and_then(as_text)
        .filter(|s| s.len() <= 255)
        .ok_or_else(|| format!("the upstream named no {} for the user", idp.subject_claim))?;
    let mut p = Profile {
        subject,
        amr: vec!["fed".to_owned()],
        ..Profile::default()
    };
    for m in &idp.mappings {
        let Some(v) = upstream.get(&m.claim).filter(|v| !v.is_null()) else {
            continue;
        };
        apply(&mut p, m, v);
    }
    p.email = p
        .claims
        .get("email")
        .and_then(Value::as_str)
        .and_then(normal_email);
    match &p.email {
        Some(e) => p.claims.insert("email".into(), Value::String(e.clone())),
        None => p.claims.remove("email"),
    };
    // The upstream's email_verified speaks of its own email claim: an address mapped from
    // another claim (a upn, a username) is not verified by it.
    let own = upstream
        .get("email")
        .and_then(Value::as_str)
        .and_then(normal_email);
    p.email_verified = idp.link_by_email
        && p.email.is_some()
        && p.email == own
        && upstream.get("email_verified") == Some(&true.into());
    if p.email.is_some() {
        p.claims
            .insert("email_verified".into(), Value::Bool(p.email_verified));
    }
    let mut said: Vec<&str> = upstream
        .get("amr")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    said.extend(upstream.get("acr").and_then(Value::as_str));
    for v in said {
        if let Some(mapped) = idp.amr_map.get(v) {
            if !p.amr.contains(mapped) {
                p.amr.push(mapped.clone());
            }
        }
    }
    Ok(p)
}

fn apply(p: &mut Profile, m: &Mapping, v: &Value) {
    match m.to.as_str() {
        "username" => p.username = as_text(v),
        "groups" => {
            let values: Vec<String> = match v {
                Value::Array(a) => a.iter().filter_map(as_text).collect(),
                other => as_text(other).into_iter().collect(),
            };
            for g in values {
                match crate::names::group(&g) {
                    Ok(g) if g != ADMIN_GROUP && !p.groups.contains(&g) => p.groups.push(g),
                    _ => tracing::info!(claim = %m.claim, "an upstream group was left out"),
                }
            }
        }
        to => {
            let mut one = Map::new();
            match to.strip_prefix("attributes.") {
                Some(name) => {
                    one.insert(name.to_owned(), v.clone());
                    if crate::admin::check_attribute_names(&one).is_ok()
                        && v.to_string().len() <= 4096
                    {
                        p.attributes.insert(name.to_owned(), v.clone());
                        return;
                    }
                }
                None => {
                    one.insert(to.to_owned(), v.clone());
                    if crate::admin::check_claim_values(&one).is_ok() {
                        p.claims.insert(to.to_owned(), v.clone());
                        return;
                    }
                }
            }
            tracing::info!(claim = %m.claim, to, "an upstream value of the wrong form was left out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use serde_json::json;

    fn idp(trusted: bool) -> IdentityProvider {
        let mut mappings = default_mappings(IdpProtocol::Oidc);
        mappings.push(Mapping {
            claim: "groups".into(),
            to: "groups".into(),
        });
        mappings.push(Mapping {
            claim: "dept".into(),
            to: "attributes.department".into(),
        });
        IdentityProvider {
            name: "corp".into(),
            display_name: String::new(),
            enabled: true,
            protocol: IdpProtocol::Oidc,
            issuer: Some("https://idp.example.com".into()),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            client_id: "tessera".into(),
            secret_ciphertext: None,
            auth_method: super::super::UpstreamAuth::None,
            scopes: vec!["openid".into()],
            use_userinfo: false,
            subject_claim: "sub".into(),
            mappings,
            jit: true,
            link_by_email: trusted,
            domains: vec![],
            amr_map: [
                ("pwd".to_owned(), "pwd".to_owned()),
                ("urn:x:mfa".into(), "mfa".into()),
            ]
            .into_iter()
            .collect(),
            upstream_logout: true,
            metadata_url: None,
            metadata_xml: None,
            name_id_format: None,
            encrypted_assertions: false,
            exchange_audiences: vec![],
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn claims_are_mapped_by_name_and_type_and_the_admin_group_is_never_given() {
        let upstream = json!({
            "sub": "u-1", "preferred_username": "ann", "email": "ann@example.com",
            "email_verified": true, "name": 42, "given_name": "Ann",
            "groups": ["staff", "tessera-admins", "tessera\u{2010}admins", " bad"],
            "dept": "R&D", "amr": ["pwd", "hwk"], "acr": "urn:x:mfa"
        });
        let p = profile(&idp(false), upstream.as_object().unwrap()).unwrap();
        assert_eq!(p.subject, "u-1");
        assert_eq!(p.username.as_deref(), Some("ann"));
        assert_eq!(p.claims["given_name"], "Ann");
        // A number is not a name: left out, not stored.
        assert!(!p.claims.contains_key("name"));
        assert_eq!(p.groups, ["staff"]);
        assert_eq!(p.attributes["department"], "R&D");
        // Not trusted for email: the address is kept, its verification is not.
        assert_eq!(p.claims["email_verified"], false);
        assert!(!p.email_verified);
        // Only mapped amr/acr values, never copied: hwk has no mapping.
        assert_eq!(p.amr, ["fed", "pwd", "mfa"]);
        let trusted = profile(&idp(true), upstream.as_object().unwrap()).unwrap();
        assert!(trusted.email_verified);
        // No subject, no profile.
        assert!(profile(&idp(true), json!({"email": "x@y"}).as_object().unwrap()).is_err());
    }

    #[test]
    fn targets_are_checked() {
        assert!(check_target("username").is_ok());
        assert!(check_target("email").is_ok());
        assert!(check_target("attributes.department").is_ok());
        assert!(check_target("attributes.email").is_err());
        assert!(check_target("email_verified").is_err());
        assert!(check_target("phone_number_verified").is_err());
        assert!(check_target("sub").is_err());
    }

    /// The upstream's email_verified speaks of its own email claim: an address mapped from
    /// another claim (a upn) is kept, never as verified.
    #[test]
    fn an_address_from_another_claim_is_not_verified() {
        let mut trusted = idp(true);
        trusted.mappings.retain(|m| m.to != "email");
        trusted.mappings.push(Mapping {
            claim: "upn".into(),
            to: "email".into(),
        });
        let upstream = json!({"sub": "u-1", "email": "me@attacker.example",
            "email_verified": true, "upn": "victim@example.com"});
        let p = profile(&trusted, upstream.as_object().unwrap()).unwrap();
        assert_eq!(p.email.as_deref(), Some("victim@example.com"));
        assert!(!p.email_verified);
        assert_eq!(p.claims["email_verified"], false);
        // The same address in both: the upstream verified it.
        let same = json!({"sub": "u-1", "email": "victim@example.com",
            "email_verified": true, "upn": "victim@EXAMPLE.com"});
        assert!(
            profile(&trusted, same.as_object().unwrap())
                .unwrap()
                .email_verified
        );
    }

    /// Addresses are compared in one form: trimmed, the domain in lower case; anything else is
    /// left out.
    #[test]
    fn emails_have_one_form() {
        assert_eq!(
            normal_email(" Ann@Example.COM\n").as_deref(),
            Some("Ann@example.com")
        );
        for bad in [
            "ann",
            "@example.com",
            "ann@",
            "a b@example.com",
            "a@b@c",
            "a\u{0}@b.c",
        ] {
            assert_eq!(normal_email(bad), None, "{bad:?}");
        }
        let upstream =
            json!({"sub": "u-1", "email": "admin@example.com\n", "email_verified": true});
        let p = profile(&idp(true), upstream.as_object().unwrap()).unwrap();
        assert_eq!(p.claims["email"], "admin@example.com");
        let upstream = json!({"sub": "u-1", "email": "not an address", "email_verified": true});
        let p = profile(&idp(true), upstream.as_object().unwrap()).unwrap();
        assert_eq!(p.email, None);
        assert!(!p.claims.contains_key("email") && !p.claims.contains_key("email_verified"));
    }
}

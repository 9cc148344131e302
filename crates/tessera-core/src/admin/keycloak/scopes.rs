//! Keycloak client scopes as Tessera scopes, their protocol mappers as the scopes' claims, and
//! their audience mappers as APIs.

use super::clients::KEYCLOAK_SCOPES;
use super::realm::{ClientScope, Mapper, Realm};
use super::Report;
use crate::admin::rules;
use crate::admin::{ApiSpec, ScopeSpec};
use crate::model::OPENID_SCOPES;

/// The realm's own client scopes, and the APIs their audience mappers name.
pub(super) fn scopes(realm: &Realm, report: &mut Report) -> (Vec<ScopeSpec>, Vec<ApiSpec>) {
    let (mut scopes, mut apis): (Vec<ScopeSpec>, Vec<ApiSpec>) = (Vec::new(), Vec::new());
    for s in &realm.client_scopes {
        let at = format!("clientScopes[{}]", s.name);
        if s.protocol.as_deref() == Some("saml") {
            report.not_imported(
                &at,
                "a SAML client scope: Tessera issues no SAML assertions",
            );
            continue;
        }
        if OPENID_SCOPES.contains(&s.name.as_str()) {
            report.not_imported(&at, "an OpenID Connect scope, which Tessera defines: its standard claims are released as OIDC Core §5.4 says");
            continue;
        }
        if KEYCLOAK_SCOPES.contains(&s.name.as_str()) {
            report.not_imported(&at, keycloak_scope(&s.name));
            continue;
        }
        let mut spec = ScopeSpec {
            name: s.name.clone(),
            display_name: display_name(s),
            description: s.description.clone().unwrap_or_default(),
            default: realm.default_default_client_scopes.contains(&s.name),
            discoverable: Some(true),
            claims: Default::default(),
        };
        for m in &s.protocol_mappers {
            mapper(
                m,
                &format!("{at}.protocolMappers[{}]", m.name),
                &mut spec,
                &mut apis,
                report,
            );
        }
        scopes.push(spec);
    }
    apis.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    (scopes, apis)
}

/// Why one of Keycloak's own scopes is not carried over.
fn keycloak_scope(name: &str) -> &'static str {
    match name {
        "roles" => "Keycloak's role claims (realm_access, resource_access): Tessera carries realm roles over as groups, released by a scope claim mapped to the groups attribute",
        "web-origins" => "Keycloak's allowed-origins claim: Tessera answers CORS from each application's allowed_origins",
        "acr" => "Tessera puts acr in every ID token (from the application's authentication scheme)",
        "basic" => "sub and auth_time: Tessera puts them in every ID token",
        "microprofile-jwt" => "the MicroProfile JWT claims (upn, groups from roles) are not offered",
        _ => "Keycloak's own machinery, not a scope an application asks for",
    }
}

/// The consent text, unless it is one of Keycloak's message keys (`${…}`).
fn display_name(s: &ClientScope) -> String {
    s.attributes
        .get("consent.screen.text")
        .filter(|t| !t.starts_with("${"))
        .cloned()
        .unwrap_or_default()
}

/// One protocol mapper: a claim of the scope, an API, or a finding.
fn mapper(
    m: &Mapper,
    at: &str,
    spec: &mut ScopeSpec,
    apis: &mut Vec<ApiSpec>,
    report: &mut Report,
) {
    let claim = m.config("claim.name");
    let from = match m.protocol_mapper.as_str() {
        "oidc-usermodel-attribute-mapper" => m.config("user.attribute").map(attribute_of),
        "oidc-usermodel-property-mapper" => m.config("user.attribute").map(attribute_of),
        "oidc-group-membership-mapper" => {
            if m.config("full.path") == Some("true") {
                report.changed(at, "full.path: Tessera releases group names as the import names them, not Keycloak's paths");
            }
            Some("groups".to_owned())
        }
        "oidc-audience-mapper" => {
            audience(m, at, &spec.name, apis, report);
            return;
        }
        "oidc-hardcoded-claim-mapper" => {
            report.dropped(at, "a hardcoded claim: Tessera releases claims from user attributes; give every user the attribute instead");
            return;
        }
        "oidc-usermodel-realm-role-mapper" | "oidc-usermodel-client-role-mapper" => {
            report.dropped(
                at,
                "a role claim: realm roles become groups; map a claim to the groups attribute",
            );
            return;
        }
        other if other.contains("script") => {
            report.dropped(at, "a script mapper: Tessera runs no scripts");
            return;
        }
        other => {
            report.dropped(at, format!("{other}: no equivalent"));
            return;
        }
    };
    let (Some(claim), Some(from)) = (claim, from) else {
        report.dropped(at, "no claim.name or user.attribute");
        return;
    };
    if claim.contains('.') {
        report.dropped(
            at,
            format!(
                "{claim}: a nested claim (Keycloak nests at dots); Tessera's claims are top-level"
            ),
        );
        return;
    }
    let checked = rules::claim_name("claims", claim)
        .and_then(|c| rules::attribute_name("claims", &from).map(|a| (c, a)));
    match checked {
        Ok((claim, from)) => {
            spec.claims.insert(claim, from);
        }
        Err(e) => report.dropped(at, e.to_string()),
    }
}

/// A user property of Keycloak by the name Tessera reads it.
fn attribute_of(property: &str) -> String {
    match property {
        "firstName" => "given_name",
        "lastName" => "family_name",
        "emailVerified" => "email_verified",
        other => other,
    }
    .to_owned()
}

/// An audience mapper: the audience becomes an API, and the scope one of its scopes.
fn audience(m: &Mapper, at: &str, scope: &str, apis: &mut Vec<ApiSpec>, report: &mut Report) {
    let Some(aud) = m
        .config("included.custom.audience")
        .or(m.config("included.client.audience"))
    else {
        report.dropped(at, "an audience mapper without an audience");
        return;
    };
    if let Err(why) = crate::names::api_identifier(aud) {
        report.dropped(
            at,
            format!(
                "audience {aud}: an API identifier {why} (RFC 8707); declare the API under its URL"
            ),
        );
        return;
    }
    match apis.iter_mut().find(|a| a.identifier == aud) {
        Some(api) => api.scopes.push(scope.to_owned()),
        None => apis.push(ApiSpec {
            identifier: aud.to_owned(),
            name: aud.to_owned(),
            scopes: vec![scope.to_owned()],
        }),
    }
}

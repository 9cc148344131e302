//! Keycloak identity brokering: its OpenID Connect providers as Tessera's upstream identity
//! providers; SAML providers with a metadata URL; the rest reported.

use super::realm::{KcIdp, Realm};
use super::Report;
use crate::admin::IdpSpec;
use crate::federation::{IdpProtocol, UpstreamAuth};

pub(super) fn idps(realm: &Realm, report: &mut Report) -> Vec<IdpSpec> {
    let mut out = Vec::new();
    for i in &realm.identity_providers {
        let at = format!("identityProviders[{}]", i.alias);
        let spec = match i.provider_id.as_str() {
            "oidc" | "keycloak-oidc" => oidc(i, &at, report),
            "saml" => saml(i, &at, report),
            other => {
                report.not_imported(&at, format!("{other}: a social provider of Keycloak's; declare it as an OpenID Connect (issuer) or OAuth 2.0 provider"));
                None
            }
        };
        out.extend(spec);
    }
    for (n, m) in realm.identity_provider_mappers.iter().enumerate() {
        let name = m["name"].as_str().unwrap_or("?");
        report.dropped(
            &format!("identityProviderMappers[{n}]"),
            format!("{name}: Tessera's providers map claims with mappings (claim to username, groups, a standard claim or attributes.*); set them on the provider"),
        );
    }
    out
}

fn base(i: &KcIdp) -> IdpSpec {
    IdpSpec {
        name: i.alias.to_lowercase(),
        display_name: i.display_name.clone().unwrap_or_default(),
        enabled: i.enabled,
        link_by_email: i.trust_email,
        ..IdpSpec::default()
    }
}

fn oidc(i: &KcIdp, at: &str, report: &mut Report) -> Option<IdpSpec> {
    let mut spec = base(i);
    spec.protocol = IdpProtocol::Oidc;
    spec.issuer = i.config("issuer").map(str::to_owned);
    if spec.issuer.is_none() {
        // Without an issuer there is no discovery and no ID token check: OAuth 2.0 with userinfo.
        spec.protocol = IdpProtocol::Oauth2;
        spec.authorization_endpoint = i.config("authorizationUrl").map(str::to_owned);
        spec.token_endpoint = i.config("tokenUrl").map(str::to_owned);
        spec.userinfo_endpoint = i.config("userInfoUrl").map(str::to_owned);
        report.changed(
            at,
            "no issuer: imported as an OAuth 2.0 provider read through its userinfo endpoint",
        );
    }
    spec.client_id = i.config("clientId").unwrap_or_default().to_owned();
    spec.auth_method = match i.config("clientAuthMethod") {
        Some("client_secret_post") => UpstreamAuth::ClientSecretPost,
        Some("private_key_jwt") => UpstreamAuth::PrivateKeyJwt,
        Some("client_secret_jwt") => {
            report.changed(&format!("{at}.config.clientAuthMethod"), "client_secret_jwt: Tessera authenticates upstream with client_secret_basic, client_secret_post or private_key_jwt; client_secret_basic is used");
            UpstreamAuth::ClientSecretBasic
        }
        _ => UpstreamAuth::ClientSecretBasic,
    };
    match i.config("clientSecret") {
        Some(s) if s.starts_with("${vault.") => report.changed(
            &format!("{at}.config.clientSecret"),
            "kept in Keycloak's vault: give the secret in the file (client_secret) before applying",
        ),
        Some("**********") => report.changed(
            &format!("{at}.config.clientSecret"),
            "masked in this export: give the secret in the file (client_secret) before applying",
        ),
        Some(s) => spec.client_secret = Some(s.to_owned()),
        None => {}
    }
    if let Some(scopes) = i.config("defaultScope") {
        spec.scopes = Some(scopes.split_whitespace().map(str::to_owned).collect());
    }
    Some(spec)
}

fn saml(i: &KcIdp, at: &str, report: &mut Report) -> Option<IdpSpec> {
    let Some(metadata) = i.config("metadataDescriptorUrl") else {
        report.not_imported(at, "a SAML provider without a metadata URL (metadataDescriptorUrl): Tessera reads a SAML provider from its metadata; declare it with metadata_url or metadata_xml");
        return None;
    };
    let mut spec = base(i);
    spec.protocol = IdpProtocol::Saml;
    spec.metadata_url = Some(metadata.to_owned());
    spec.name_id_format = i.config("nameIDPolicyFormat").map(str::to_owned);
    Some(spec)
}

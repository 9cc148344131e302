//! Keycloak clients as Tessera applications: type, grants, redirect and logout URIs, origins,
//! client authentication and secret, PKCE, lifetimes and scopes; what has no equivalent is
//! reported.

use super::realm::{KcClient, Realm};
use super::Report;
use crate::admin::ClientSpec;
use crate::model::{AuthMethod, ClientType, ConsentMode, GrantType};

/// The clients Keycloak makes in every realm: Tessera has its own account page and Portal.
const BUILT_IN: [&str; 6] = [
    "account",
    "account-console",
    "admin-cli",
    "broker",
    "realm-management",
    "security-admin-console",
];

/// Keycloak's client scopes that are its own machinery, not scopes an application asks for.
pub(super) const KEYCLOAK_SCOPES: [&str; 7] = [
    "roles",
    "web-origins",
    "acr",
    "basic",
    "microprofile-jwt",
    "role_list",
    "saml_organization",
];

/// Keycloak's stand-in for a secret the export does not show (the admin console's export).
const MASKED: &str = "**********";

/// Every client of the realm that is an application, as a spec; `api_of_scope` gives the APIs
/// (audiences) a Tessera scope is for, so that an application with the scope may address them.
pub(super) fn clients(
    realm: &Realm,
    api_of_scope: &dyn Fn(&str) -> Option<String>,
    scopes: &[String],
    report: &mut Report,
) -> Vec<ClientSpec> {
    let mut out = Vec::new();
    for c in &realm.clients {
        let at = format!("clients[{}]", c.client_id);
        if BUILT_IN.contains(&c.client_id.as_str())
            || c.client_id.ends_with("-realm") && realm.realm == "master"
        {
            report.not_imported(&at, "Keycloak's own client: Tessera has its own account page (/account) and Admin Portal (/admin)");
            continue;
        }
        if c.protocol.as_deref() == Some("saml") {
            report.not_imported(&at, "a SAML service provider: Tessera is an OpenID Provider and does not issue SAML assertions");
            continue;
        }
        if c.bearer_only {
            report.not_imported(&at, "bearer-only: a resource server, which Tessera declares as an API (apis:), not an application; audience mappers naming it become APIs");
            continue;
        }
        if let Some(spec) = client(c, &at, api_of_scope, scopes, realm, report) {
            out.push(spec);
        }
    }
    out
}

fn client(
    c: &KcClient,
    at: &str,
    api_of_scope: &dyn Fn(&str) -> Option<String>,
    scopes: &[String],
    realm: &Realm,
    report: &mut Report,
) -> Option<ClientSpec> {
    let standard = c.standard_flow_enabled.unwrap_or(true);
    let redirects = redirect_uris(c, at, report);
    let ty = if c.public_client {
        let native = redirects.iter().any(|u| {
            !u.starts_with("https://")
                || u.starts_with("http://localhost")
                || u.starts_with("http://127.0.0.1")
        });
        if native {
            ClientType::Native
        } else {
            ClientType::Spa
        }
    } else if standard || c.implicit_flow_enabled || c.direct_access_grants_enabled {
        ClientType::Web
    } else if c.service_accounts_enabled {
        ClientType::M2m
    } else {
        report.not_imported(
            at,
            "no flow is enabled (standard, implicit, direct access or service account)",
        );
        return None;
    };
    let name = match c.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() && !n.starts_with("${") => n.to_owned(),
        _ => c.client_id.clone(),
    };
    let mut spec = ClientSpec::new(&name, ty);
    spec.client_id = Some(c.client_id.clone());
    spec.description = c.description.clone().unwrap_or_default();
    spec.enabled = c.enabled;
    spec.grant_types = Some(grants(c, ty, standard, at, report));
    if c.implicit_flow_enabled {
        let mut types = if standard {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        };
        types.extend(["id_token".to_owned(), "id_token token".to_owned()]);
        spec.response_types = Some(types);
    }
    if ty != ClientType::M2m {
        spec.redirect_uris = redirects.clone();
        spec.post_logout_redirect_uris = logout_uris(c, &redirects, at, report);
        spec.allowed_origins = origins(c, &redirects, at, report);
        spec.consent = Some(if c.consent_required {
            ConsentMode::Explicit
        } else {
            ConsentMode::AutoAccept
        });
    }
    if !c.public_client {
        authentication(c, &mut spec, at, report);
    }
    match c.attr("pkce.code.challenge.method") {
        Some("S256") => spec.pkce_required = Some(true),
        Some("plain") => {
            spec.pkce_required = Some(true);
            report.changed(&format!("{at}.attributes.pkce.code.challenge.method"), "plain: Tessera accepts only S256 (RFC 9700 §2.1.1), which every PKCE library supports");
        }
        _ => {}
    }
    if c.frontchannel_logout {
        spec.frontchannel_logout_uri = c.attr("frontchannel.logout.url").map(str::to_owned);
    }
    spec.backchannel_logout_uri = c.attr("backchannel.logout.url").map(str::to_owned);
    spec.access_token_ttl = lifetime(c, realm, at, report);
    // The application's scopes: the realm's own scopes it may ask for; the OpenID ones every
    // application has, and Keycloak's machinery is left out.
    let mut apis = Vec::new();
    for s in c
        .default_client_scopes
        .iter()
        .chain(&c.optional_client_scopes)
    {
        if scopes.contains(s) {
            spec.scopes.push(s.clone());
            if let Some(api) = api_of_scope(s) {
                if !apis.contains(&api) {
                    apis.push(api);
                }
            }
        }
    }
    spec.apis = apis;
    for m in &c.protocol_mappers {
        let mat = format!("{at}.protocolMappers[{}]", m.name);
        if m.protocol_mapper != "oidc-audience-mapper" {
            report.dropped(&mat, format!("{}: an application's own claim mappers are not carried over; Tessera releases claims by scope (scopes[].claims)", m.protocol_mapper));
            continue;
        }
        let aud = m
            .config("included.custom.audience")
            .or(m.config("included.client.audience"));
        match aud.map(|a| (a, crate::names::api_identifier(a))) {
            Some((a, Ok(_))) => spec.additional_audiences.push(a.to_owned()),
            Some((a, Err(why))) => report.dropped(&mat, format!("audience {a}: an audience Tessera adds {why}; declare the API under its URL and give the application its scope")),
            None => report.dropped(&mat, "an audience mapper without an audience"),
        }
    }
    Some(spec)
}

/// Standard flow, implicit, direct access (password), service accounts, refresh tokens, the
/// device and CIBA grants.
fn grants(
    c: &KcClient,
    ty: ClientType,
    standard: bool,
    at: &str,
    report: &mut Report,
) -> Vec<GrantType> {
    let mut g = Vec::new();
    if standard && ty != ClientType::M2m {
        g.push(GrantType::AuthorizationCode);
    }
    if c.service_accounts_enabled && !c.public_client {
        g.push(GrantType::ClientCredentials);
    }
    if c.direct_access_grants_enabled {
        if ty == ClientType::Spa {
            report.dropped(
                &format!("{at}.directAccessGrantsEnabled"),
                "a single-page application cannot use the password grant in Tessera",
            );
        } else {
            g.push(GrantType::Password);
        }
    }
    if c.flag("oauth2.device.authorization.grant.enabled") {
        g.push(GrantType::DeviceCode);
    }
    if c.flag("oidc.ciba.grant.enabled") {
        if ty.is_confidential() {
            g.push(GrantType::Ciba);
        } else {
            report.dropped(
                &format!("{at}.attributes.oidc.ciba.grant.enabled"),
                "CIBA needs a confidential application",
            );
        }
    }
    // Keycloak issues refresh tokens unless use.refresh.tokens is false.
    let refresh = c.attr("use.refresh.tokens") != Some("false");
    if refresh
        && g.iter().any(|x| {
            matches!(
                x,
                GrantType::AuthorizationCode | GrantType::DeviceCode | GrantType::Password
            )
        })
    {
        g.push(GrantType::RefreshToken);
    }
    if c.flag("client_credentials.use_refresh_token") {
        report.dropped(
            &format!("{at}.attributes.client_credentials.use_refresh_token"),
            "the client credentials grant returns no refresh token (RFC 6749 §4.4.3)",
        );
    }
    g
}

/// Redirect URIs, made absolute against `rootUrl`; wildcards have no equivalent (Tessera compares
/// redirect URIs exactly, RFC 9700 §4.1.3) and are reported.
fn redirect_uris(c: &KcClient, at: &str, report: &mut Report) -> Vec<String> {
    let mut out = Vec::new();
    for (i, u) in c.redirect_uris.iter().enumerate() {
        let field = format!("{at}.redirectUris[{i}]");
        let Some(u) = absolute(c, u) else {
            report.dropped(
                &field,
                format!("{u}: a relative URI and the client has no rootUrl"),
            );
            continue;
        };
        if u.ends_with('*') {
            report.dropped(&field, format!("{u}: a wildcard; Tessera compares redirect URIs exactly (RFC 9700 §4.1.3): list each one"));
            continue;
        }
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

fn absolute(c: &KcClient, u: &str) -> Option<String> {
    if u.starts_with('/') {
        let root = c.root_url.as_deref().filter(|r| !r.starts_with("${"))?;
        Some(format!("{}{u}", root.trim_end_matches('/')))
    } else {
        Some(u.to_owned())
    }
}

/// `post.logout.redirect.uris`: `##`-separated, `+` for the redirect URIs, `-` for none.
fn logout_uris(c: &KcClient, redirects: &[String], at: &str, report: &mut Report) -> Vec<String> {
    let Some(v) = c.attr("post.logout.redirect.uris") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, u) in v
        .split("##")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .enumerate()
    {
        match u {
            "+" => out.extend(redirects.iter().cloned()),
            "-" => {}
            u if u.ends_with('*') => report.dropped(
                &format!("{at}.attributes.post.logout.redirect.uris[{i}]"),
                format!("{u}: a wildcard; Tessera compares logout redirect URIs exactly"),
            ),
            u => {
                if let Some(u) = absolute(c, u) {
                    out.push(u);
                }
            }
        }
    }
    out.dedup();
    out
}

/// `webOrigins`: `+` is the redirect URIs' origins; `*` (any origin) is not carried over.
fn origins(c: &KcClient, redirects: &[String], at: &str, report: &mut Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, o) in c.web_origins.iter().enumerate() {
        let found: Vec<String> = match o.as_str() {
            "+" => redirects.iter().filter_map(|u| origin_of(u)).collect(),
            "*" => {
                report.dropped(
                    &format!("{at}.webOrigins[{i}]"),
                    "* (every origin): Tessera allows named origins only; list them",
                );
                Vec::new()
            }
            o => vec![o.trim_end_matches('/').to_owned()],
        };
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

fn origin_of(u: &str) -> Option<String> {
    let url = url::Url::parse(u).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// `clientAuthenticatorType` and the secret.
fn authentication(c: &KcClient, spec: &mut ClientSpec, at: &str, report: &mut Report) {
    let secret = c.secret.as_deref().filter(|s| !s.is_empty());
    match c.client_authenticator_type.as_deref().unwrap_or("client-secret") {
        "client-secret" => {
            spec.auth_method = Some(AuthMethod::ClientSecretBasic);
            match secret {
                Some(MASKED) => report.changed(&format!("{at}.secret"), "masked in this export (the admin console's partial export): Tessera generates a new secret, printed once; use kc.sh export to keep the old one"),
                Some(s) if s.starts_with("${vault.") => report.changed(&format!("{at}.secret"), "kept in Keycloak's vault: Tessera generates a new secret, printed once; or put the secret in the file (client_secret)"),
                Some(s) => spec.client_secret = Some(s.to_owned()),
                None => {}
            }
        }
        "client-secret-jwt" => {
            spec.auth_method = Some(AuthMethod::ClientSecretJwt);
            if let Some(s) = secret.filter(|s| *s != MASKED && !s.starts_with("${vault.")) {
                spec.client_secret = Some(s.to_owned());
            }
        }
        "client-jwt" => {
            spec.auth_method = Some(AuthMethod::PrivateKeyJwt);
            if c.flag("use.jwks.url") || c.attr("jwks.url").is_some() && !c.flag("use.jwks.string") {
                spec.jwks_uri = c.attr("jwks.url").map(str::to_owned);
            } else if let Some(jwks) = c.attr("jwks.string") {
                spec.jwks = serde_json::from_str(jwks).ok();
            }
            if spec.jwks_uri.is_none() && spec.jwks.is_none() {
                report.changed(&format!("{at}.attributes"), "private_key_jwt without a key set (jwks.url or jwks.string; a certificate alone is not carried over): give jwks or jwks_uri before it can authenticate");
            }
        }
        "client-x509" => {
            spec.auth_method = Some(AuthMethod::TlsClientAuth);
            spec.mtls.tls_client_auth_subject_dn = c.attr("x509.subjectdn").map(str::to_owned);
        }
        other => report.changed(&format!("{at}.clientAuthenticatorType"), format!("{other}: unknown; the application authenticates with a client secret Tessera generates")),
    }
}

/// `access.token.lifespan` (seconds), else the realm's `accessTokenLifespan`.
fn lifetime(c: &KcClient, realm: &Realm, at: &str, report: &mut Report) -> Option<i64> {
    match c.attr("access.token.lifespan").map(str::parse::<i64>) {
        Some(Ok(-1)) => {
            report.changed(&format!("{at}.attributes.access.token.lifespan"), "-1 (as long as the SSO session): Tessera's access tokens have a lifetime of their own; the realm's is used");
            realm.access_token_lifespan
        }
        Some(Ok(s)) if s > 0 => Some(s),
        Some(_) => {
            report.changed(
                &format!("{at}.attributes.access.token.lifespan"),
                "not a number of seconds: the realm's is used",
            );
            realm.access_token_lifespan
        }
        None => realm.access_token_lifespan,
    }
}

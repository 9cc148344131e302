//! The rules an application's browser settings obey: redirect URIs (RFC 9700 §2.1, RFC 8252 §7),
//! response types (OAuth 2.0 Multiple Response Type Encoding §3), CORS origins, grant types per
//! application type, and the names of claims and attributes.

use super::{invalid, AdminResult};
use crate::claims::reserved_claim;
use crate::model::{
    AuthMethod, Client, ClientType, GrantType, JwsAlg, KeyManagement, SubjectType, CODE_TTL_RANGE,
    FAPI2_ALGS, ID_TOKEN_TTL_RANGE, REFRESH_TOKEN_TTL_RANGE,
};
use crate::response_type::canonical_response_type;
use crate::response_type::RESPONSE_TYPES;
use crate::settings::check_range;
use crate::uri::is_loopback_host;

pub(crate) fn response_types(v: &[String]) -> AdminResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in v {
        let c = canonical_response_type(r.trim()).ok_or_else(|| {
            invalid(
                "response_types",
                format!("{r:?} is not one of {}", RESPONSE_TYPES.join(", ")),
            )
        })?;
        if !out.iter().any(|x| x == c) {
            out.push(c.to_owned());
        }
    }
    Ok(out)
}

/// RFC 9700 §2.1 and RFC 8252 §7: https; http only on a loopback host; a private-use scheme in
/// reverse-domain form (`com.example.app:/cb`) only for native apps. No fragment (RFC 6749 §3.1.2).
fn redirect_uri(field: &str, uri: &str, ty: ClientType) -> AdminResult<()> {
    let url = url::Url::parse(uri)
        .map_err(|_| invalid(field, format!("{uri:?} is not an absolute URI")))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(invalid(
            field,
            format!("{uri:?} must not contain a fragment"),
        ));
    }
    if uri.len() > 2000 {
        return Err(invalid(field, "a URI must be at most 2000 characters"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url.host_str()) => Ok(()),
        "http" => Err(invalid(
            field,
            format!("{uri:?} must use https (http only on localhost, 127.0.0.1 or [::1])"),
        )),
        scheme if ty == ClientType::Native && scheme.contains('.') => Ok(()),
        _ if ty == ClientType::Native => Err(invalid(
            field,
            format!("{uri:?}: a private-use scheme must be a reverse domain name such as com.example.app"),
        )),
        _ => Err(invalid(field, format!("{uri:?} must use https"))),
    }
}

/// A CORS origin: `scheme://host[:port]`, optionally `https://*.example.com` (seed 002).
fn origin(o: &str) -> AdminResult<()> {
    let bad = || {
        invalid(
            "allowed_origins",
            format!(
                "{o:?} must be an origin such as https://app.example.com or https://*.example.com"
            ),
        )
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "https" | "http") || rest.is_empty() || rest.contains('/') {
        return Err(bad());
    }
    let host = rest.strip_prefix("*.").unwrap_or(rest);
    let probe = url::Url::parse(&format!("{scheme}://{host}")).map_err(|_| bad())?;
    if probe.host_str().is_none() || o.ends_with(':') {
        return Err(bad());
    }
    Ok(())
}

/// A claim name for a custom claim mapping: 1-64 visible characters, not a registered JWT claim.
pub(crate) fn claim_name(field: &str, name: &str) -> AdminResult<String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(invalid(
            field,
            format!("claim name {name:?} must be 1-64 visible characters"),
        ));
    }
    if reserved_claim(name) {
        return Err(invalid(
            field,
            format!("claim {name} is set by the authorization server or is a standard claim (OIDC Core §5.1), which only the user's own claims fill"),
        ));
    }
    Ok(name.to_owned())
}

/// A user attribute name: letters, digits, `_`, `-`, `.`; at most 64 characters.
pub(crate) fn attribute_name(field: &str, name: &str) -> AdminResult<String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid(
            field,
            format!("attribute name {name:?} must be 1-64 letters, digits, '_', '-' or '.'"),
        ));
    }
    Ok(name.to_owned())
}

/// A JWK Set of public keys only: a private key (`d`, or a symmetric `k`) never belongs here.
fn public_jwks(field: &str, v: &serde_json::Value) -> AdminResult<()> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(v.clone())
        .map_err(|e| invalid(field, format!("is not a JWK Set: {e}")))?;
    if set.keys.is_empty() {
        return Err(invalid(field, "has no keys"));
    }
    let has_private = v["keys"].as_array().is_some_and(|ks| {
        ks.iter()
            .any(|k| k.get("d").is_some() || k.get("k").is_some())
    });
    if has_private {
        return Err(invalid(
            field,
            "must hold public keys only (no \"d\" or \"k\")",
        ));
    }
    Ok(())
}

/// A URL Tessera will call ([`crate::outbound::check_destination`]).
fn destination(field: &str, uri: &str, allow_private: bool) -> AdminResult<()> {
    if uri.len() > 2000 {
        return Err(invalid(field, "a URI must be at most 2000 characters"));
    }
    crate::outbound::check_destination(uri, allow_private)
        .map_err(|m| invalid(field, format!("{}: {m}", crate::outbound::redact_url(uri))))
}

/// Key sources, trusted issuers and the exchange policy URL.
fn check_federation(c: &Client, allow_private: bool) -> AdminResult<()> {
    let f = &c.federation;
    match (&f.jwks, &f.jwks_uri) {
        (Some(_), Some(_)) => return Err(invalid("jwks", "give jwks or jwks_uri, not both")),
        (Some(j), None) => public_jwks("jwks", j)?,
        (None, Some(u)) => destination("jwks_uri", u, allow_private)?,
        (None, None) if c.auth_method == AuthMethod::PrivateKeyJwt => {
            return Err(invalid(
                "jwks",
                "private_key_jwt needs the client's keys: jwks or jwks_uri",
            ))
        }
        (None, None) if c.auth_method == AuthMethod::SelfSignedTlsClientAuth => {
            return Err(invalid(
                "jwks",
                "self_signed_tls_client_auth needs the client's certificate keys: jwks or jwks_uri",
            ))
        }
        (None, None) => {}
    }
    if c.auth_method == AuthMethod::ClientSecretJwt && !c.client_type.is_confidential() {
        return Err(invalid(
            "auth_method",
            "client_secret_jwt needs a client secret",
        ));
    }
    for t in &f.trusted_issuers {
        if t.issuer.trim().is_empty() || t.issuer.len() > 512 {
            return Err(invalid(
                "trusted_issuers",
                "issuer must be 1-512 characters",
            ));
        }
        match (&t.jwks, &t.jwks_uri) {
            (Some(j), None) => public_jwks("trusted_issuers", j)?,
            (None, Some(u)) => destination("trusted_issuers", u, allow_private)?,
            _ => {
                return Err(invalid(
                    "trusted_issuers",
                    format!("{}: give jwks or jwks_uri (one of them)", t.issuer),
                ))
            }
        }
    }
    if let Some(u) = &f.exchange_policy_url {
        destination("exchange_policy_url", u, allow_private)?;
    }
    Ok(())
}

/// CIBA §4: ping mode needs the endpoint the application is told at (a URL Tessera calls).
fn check_backchannel(c: &Client, allow_private: bool) -> AdminResult<()> {
    let b = &c.backchannel;
    if let Some(u) = &b.backchannel_client_notification_endpoint {
        destination("backchannel_client_notification_endpoint", u, allow_private)?;
    }
    if b.backchannel_token_delivery_mode == Some(crate::model::BackchannelMode::Ping)
        && b.backchannel_client_notification_endpoint.is_none()
    {
        return Err(invalid(
            "backchannel_client_notification_endpoint",
            "ping mode needs the application's notification endpoint",
        ));
    }
    Ok(())
}

/// An application whose access tokens must be sender-constrained (DPoP- or certificate-bound)
/// gets none from the authorization endpoint, where nothing can bind them: no response type
/// with `token`.
fn check_sender_constraint(c: &Client) -> AdminResult<()> {
    let field = if c.dpop_bound_access_tokens {
        "dpop_bound_access_tokens"
    } else if c.mtls.tls_client_certificate_bound_access_tokens {
        "tls_client_certificate_bound_access_tokens"
    } else {
        return Ok(());
    };
    let front_channel = c
        .browser
        .response_types
        .iter()
        .find(|r| r.split(' ').any(|p| p == "token"));
    match front_channel {
        Some(r) => Err(invalid(
            field,
            format!("response type {r} returns an access token from the authorization endpoint, where it cannot be bound; remove it"),
        )),
        None => Ok(()),
    }
}

/// RFC 8705 §2.1.2: `tls_client_auth` names exactly one subject field, well-formed; the others
/// name none.
fn check_mtls(c: &Client) -> AdminResult<()> {
    let fields = c.mtls.subject_fields();
    if c.auth_method != AuthMethod::TlsClientAuth {
        return match fields.first() {
            Some((field, _)) => Err(invalid(
                field,
                "applies to tls_client_auth client authentication only",
            )),
            None => Ok(()),
        };
    }
    let [(field, value)] = fields.as_slice() else {
        return Err(invalid(
            "auth_method",
            "tls_client_auth needs exactly one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip, tls_client_auth_san_email",
        ));
    };
    let ok = match *field {
        "tls_client_auth_subject_dn" => crate::mtls::valid_dn(value),
        "tls_client_auth_san_ip" => value.parse::<std::net::IpAddr>().is_ok(),
        "tls_client_auth_san_uri" => url::Url::parse(value).is_ok(),
        "tls_client_auth_san_email" => value
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()),
        _ => !value.trim().is_empty(),
    };
    if !ok || value.len() > 1000 {
        return Err(invalid(field, "is not well-formed"));
    }
    Ok(())
}

/// Encrypted responses (OIDC Registration §2): an `*_enc` only with its `*_alg`, and the
/// application's keys to encrypt to; keys given inline must hold one for each algorithm.
fn check_protection(c: &Client) -> AdminResult<()> {
    let f = &c.federation;
    for (field, alg, enc) in c.protection.encryptions() {
        let Some(alg) = alg else {
            if enc.is_some() {
                let enc_field = field.replace("_alg", "_enc");
                return Err(invalid(
                    field,
                    format!("is required when {enc_field} is set"),
                ));
            }
            continue;
        };
        match (&f.jwks, &f.jwks_uri) {
            (None, None) => {
                return Err(invalid(
                    field,
                    "encryption needs the application's public keys: jwks or jwks_uri",
                ))
            }
            (Some(j), _) => {
                // Judged as published (jwks was checked to be a JWK Set before).
                let keys = j["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
                if !keys.iter().any(|k| crate::jwe::key_fits(k, alg)) {
                    return Err(invalid(
                        field,
                        format!(
                            "jwks has no encryption key for {} (an {} key whose use, key_ops and alg allow it)",
                            alg.as_str(),
                            if alg == KeyManagement::RsaOaep256 { "RSA" } else { "EC P-256, P-384 or P-521" }
                        ),
                    ));
                }
            }
            (None, Some(_)) => {}
        }
    }
    Ok(())
}

/// Seed 001 "OAuth Policy" and the FAPI 2.0 Security Profile: settings that contradict them are
/// refused, naming the setting and the rule.
fn check_policy(c: &Client) -> AdminResult<()> {
    let b = &c.browser;
    let name = if c.fapi2() { "FAPI 2.0" } else { "OAuth 2.1" };
    let browser_flows =
        c.grant_types.contains(&GrantType::AuthorizationCode) || !b.response_types.is_empty();
    if c.s256_only() {
        if browser_flows && !b.pkce_required {
            return Err(invalid(
                "pkce_required",
                format!("{name} requires PKCE of every application"),
            ));
        }
        if b.response_types.iter().any(|r| r != "code") {
            return Err(invalid(
                "response_types",
                format!("{name} allows only the code response type (no implicit or hybrid)"),
            ));
        }
        if c.grant_types.contains(&GrantType::Password) {
            return Err(invalid(
                "grant_types",
                format!("{name} has no password grant"),
            ));
        }
    }
    if !c.fapi2() {
        return Ok(());
    }
    if !c.client_type.is_confidential() {
        return Err(invalid(
            "profile",
            "FAPI 2.0 is for confidential applications (web or m2m)",
        ));
    }
    // FAPI 2.0 §5.3.2.1: private_key_jwt or mutual TLS.
    if c.auth_method != AuthMethod::PrivateKeyJwt && !c.auth_method.is_certificate() {
        return Err(invalid(
            "auth_method",
            "FAPI 2.0 requires private_key_jwt or mutual TLS (tls_client_auth, self_signed_tls_client_auth) client authentication",
        ));
    }
    if browser_flows && !b.require_pushed_authorization_requests {
        return Err(invalid(
            "require_pushed_authorization_requests",
            "FAPI 2.0 requires pushed authorization requests",
        ));
    }
    if b.code_ttl > 60 {
        return Err(invalid(
            "code_ttl",
            "FAPI 2.0 allows authorization codes of at most 60 seconds",
        ));
    }
    // FAPI 2.0 §5.3.2.1: sender-constrained access tokens, by DPoP or mutual TLS.
    if !c.dpop_bound_access_tokens && !c.mtls.tls_client_certificate_bound_access_tokens {
        return Err(invalid(
            "dpop_bound_access_tokens",
            "FAPI 2.0 requires sender-constrained access tokens: DPoP-bound (RFC 9449) or certificate-bound (RFC 8705, tls_client_certificate_bound_access_tokens)",
        ));
    }
    let p = &c.protection;
    let algs = [
        ("signing_alg", Some(c.signing_alg)),
        ("id_token_alg", Some(b.id_token_alg)),
        (
            "userinfo_signed_response_alg",
            p.userinfo_signed_response_alg,
        ),
        (
            "authorization_signed_response_alg",
            p.authorization_signed_response_alg,
        ),
    ];
    for (field, alg) in algs {
        if alg.is_some_and(|a| !matches!(a, JwsAlg::Key(k) if FAPI2_ALGS.contains(&k))) {
            return Err(invalid(
                field,
                "FAPI 2.0 allows PS256, ES256 or EdDSA signatures",
            ));
        }
    }
    Ok(())
}

/// What the application type allows (seed 000 "Application Type"); `allow_private` lets URLs
/// Tessera calls name loopback and private addresses (`outbound.allow_private_addresses`).
pub(crate) fn check_client(c: &Client, allow_private: bool) -> AdminResult<()> {
    let ty = c.client_type;
    let b = &c.browser;
    let allowed: &[GrantType] = match ty {
        ClientType::M2m => &[
            GrantType::ClientCredentials,
            GrantType::Ciba,
            GrantType::Password,
            GrantType::TokenExchange,
            GrantType::JwtBearer,
            GrantType::Saml2Bearer,
        ],
        ClientType::Web => &[
            GrantType::AuthorizationCode,
            GrantType::DeviceCode,
            GrantType::Ciba,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::Password,
            GrantType::TokenExchange,
            GrantType::JwtBearer,
            GrantType::Saml2Bearer,
        ],
        ClientType::Spa => &[
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::DeviceCode,
        ],
        ClientType::Native => &[
            GrantType::AuthorizationCode,
            GrantType::DeviceCode,
            GrantType::RefreshToken,
            GrantType::Password,
        ],
    };
    if let Some(g) = c.grant_types.iter().find(|g| !allowed.contains(g)) {
        return Err(invalid(
            "grant_types",
            format!("a {} application cannot use {}", ty.as_str(), g.as_str()),
        ));
    }
    match (ty.is_confidential(), c.auth_method) {
        (true, AuthMethod::None) => {
            return Err(invalid(
                "auth_method",
                "a confidential application authenticates with its secret",
            ))
        }
        (false, m) if m != AuthMethod::None => {
            return Err(invalid(
                "auth_method",
                "a public application (spa, native) has no secret: its method is none",
            ))
        }
        _ => {}
    }
    check_federation(c, allow_private)?;
    check_backchannel(c, allow_private)?;
    check_mtls(c)?;
    check_sender_constraint(c)?;
    check_protection(c)?;
    check_policy(c)?;
    if !(0..=120).contains(&c.refresh_grace_secs) {
        return Err(invalid(
            "refresh_grace_secs",
            "must be between 0 and 120 seconds",
        ));
    }
    // RFC 9700 §4.14.2: a public client's refresh tokens are not sender-constrained, so every
    // reuse of a rotated one must revoke the grant.
    if c.refresh_grace_secs > 0 && !ty.is_confidential() {
        return Err(invalid(
            "refresh_grace_secs",
            "a public application (spa, native) detects every reuse of a rotated refresh token: its grace window must be 0",
        ));
    }
    if !ty.is_confidential() && !b.pkce_required {
        return Err(invalid(
            "pkce_required",
            "PKCE is always required for public applications",
        ));
    }
    if !ty.is_confidential() && b.id_token_alg == JwsAlg::HS256 {
        return Err(invalid(
            "id_token_alg",
            "HS256 needs a client secret; public applications have none",
        ));
    }
    let browser_flows =
        c.grant_types.contains(&GrantType::AuthorizationCode) || !b.response_types.is_empty();
    if c.grant_types.contains(&GrantType::AuthorizationCode) && b.redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uris",
            "at least one redirect URI is required",
        ));
    }
    if !browser_flows && !b.redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uris",
            "only applications that sign users in have redirect URIs",
        ));
    }
    for u in &b.redirect_uris {
        redirect_uri("redirect_uris", u, ty)?;
    }
    for u in &b.post_logout_redirect_uris {
        redirect_uri("post_logout_redirect_uris", u, ty)?;
    }
    // Front-channel logout pages load in the user's browser; back-channel logout tokens are
    // POSTed by Tessera itself.
    if let Some(u) = &b.frontchannel_logout_uri {
        redirect_uri("frontchannel_logout_uri", u, ClientType::Web)?;
    }
    if let Some(u) = &b.backchannel_logout_uri {
        destination("backchannel_logout_uri", u, allow_private)?;
    }
    // Request objects by reference are fetched by Tessera itself.
    if b.request_uris.len() > 20 {
        return Err(invalid("request_uris", "at most 20 request URIs"));
    }
    for u in &b.request_uris {
        destination("request_uris", u, allow_private)?;
        if u.contains('#') {
            return Err(invalid(
                "request_uris",
                "a registered request URI has no fragment",
            ));
        }
    }
    if !browser_flows && !b.request_uris.is_empty() {
        return Err(invalid(
            "request_uris",
            "only applications that sign users in send authorization requests",
        ));
    }
    for o in &b.allowed_origins {
        origin(o)?;
    }
    if b.response_types.is_empty() && c.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(invalid(
            "response_types",
            "at least one response type is required",
        ));
    }
    if b.response_types.iter().any(|r| r.contains("code"))
        && !c.grant_types.contains(&GrantType::AuthorizationCode)
    {
        return Err(invalid(
            "response_types",
            "response types with code need the authorization_code grant",
        ));
    }
    attribute_name("subject_attribute", &b.subject_attribute)?;
    if b.subject_type == SubjectType::Pairwise {
        // OIDC Core §8.1: with redirect URIs on several hosts the sector would be ambiguous.
        let mut hosts: Vec<String> = b
            .redirect_uris
            .iter()
            .filter_map(|u| url::Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(str::to_owned))
            .filter(|h| !is_loopback_host(Some(h)))
            .collect();
        hosts.sort();
        hosts.dedup();
        if hosts.len() > 1 {
            return Err(invalid(
                "subject_type",
                "pairwise subjects need every redirect URI on one host (the sector)",
            ));
        }
    }
    // Compared with users' groups as stored: in their normal form too.
    for g in &b.allowed_groups {
        crate::names::group(g).map_err(|m| invalid("allowed_groups", m))?;
    }
    for a in &b.additional_audiences {
        super::text("additional_audiences", a, true, 512)?;
    }
    check_range("id_token_ttl", b.id_token_ttl, ID_TOKEN_TTL_RANGE)
        .map_err(|m| invalid("id_token_ttl", m))?;
    check_range("code_ttl", b.code_ttl, CODE_TTL_RANGE).map_err(|m| invalid("code_ttl", m))?;
    check_range(
        "refresh_token_ttl",
        b.refresh_token_ttl,
        REFRESH_TOKEN_TTL_RANGE,
    )
    .map_err(|m| invalid("refresh_token_ttl", m))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        assert!(redirect_uri("r", "https://app.example.com/cb", ClientType::Web).is_ok());
        assert!(redirect_uri("r", "http://127.0.0.1/cb", ClientType::Native).is_ok());
        assert!(redirect_uri("r", "http://app.example.com/cb", ClientType::Web).is_err());
        assert!(redirect_uri("r", "com.example.app:/cb", ClientType::Native).is_ok());
        assert!(redirect_uri("r", "com.example.app:/cb", ClientType::Web).is_err());
        assert!(redirect_uri("r", "myapp:/cb", ClientType::Native).is_err());
        assert!(redirect_uri("r", "https://a.example/cb#x", ClientType::Web).is_err());
    }

    #[test]
    fn origins() {
        assert!(origin("https://*.example.com").is_ok());
        assert!(origin("http://localhost:3000").is_ok());
        assert!(origin("https://example.com/path").is_err());
        assert!(origin("example.com").is_err());
    }
}

//! Validated, immutable runtime settings of the protocol: issuer, default lifetimes, signing keys.

use crate::model::{
    Alg, LifetimeOverrides, ACCESS_TOKEN_TTL_RANGE, CODE_TTL_RANGE, ID_TOKEN_TTL_RANGE,
    REFRESH_TOKEN_TTL_RANGE,
};

/// Leeway for other parties' clocks by default, in seconds (seed 003: five minutes).
pub const CLOCK_SKEW_DEFAULT: i64 = 300;
/// The `clock_skew` setting's range, in seconds.
pub const CLOCK_SKEW_RANGE: (i64, i64) = (0, 600);

/// Default lifetimes in seconds (seed 000: code 60 s, access token 900 s, refresh token 86 400 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetimes {
    pub authorization_code: i64,
    pub access_token: i64,
    pub refresh_token: i64,
    pub id_token: i64,
}

impl Lifetimes {
    /// These lifetimes with what administrators set at runtime in their place.
    pub fn overridden(&self, o: &LifetimeOverrides) -> Lifetimes {
        Lifetimes {
            authorization_code: o.authorization_code.unwrap_or(self.authorization_code),
            access_token: o.access_token.unwrap_or(self.access_token),
            refresh_token: o.refresh_token.unwrap_or(self.refresh_token),
            id_token: o.id_token.unwrap_or(self.id_token),
        }
    }
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            authorization_code: 60,
            access_token: 900,
            refresh_token: 86_400,
            id_token: 3_600,
        }
    }
}

/// How signing keys are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySettings {
    /// Algorithms that always have a current signing key.
    pub algorithms: Vec<Alg>,
    /// How long a generated key signs before the next one takes over, in seconds.
    pub lifetime: i64,
    /// How long before it signs a generated successor is published in the JWKS, in seconds.
    pub publish_ahead: i64,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            algorithms: Alg::ALL.to_vec(),
            lifetime: 90 * 86_400,
            publish_ahead: 7 * 86_400,
        }
    }
}

/// Throttling of failed sign-ins (RFC 9700 §4.2.6 asks servers to slow down guessing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// Failed passwords per username before sign-in pauses for the rest of the window.
    pub per_account: i64,
    /// Failed passwords per client address before sign-in pauses for the rest of the window.
    pub per_address: i64,
    /// Failed client authentications with a client secret per client before the token,
    /// introspection and revocation endpoints refuse it for the rest of the window.
    pub per_client: i64,
    /// The window in seconds.
    pub window: i64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            per_account: 5,
            per_address: 20,
            per_client: 20,
            window: 900,
        }
    }
}

/// Dynamic client registration (RFC 7591, RFC 7592): off unless enabled; what a registered
/// client may ask for is clamped to these lists (and an initial access token's own).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationSettings {
    pub enabled: bool,
    /// Registration without an initial access token (throttled per address).
    pub open: bool,
    /// The grant types a registered client may use.
    pub grant_types: Vec<crate::model::GrantType>,
    /// The scopes a registered client may ask for.
    pub scopes: Vec<String>,
    /// The issuers whose software statements (RFC 7591 §2.3) are taken, with their keys.
    pub software_statement_issuers: Vec<crate::model::TrustedIssuer>,
    /// Every registration must carry a software statement of one of them.
    pub require_software_statement: bool,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        use crate::model::GrantType;
        RegistrationSettings {
            enabled: false,
            open: false,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            software_statement_issuers: Vec::new(),
            require_software_statement: false,
        }
    }
}

/// Mutual TLS (RFC 8705): whether client certificates reach Tessera, and the CAs it trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtlsSettings {
    /// Client certificates can reach Tessera (its own TLS asks for them, or a trusted proxy
    /// passes them on): the certificate methods and certificate-bound tokens are offered.
    pub enabled: bool,
    /// DER certificates of the CAs a `tls_client_auth` certificate must chain to (with any
    /// intermediates among them).
    pub trust_anchors: Vec<Vec<u8>>,
    /// RFC 8705 §5: where clients reach the endpoints with mutual TLS, when that is not the
    /// issuer (`mtls_endpoint_aliases`).
    pub endpoint_base: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier (RFC 8414 §2): https (http only on loopback), no query or fragment, no trailing slash.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    pub keys: KeySettings,
    /// How long an SSO session lasts after sign-in, in seconds.
    pub session_lifetime: i64,
    /// Whether Tessera may call loopback, private and link-local addresses (`outbound.
    /// allow_private_addresses`): registration refuses such destinations otherwise.
    pub allow_private_addresses: bool,
    /// Accept PKCE `plain` (RFC 7636 §4.2); off by default (RFC 9700 §2.1.1).
    pub pkce_plain: bool,
    /// RFC 9126 §5: every application's authorization requests must be pushed first (PAR).
    pub require_pushed_requests: bool,
    /// RFC 9126 §2.2: seconds a pushed request's `request_uri` stays good.
    pub pushed_request_lifetime: i64,
    /// Seconds of leeway for another party's clock when judging the `exp`, `nbf` and `iat` of
    /// the JWTs and SAML assertions Tessera receives (seed 003: five minutes); never applied to
    /// tokens Tessera issues.
    pub clock_skew: i64,
    /// RFC 9449 §8: every DPoP proof must carry a nonce Tessera handed out (`DPoP-Nonce`).
    pub dpop_require_nonce: bool,
    pub mtls: MtlsSettings,
    pub registration: RegistrationSettings,
    pub throttle: Throttle,
    /// How long audit events are kept, in seconds.
    pub audit_retention: i64,
    /// Record every token issued or refused at the token endpoint in the audit log (a database
    /// write per request, also for client credentials; off by default, like Keycloak's events).
    pub audit_tokens: bool,
    /// WebAuthn user verification (PIN or biometrics on the authenticator) for passkeys.
    pub passkey_user_verification: crate::factor::webauthn::UserVerification,
}

pub fn check_range(name: &str, value: i64, (lo, hi): (i64, i64)) -> Result<(), String> {
    if value < lo || value > hi {
        return Err(format!(
            "{name} must be between {lo} and {hi} seconds, got {value}"
        ));
    }
    Ok(())
}

impl Settings {
    pub fn new(issuer: &str, lifetimes: Lifetimes, keys: KeySettings) -> Result<Settings, String> {
        let url =
            url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?} is not a URL: {e}"))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "issuer {issuer:?} must use https (http is allowed only for localhost)"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!(
                "issuer {issuer:?} must not have a query, fragment or user info"
            ));
        }
        check_range(
            "lifetimes.access_token",
            lifetimes.access_token,
            ACCESS_TOKEN_TTL_RANGE,
        )?;
        check_range(
            "lifetimes.refresh_token",
            lifetimes.refresh_token,
            REFRESH_TOKEN_TTL_RANGE,
        )?;
        check_range("lifetimes.id_token", lifetimes.id_token, ID_TOKEN_TTL_RANGE)?;
        check_range(
            "lifetimes.authorization_code",
            lifetimes.authorization_code,
            CODE_TTL_RANGE,
        )?;
        if keys.lifetime < 86_400 {
            return Err("keys.lifetime must be at least one day".into());
        }
        if keys.publish_ahead < 0 || keys.publish_ahead >= keys.lifetime {
            return Err("keys.publish_ahead must be between 0 and keys.lifetime".into());
        }
        Ok(Settings {
            issuer: issuer.trim_end_matches('/').to_owned(),
            lifetimes,
            keys,
            session_lifetime: 86_400,
            allow_private_addresses: false,
            pkce_plain: false,
            require_pushed_requests: false,
            pushed_request_lifetime: 60,
            clock_skew: CLOCK_SKEW_DEFAULT,
            dpop_require_nonce: false,
            mtls: MtlsSettings::default(),
            registration: RegistrationSettings::default(),
            throttle: Throttle::default(),
            audit_retention: 90 * 86_400,
            audit_tokens: false,
            passkey_user_verification: crate::factor::webauthn::UserVerification::Preferred,
        })
    }

    /// The absolute URL of one of Tessera's endpoints.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// RFC 8705 §5: the URL of an endpoint at its mutual-TLS alias, when there is one.
    pub fn mtls_alias(&self, path: &str) -> Option<String> {
        let base = self.mtls.endpoint_base.as_deref()?;
        Some(format!("{}{path}", base.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_rules() {
        let ok = |i: &str| Settings::new(i, Lifetimes::default(), KeySettings::default());
        assert_eq!(
            ok("http://localhost:8080/").unwrap().issuer,
            "http://localhost:8080"
        );
        assert!(ok("https://id.example.com/tenant").is_ok());
        assert!(ok("http://id.example.com").is_err());
        assert!(ok("https://id.example.com?x=1").is_err());
        assert!(ok("not a url").is_err());
    }

    #[test]
    fn lifetimes_are_bounded() {
        let l = Lifetimes {
            access_token: 86_401,
            ..Lifetimes::default()
        };
        assert!(
            Settings::new("https://a.example", l, KeySettings::default())
                .unwrap_err()
                .contains("access_token")
        );
    }
}

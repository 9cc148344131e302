//! The one protocol error: RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 8693 §2.2.2, RFC 8707 §2,
//! OIDC Core §3.1.2.6 and Unmet Authentication Requirements codes. The `description` is for the client developer; `source` is only logged.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    UnsupportedTokenType,
    InvalidToken,
    ServerError,
    TemporarilyUnavailable,
    UnsupportedResponseType,
    RequestNotSupported,
    RequestUriNotSupported,
    /// OIDC Core §3.1.2.6: the `request_uri` is unknown, expired or used.
    InvalidRequestUri,
    /// OIDC Core §3.1.2.6: the request object is invalid.
    InvalidRequestObject,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// RFC 6750 §3.1: the token lacks the scope the resource needs.
    InsufficientScope,
    /// OpenID Connect Core Unmet Authentication Requirements 1.0 §1: an essential `acr` the
    /// authorization server cannot meet (OIDC Core §5.5.1.1).
    UnmetAuthenticationRequirements,
    /// RFC 9449 §5, §7.1: the DPoP proof is missing where required, or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the DPoP proof must carry the server's nonce (`DPoP-Nonce`).
    UseDpopNonce,
    /// RFC 8628 §3.5: the user has not decided yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; wait 5 seconds more between polls.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start over.
    ExpiredToken,
    /// CIBA §13: the hint names no user who can be asked.
    UnknownUserId,
    /// CIBA §13: the `login_hint_token` expired.
    ExpiredLoginHintToken,
    /// CIBA §13: the binding message is too long or not printable.
    InvalidBindingMessage,
    /// RFC 7591 §3.2.2: a redirect URI is refused.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: a metadata value is refused.
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2: the software statement is not a valid JWT of a trusted issuer.
    InvalidSoftwareStatement,
    /// RFC 7591 §3.2.2: the software statement is missing where required.
    UnapprovedSoftwareStatement,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::UnknownUserId => "unknown_user_id",
            ErrorCode::ExpiredLoginHintToken => "expired_login_hint_token",
            ErrorCode::InvalidBindingMessage => "invalid_binding_message",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidSoftwareStatement => "invalid_software_statement",
            ErrorCode::UnapprovedSoftwareStatement => "unapproved_software_statement",
        }
    }

    /// The HTTP status a JSON error response carries (RFC 6749 §5.2, RFC 6750 §3.1).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::AccessDenied | ErrorCode::InsufficientScope => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A protocol error as the client sees it, plus a private cause for the log.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    pub source: Option<Source>,
    /// Set when the request was refused for too many failures: answered 429 with `Retry-After`
    /// (RFC 6585 §4) carrying these seconds.
    pub retry_after: Option<i64>,
}

impl Error {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Error {
        Error {
            code,
            description: description.into(),
            source: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::InvalidTarget, d)
    }
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::InvalidGrant, d)
    }
    pub fn access_denied(d: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorCode::AccessDenied, d)
    }

    /// Too many failures (see [`crate::throttle`]): the request may be repeated after `seconds`.
    pub fn throttled(code: ErrorCode, seconds: i64) -> Error {
        Error {
            retry_after: Some(seconds),
            ..Error::new(
                code,
                format!("too many failed attempts; retry in {seconds} seconds"),
            )
        }
    }

    /// Anything unexpected: the client gets a generic description, the cause goes to the log.
    pub fn server(source: impl Into<Source>) -> Error {
        Error {
            code: ErrorCode::ServerError,
            description: Cow::Borrowed(
                "the authorization server encountered an unexpected condition",
            ),
            source: Some(source.into()),
            retry_after: None,
        }
    }

    /// The store is unreachable or overloaded: fail fast, the client may retry.
    pub fn unavailable(source: impl Into<Source>) -> Error {
        Error {
            code: ErrorCode::TemporarilyUnavailable,
            description: Cow::Borrowed(
                "the authorization server is temporarily unavailable, retry later",
            ),
            source: Some(source.into()),
            retry_after: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

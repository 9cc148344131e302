//! RFC 9457 problem details for the admin API: every refusal is `application/problem+json` with
//! a title, a detail written for the caller, and for invalid input the offending field.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;
use tessera_core::admin::{AdminError, Need};
use tessera_core::store::StoreError;

/// One RFC 9457 problem.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    /// The invalid input, RFC 9457 §3's `invalid-params` extension: (field, reason).
    pub invalid: Option<(String, String)>,
    /// RFC 6750 §3 challenge for 401 and 403.
    pub challenge: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            invalid: None,
            challenge: None,
        }
    }

    /// 422: `field` is invalid.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Problem {
        let (field, reason) = (field.into(), reason.into());
        Problem {
            detail: format!("{field}: {reason}"),
            invalid: Some((field, reason)),
            ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "")
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// 401 (RFC 6750 §3.1 `invalid_token`).
    pub fn unauthenticated(detail: &str) -> Problem {
        Problem {
            challenge: Some(format!(
                "Bearer realm=\"tessera-admin\", error=\"invalid_token\", error_description=\"{detail}\""
            )),
            ..Problem::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 401 for a request without a token: the bare challenges of both schemes (RFC 6750 §3.1:
    /// no error code when no credentials were sent; RFC 9449 §7.1).
    pub fn no_token() -> Problem {
        Problem {
            challenge: Some(format!(
                "Bearer realm=\"tessera-admin\", DPoP realm=\"tessera-admin\", algs=\"{}\"",
                tessera_core::dpop::DPOP_ALGS.join(" ")
            )),
            ..Problem::new(
                StatusCode::UNAUTHORIZED,
                "an access token is required (Bearer or DPoP scheme)",
            )
        }
    }

    /// 401 with RFC 9449 §7.1's `DPoP` challenge: `invalid_token` for a token presented
    /// against its binding, `invalid_dpop_proof`, or `use_dpop_nonce` (the nonce is in the
    /// `DPoP-Nonce` header).
    pub fn refused_proof(code: &str, detail: &str) -> Problem {
        Problem {
            challenge: Some(crate::oauth::respond::dpop_challenge(
                "tessera-admin",
                code,
                detail,
            )),
            ..Problem::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 403 (RFC 6750 §3.1 `insufficient_scope`): what was refused and what it needs; the
    /// challenge lists the scopes that take part.
    pub fn forbidden(detail: impl Into<String>, need: Need) -> Problem {
        let list = need.scopes().join(" ");
        Problem {
            challenge: Some(format!(
                "Bearer realm=\"tessera-admin\", error=\"insufficient_scope\", scope=\"{list}\""
            )),
            ..Problem::new(StatusCode::FORBIDDEN, detail)
        }
    }

    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNPROCESSABLE_ENTITY => "invalid-input",
            StatusCode::BAD_REQUEST => "bad-request",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "insufficient-scope",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PRECONDITION_FAILED => "precondition-failed",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "server-error",
        }
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Problem {
        match e {
            AdminError::NotFound(what) => Problem::not_found(what),
            AdminError::Conflict(what) => Problem::new(StatusCode::CONFLICT, what),
            AdminError::Raced => Problem::new(StatusCode::CONFLICT, e.to_string()),
            AdminError::Invalid { field, message } => Problem::invalid(field, message),
            AdminError::PreconditionFailed => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "the record changed since it was read (If-Match does not hold); read it again",
            ),
            AdminError::Key(k) => Problem::invalid("key", k.to_string()),
            AdminError::Forbidden { need, .. } => Problem::forbidden(e.to_string(), need),
            AdminError::Store(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "admin API: store unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unreachable; retry shortly",
                )
            }
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin API: store error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:tessera:problem:{}", self.kind()),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some((name, reason)) = &self.invalid {
            body["invalid-params"] = json!([{ "name": name, "reason": reason }]);
        }
        let mut r = (self.status, body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

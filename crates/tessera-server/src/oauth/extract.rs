//! Extracts a client-authenticated form request: `application/x-www-form-urlencoded` body within
//! the size limit, parameters parsed once, the `Authorization` header kept for client auth.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::StatusCode;
use tessera_core::client_auth::ClientRequest;
use tessera_core::params::Params;
use tessera_core::Error;

use super::respond::error_body;
use crate::AppState;

pub struct FormRequest(pub ClientRequest);

/// RFC 6749 §3.2: the token endpoint takes `application/x-www-form-urlencoded` (any charset parameter).
fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl FromRequest<AppState> for FormRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let headers = req.headers();
        let address = crate::interaction::client_address(headers, req.extensions(), state);
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !is_form(content_type) {
            let e = Error::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            );
            return Err(error_body(StatusCode::BAD_REQUEST, &e));
        }
        let authorization = match headers.get(AUTHORIZATION).map(|v| v.to_str()) {
            None => None,
            Some(Ok(v)) => Some(v.to_owned()),
            Some(Err(_)) => {
                let e = Error::invalid_request("the Authorization header is not visible ASCII");
                return Err(error_body(StatusCode::BAD_REQUEST, &e));
            }
        };
        let certificate = crate::mtls::presented_certificate(headers, req.extensions(), state);
        let dpop = match crate::bearer::dpop_header(headers) {
            Ok(d) => d.map(str::to_owned),
            Err(why) => {
                let e = Error::new(tessera_core::ErrorCode::InvalidDpopProof, why);
                return Err(error_body(StatusCode::BAD_REQUEST, &e));
            }
        };
        let body = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) => {
                let status = rejection.status();
                let e = Error::invalid_request(if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "the request body is too large"
                } else {
                    "the request body could not be read"
                });
                return Err(error_body(status, &e).into_response());
            }
        };
        let params = Params::parse(&body).map_err(|e| error_body(StatusCode::BAD_REQUEST, &e))?;
        Ok(FormRequest(ClientRequest {
            authorization,
            params,
            address,
            dpop,
            certificate,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_content_types() {
        assert!(super::is_form(Some("application/x-www-form-urlencoded")));
        assert!(super::is_form(Some(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!super::is_form(Some("application/json")));
        assert!(!super::is_form(None));
    }
}

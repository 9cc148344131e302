//! Dynamic client registration's endpoints: `POST /register` (RFC 7591 §3) and
//! `GET/PUT/DELETE /register/{client_id}` with the registration access token (RFC 7592 §2).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use tessera_core::registration::RegistrationAuth;
use tessera_core::{Error, ErrorCode};

use crate::interaction::ClientAddr;
use crate::oauth::respond::{bearer_error, error, no_store_json};
use crate::AppState;

/// The request's token: none, or a bearer token; any other scheme is refused.
fn auth(headers: &HeaderMap) -> Result<RegistrationAuth<'_>, Error> {
    match headers.get(http::header::AUTHORIZATION) {
        None => Ok(RegistrationAuth::None),
        Some(_) => match crate::bearer::presented_token(headers) {
            Some((false, t)) => Ok(RegistrationAuth::Bearer(t)),
            _ => Err(Error::new(
                ErrorCode::InvalidToken,
                "the registration endpoints take a Bearer token",
            )),
        },
    }
}

/// RFC 7591 §3.1: the metadata comes as `application/json`.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Error> {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Error::new(
            ErrorCode::InvalidClientMetadata,
            "the client metadata must be sent as application/json",
        ));
    }
    body.map_err(|_| Error::invalid_request("the request body is too large or could not be read"))
}

fn answer(s: &AppState, result: Result<Value, Error>, status: StatusCode) -> Response {
    match result {
        Ok(v) => {
            let mut res = no_store_json(&v);
            *res.status_mut() = status;
            res
        }
        Err(e) => refused(s, e),
    }
}

fn refused(s: &AppState, e: Error) -> Response {
    match e.code {
        // Registration is off: the endpoint is not there.
        ErrorCode::RequestNotSupported => {
            let mut res = error(s, e);
            *res.status_mut() = StatusCode::NOT_FOUND;
            res
        }
        ErrorCode::InvalidToken => bearer_error(s, e, false),
        _ => error(s, e),
    }
}

/// RFC 7591 §3.1-3.2: `201 Created` with the client information.
pub async fn register(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = match (auth(&headers), json_body(&headers, body)) {
        (Ok(a), Ok(b)) => s.provider.register_client(a, &b, &addr).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    answer(&s, result, StatusCode::CREATED)
}

/// RFC 7592 §2.1.
pub async fn read(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = match auth(&headers) {
        Ok(a) => s.provider.read_registration(&client_id, a).await,
        Err(e) => Err(e),
    };
    answer(&s, result, StatusCode::OK)
}

/// RFC 7592 §2.2.
pub async fn update(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = match (auth(&headers), json_body(&headers, body)) {
        (Ok(a), Ok(b)) => s.provider.update_registration(&client_id, a, &b).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    answer(&s, result, StatusCode::OK)
}

/// RFC 7592 §2.3: `204 No Content`.
pub async fn delete(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = match auth(&headers) {
        Ok(a) => s.provider.delete_registration(&client_id, a).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let mut res = Response::new(axum::body::Body::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            res
        }
        Err(e) => refused(&s, e),
    }
}

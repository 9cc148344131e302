//! The bare signer: the least a server can do to answer `bench/run.sh`'s ES256 client credentials
//! request, as the physical limit Tessera's `es256` row is compared with. It is axum on tokio like
//! Tessera, and per request it reads the form body and the Basic credentials, checks the secret
//! by its SHA-256 digest in constant time, builds the same RFC 9068 claims, signs them with ES256
//! (aws-lc-rs, as Tessera) and answers the same JSON with the same cache headers. Nothing else:
//! no store, no configuration, no logging, no metrics, no limits.
//!
//!     bare_signer PORT CLIENT_ID CLIENT_SECRET ISSUER AUDIENCE SCOPE
//!
//! `GET /readyz` answers 200 once it listens.

// A measuring tool: a bad argument stops it at start.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// The allocator Tessera uses, so that the two differ only in what they do per request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Signer {
    client_id: String,
    secret_digest: [u8; 32],
    issuer: String,
    audience: String,
    scope: String,
    key: EcdsaKeyPair,
    header: String,
    rng: SystemRandom,
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"error\":\"{code}\"}}"),
    )
        .into_response()
}

/// `client_id:secret` from a Basic header (RFC 6749 §2.3.1: each form-urlencoded).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = STANDARD.decode(v.strip_prefix("Basic ")?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

async fn token(State(s): State<Arc<Signer>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut grant_type = None;
    let mut scope = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "grant_type" => grant_type = Some(v.into_owned()),
            "scope" => scope = Some(v.into_owned()),
            _ => {}
        }
    }
    let Some((id, secret)) = basic(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let digest = sha256(secret.as_bytes());
    if id != s.client_id
        || aws_lc_rs::constant_time::verify_slices_are_equal(&digest, &s.secret_digest).is_err()
    {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if grant_type.as_deref() != Some("client_credentials") {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if scope.as_deref().is_some_and(|x| x != s.scope) {
        return error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut jti = [0u8; 16];
    if s.rng.fill(&mut jti).is_err() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    }
    let claims = serde_json::json!({
        "iss": s.issuer,
        "sub": s.client_id,
        "aud": s.audience,
        "client_id": s.client_id,
        "iat": now,
        "exp": now + 3600,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "scope": s.scope,
    });
    let mut jwt = s.header.clone();
    URL_SAFE_NO_PAD.encode_string(claims.to_string().as_bytes(), &mut jwt);
    let Ok(sig) = s.key.sign(&s.rng, jwt.as_bytes()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut jwt);
    let answer = serde_json::json!({
        "access_token": jwt,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": s.scope,
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        answer.to_string(),
    )
        .into_response()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, client_id, secret, issuer, audience, scope] = <[String; 6]>::try_from(args)
        .expect("usage: bare_signer PORT CLIENT_ID CLIENT_SECRET ISSUER AUDIENCE SCOPE");
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("P-256 key generation");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .expect("P-256 key");
    let header = format!(
        "{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"bare","typ":"at+jwt"}"#)
    );
    let state = Arc::new(Signer {
        client_id,
        secret_digest: sha256(secret.as_bytes()),
        issuer,
        audience,
        scope,
        key,
        header,
        rng,
    });
    let app = Router::new()
        .route("/token", post(token))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

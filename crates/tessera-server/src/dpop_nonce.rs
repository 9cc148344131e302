//! RFC 9449 §8: with `dpop.require_nonce`, every answer to a request that carries a DPoP proof
//! hands out the current nonce in `DPoP-Nonce` (also with `use_dpop_nonce`, so the client can
//! make its proof again); the nonce rotates with time (§8.2), so each answer has the latest.

use axum::extract::Request;
use axum::response::Response;
use http::HeaderValue;

use crate::AppState;

/// Whether the answer to `req` hands out the nonce: required, and the request carries a proof.
pub fn wanted(s: &AppState, req: &Request) -> bool {
    s.provider.settings.dpop_require_nonce && req.headers().contains_key("dpop")
}

/// Adds the current nonce to an answer [`wanted`] it.
pub fn hand_out(s: &AppState, res: &mut Response) {
    let nonce = s.provider.dpop_nonce(s.provider.now());
    if let Ok(v) = HeaderValue::from_str(&nonce) {
        res.headers_mut().insert("dpop-nonce", v);
    }
}

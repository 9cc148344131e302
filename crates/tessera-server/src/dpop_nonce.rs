//! RFC 9449 §8: with `dpop.require_nonce`, every answer to a request that carries a DPoP proof
//! hands out the current nonce in `DPoP-Nonce` (also with `use_dpop_nonce`, so the client can
//! make its proof again); the nonce rotates with time (§8.2), so each answer has the latest.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

use crate::AppState;

pub async fn hand_out(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let wants = s.provider.settings.dpop_require_nonce && req.headers().contains_key("dpop");
    let mut res = next.run(req).await;
    if wants {
        let nonce = s.provider.dpop_nonce(s.provider.now());
        if let Ok(v) = HeaderValue::from_str(&nonce) {
            res.headers_mut().insert("dpop-nonce", v);
        }
    }
    res
}

//! The one middleware every routed request passes: its request id, span, deadline and panic
//! guard (`guard.rs`), the size limits, the DPoP nonce and the request metrics, in one layer
//! (each layer is cloned and boxed for every request).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::{dpop_nonce, guard, limits, metrics, AppState, Limits};

/// What the front middleware needs.
#[derive(Clone, Debug)]
pub struct Front {
    pub state: AppState,
    pub limits: Limits,
}

/// Names, logs, times out and guards every request ([`guard::guarded`]); counts it with its
/// answer (a panic's 500 and a deadline's 408 too); refuses one over a size limit or with two
/// `Authorization` headers before any handler sees it; hands out the DPoP nonce on the answer to
/// a request with a proof, when nonces are required.
pub async fn every_request(State(f): State<Front>, req: Request, next: Next) -> Response {
    let tracked = metrics::Tracked::start(&req);
    let res = guard::guarded(req, f.limits.request_timeout, |req| async {
        match limits::refusal(&f.limits, &req) {
            Some(refused) => refused,
            None => {
                let nonce = dpop_nonce::wanted(&f.state, &req);
                let mut res = next.run(req).await;
                if nonce {
                    dpop_nonce::hand_out(&f.state, &mut res);
                }
                res
            }
        }
    })
    .await;
    tracked.finish(&f.state, &res);
    res
}

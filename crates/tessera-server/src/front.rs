//! The one middleware every routed request passes: the size limits, the DPoP nonce and the
//! request metrics, in one layer (each layer is cloned and boxed for every request).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::{dpop_nonce, limits, metrics, AppState, Limits};

/// What the front middleware needs.
#[derive(Clone, Debug)]
pub struct Front {
    pub state: AppState,
    pub limits: Limits,
}

/// Counts every request; refuses one over a size limit before any handler sees it; hands out
/// the DPoP nonce on the answer to a request with a proof, when nonces are required.
pub async fn every_request(State(f): State<Front>, req: Request, next: Next) -> Response {
    let tracked = metrics::Tracked::start(&req);
    let res = match limits::refusal(&f.limits, &req) {
        Some(refused) => refused,
        None => {
            let nonce = dpop_nonce::wanted(&f.state, &req);
            let mut res = next.run(req).await;
            if nonce {
                dpop_nonce::hand_out(&f.state, &mut res);
            }
            res
        }
    };
    tracked.finish(&f.state, &res);
    res
}

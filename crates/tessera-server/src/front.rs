//! The one middleware every routed request passes: its request id, span, deadline and panic
//! guard (`guard.rs`), the size limits, the DPoP nonce and the request metrics, in one layer
//! (each layer is cloned and boxed for every request); [`fronted`] puts each listener behind it.

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::{dpop_nonce, guard, limits, metrics, ops, AppState, Limits};

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
    // Judged before the guard adds its request id: the limits count what the client sent.
    let refused = limits::refusal(&f.limits, &req);
    let res = guard::guarded(req, f.limits.request_timeout, |req| async {
        match refused {
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

/// A listener's routes behind the front middleware and the body limit, with the one answer for
/// a path no route takes: the public listener's and the metrics listener's alike.
pub fn fronted(router: Router<AppState>, state: AppState, limits: Limits) -> Router {
    let front = Front {
        state: state.clone(),
        limits,
    };
    // One layer of layers: axum boxes each `Router::layer` around every route, and clones
    // every box for every request; a stack built first is boxed (and cloned) once. The request
    // id, span, deadline and panic guard are in the front middleware itself (`guard.rs`).
    let every_route = tower::ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(front, every_request));
    router
        .fallback(ops::not_found)
        .with_state(state)
        .layer(every_route)
}

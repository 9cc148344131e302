//! Thin handlers for the protocol endpoints: extract, call the provider, respond.

mod extract;
pub(crate) mod respond;

use axum::extract::State;
use axum::response::Response;

pub use extract::FormRequest;
use respond::{error, json, no_store_json};

use tessera_core::params::Params;
use tessera_core::userinfo::UserInfo;
use tessera_core::Error;

use crate::cors::AnswerFor;
use crate::mtls::ClientCertificate;
use crate::AppState;

/// RFC 8414 §3 / OIDC Discovery §4.
pub async fn discovery(State(s): State<AppState>) -> Response {
    json(&s.provider.discovery(), "public, max-age=300")
}

/// RFC 7517 §5.
pub async fn jwks(State(s): State<AppState>) -> Response {
    json(
        &s.provider.keys().jwks(s.provider.now()),
        "public, max-age=300",
    )
}

/// RFC 6749 §3.2.
pub async fn token(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    let answer = s.provider.token(&req).await;
    let res = match answer.result {
        Ok(body) => {
            // A token was issued, so the grant type is one of ours: a label without allocating.
            let grant = req
                .params
                .get("grant_type")
                .ok()
                .flatten()
                .and_then(tessera_core::model::GrantType::parse)
                .map_or("", |g| g.as_str());
            crate::metrics::token_issued(grant);
            no_store_json(&body)
        }
        // RFC 6749 §5.2: every token endpoint error is 400 but invalid_client's 401 (a denied
        // device or CIBA request's access_denied included).
        Err(e) if e.code == tessera_core::ErrorCode::AccessDenied => {
            let mut res = error(&s, e);
            *res.status_mut() = http::StatusCode::BAD_REQUEST;
            res
        }
        Err(e) => error(&s, e),
    };
    AnswerFor::mark(res, answer.client_id)
}

/// RFC 7662 §2.
pub async fn introspect(
    State(s): State<AppState>,
    headers: http::HeaderMap,
    FormRequest(req): FormRequest,
) -> Response {
    let mut res = if wants_introspection_jwt(&headers) {
        match s.provider.introspect_jwt(&req).await {
            Ok(jwt) => respond::no_store_as(INTROSPECTION_JWT, jwt.into_bytes()),
            Err(e) => error(&s, e),
        }
    } else {
        match s.provider.introspect(&req).await {
            Ok(body) => no_store_json(&body),
            Err(e) => error(&s, e),
        }
    };
    res.headers_mut()
        .insert(http::header::VARY, http::HeaderValue::from_static("accept"));
    res
}

/// RFC 9701 §4 with RFC 9110 §12.5.1: the client asks for the signed answer when `Accept` names
/// it with a non-zero weight at least that of `application/json` (when that is named too).
fn wants_introspection_jwt(headers: &http::HeaderMap) -> bool {
    let (mut jwt, mut json) = (None::<f32>, None::<f32>);
    for value in headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(0.0);
            match media.as_str() {
                INTROSPECTION_JWT => jwt = Some(jwt.map_or(q, |j| j.max(q))),
                "application/json" => json = Some(json.map_or(q, |j| j.max(q))),
                _ => {}
            }
        }
    }
    jwt.is_some_and(|j| j > 0.0 && json.is_none_or(|k| j >= k))
}

/// RFC 9701 §7.1: the media type of a signed introspection answer.
const INTROSPECTION_JWT: &str = "application/token-introspection+jwt";

/// OIDC Core §5.3: `GET` or `POST /userinfo`, bearer token in the header (RFC 6750 §2.1) or the
/// form body (§2.2), never both. Its answer is for the token's application; a refusal without
/// a valid token may be read by any application's origin (CORS).
pub async fn userinfo(
    State(s): State<AppState>,
    method: http::Method,
    ClientCertificate(certificate): ClientCertificate,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (client, mut res) =
        userinfo_answer(&s, (method, certificate.as_deref()), &headers, &body).await;
    res.extensions_mut().insert(match client {
        Some(c) => AnswerFor::Client(c),
        None => AnswerFor::AnyApplication,
    });
    res
}

async fn userinfo_answer(
    s: &AppState,
    (method, certificate): (http::Method, Option<&[u8]>),
    headers: &http::HeaderMap,
    body: &[u8],
) -> (Option<String>, Response) {
    let refuse = |why: &'static str, dpop: bool| {
        (
            None,
            respond::bearer_error(s, Error::invalid_request(why), dpop),
        )
    };
    let header_token = match headers.get(http::header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(_)) => match crate::bearer::presented_token(headers) {
            Some(t) => Some(t),
            None => {
                return refuse(
                    "the Authorization header must use the Bearer or the DPoP scheme",
                    false,
                )
            }
        },
        Some(Err(_)) => return refuse("the Authorization header is not visible ASCII", false),
    };
    let is_form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let body_token = if method == http::Method::POST && is_form {
        match Params::parse(body).and_then(|p| p.get("access_token").map(|t| t.map(str::to_owned)))
        {
            Ok(t) => t,
            Err(e) => return (None, respond::bearer_error(s, e, false)),
        }
    } else {
        None
    };
    // RFC 6750 §2.2: a token in the body is a bearer token.
    let (dpop, token) = match (header_token, body_token.as_deref()) {
        (Some(_), Some(_)) => {
            return refuse("the access token was sent twice (header and body)", false)
        }
        (Some(t), None) => t,
        (None, Some(t)) => (false, t),
        (None, None) => return (None, respond::bearer_challenge(s)),
    };
    let url = s.provider.settings.endpoint("/userinfo");
    let alias = s.provider.settings.mtls_alias("/userinfo");
    let at = crate::bearer::Target {
        method: method.as_str(),
        url: &url,
        alias: alias.as_deref(),
    };
    let presented = match crate::bearer::presentation(headers, (dpop, token), at, certificate) {
        Ok(p) => p,
        Err(why) => {
            let e = Error::new(tessera_core::ErrorCode::InvalidDpopProof, why);
            return (None, respond::bearer_error(s, e, true));
        }
    };
    let answer = s.provider.userinfo(presented).await;
    let res = match answer.result {
        Ok(UserInfo::Json(body)) => no_store_json(&body),
        Ok(UserInfo::Jwt(jwt)) => respond::no_store_as("application/jwt", jwt.into_bytes()),
        Err(e) => respond::bearer_error(s, e, dpop),
    };
    (answer.client_id, res)
}

/// RFC 9126 §2: `201 Created` with the `request_uri`, or the error as at the token endpoint.
pub async fn par(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    let answer = s.provider.push_authorization_request(&req).await;
    let res = match answer.result {
        Ok(pushed) => {
            let mut r = no_store_json(&pushed);
            *r.status_mut() = http::StatusCode::CREATED;
            r
        }
        Err(e) => error(&s, e),
    };
    AnswerFor::mark(res, answer.client_id)
}

/// OpenID CIBA Core §7: the backchannel authentication request.
pub async fn backchannel(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    let answer = s.provider.backchannel_authentication(&req).await;
    let res = match answer.result {
        Ok(body) => no_store_json(&body),
        Err(e) => error(&s, e),
    };
    AnswerFor::mark(res, answer.client_id)
}

/// RFC 7009 §2.
pub async fn revoke(State(s): State<AppState>, FormRequest(req): FormRequest) -> Response {
    let answer = s.provider.revoke(&req).await;
    let res = match answer.result {
        Ok(()) => no_store_json(&serde_json::json!({})),
        Err(e) => error(&s, e),
    };
    AnswerFor::mark(res, answer.client_id)
}

#[cfg(test)]
mod tests {
    use super::wants_introspection_jwt;

    fn accept(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(http::header::ACCEPT, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_signed_answer_only_when_accept_prefers_it() {
        for (values, jwt) in [
            (vec!["application/token-introspection+jwt"], true),
            (
                vec!["Application/Token-Introspection+JWT; charset=utf-8"],
                true,
            ),
            (
                vec!["application/json", "application/token-introspection+jwt"],
                true,
            ),
            (vec!["application/token-introspection+jwt;q=0"], false),
            (
                vec!["application/json;q=1, application/token-introspection+jwt;q=0.1"],
                false,
            ),
            (
                vec!["application/json;q=0.5, application/token-introspection+jwt"],
                true,
            ),
            (vec!["*/*"], false),
            (vec![], false),
            (
                vec!["application/token-introspection+jwt;q=nonsense"],
                false,
            ),
        ] {
            assert_eq!(wants_introspection_jwt(&accept(&values)), jwt, "{values:?}");
        }
    }
}

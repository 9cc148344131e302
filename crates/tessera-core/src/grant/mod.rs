//! The token endpoint (RFC 6749 §3.2): grants as a closed enum, parsed from the form and matched
//! exhaustively, one file per `grant_type`.

mod authorization_code;
mod client_credentials;
mod jwt_bearer;
mod password;
mod refresh_token;
mod token_exchange;
mod user_tokens;

pub(crate) use refresh_token::RefreshToken;
pub use token_exchange::ExchangeRequest;
pub(crate) use user_tokens::authentication_claims;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Actor;
use crate::client_auth::{Answered, ClientRequest};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::model::GrantType;
use crate::params::{parse_scope, Params};
use crate::provider::{LoadedClient, Provider};
use crate::token::Binding;

/// Who a token request is for: the client that authenticated, and what its tokens are bound to
/// (RFC 9449 §5: the request's DPoP proof key; RFC 8705 §3: its client certificate), if any.
pub(crate) struct Caller<'a> {
    pub loaded: &'a LoadedClient,
    pub binding: Binding<'a>,
}

impl std::ops::Deref for Caller<'_> {
    type Target = LoadedClient;

    fn deref(&self) -> &LoadedClient {
        self.loaded
    }
}

/// A token request, by `grant_type`. `Debug` names the grant only: the fields hold codes,
/// tokens and passwords.
#[derive(Clone, PartialEq)]
pub enum TokenRequest {
    /// RFC 6749 §4.4.2.
    ClientCredentials {
        scope: Option<Vec<String>>,
        resources: Vec<String>,
    },
    /// RFC 6749 §4.1.3, RFC 7636 §4.5.
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// RFC 6749 §6, RFC 8707 §2.2.
    RefreshToken {
        refresh_token: String,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
    },
    /// RFC 6749 §4.3.2.
    Password {
        username: String,
        password: String,
        scope: Option<Vec<String>>,
    },
    /// RFC 7523 §2.1, RFC 8707 §2.1.
    JwtBearer {
        assertion: String,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
    },
    /// RFC 8693 §2.1.
    TokenExchange(ExchangeRequest),
    /// RFC 7522 §2.1.
    Saml2Bearer {
        assertion: String,
        scope: Option<Vec<String>>,
        resources: Vec<String>,
    },
    /// RFC 8628 §3.4.
    DeviceCode { device_code: String },
    /// OpenID CIBA Core §10.1.
    Ciba { auth_req_id: String },
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            TokenRequest::ClientCredentials { .. } => "ClientCredentials",
            TokenRequest::AuthorizationCode { .. } => "AuthorizationCode",
            TokenRequest::RefreshToken { .. } => "RefreshToken",
            TokenRequest::Password { .. } => "Password",
            TokenRequest::JwtBearer { .. } => "JwtBearer",
            TokenRequest::TokenExchange(_) => "TokenExchange",
            TokenRequest::Saml2Bearer { .. } => "Saml2Bearer",
            TokenRequest::DeviceCode { .. } => "DeviceCode",
            TokenRequest::Ciba { .. } => "Ciba",
        };
        f.write_str(name)
    }
}

impl TokenRequest {
    /// The grant type the request uses.
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::Password { .. } => GrantType::Password,
            TokenRequest::JwtBearer { .. } => GrantType::JwtBearer,
            TokenRequest::TokenExchange(_) => GrantType::TokenExchange,
            TokenRequest::Saml2Bearer { .. } => GrantType::Saml2Bearer,
            TokenRequest::DeviceCode { .. } => GrantType::DeviceCode,
            TokenRequest::Ciba { .. } => GrantType::Ciba,
        }
    }

    /// RFC 6749 §4.4.2, RFC 8707 §2.1: parses the grant-specific parameters.
    pub fn parse(params: &Params) -> Result<TokenRequest> {
        let grant_type = params.require("grant_type")?;
        match grant_type {
            "client_credentials" => Ok(TokenRequest::ClientCredentials {
                scope: params.get("scope")?.map(parse_scope).transpose()?,
                resources: parse_resources(params)?,
            }),
            "authorization_code" => Ok(TokenRequest::AuthorizationCode {
                code: params.require("code")?.to_owned(),
                redirect_uri: params.get("redirect_uri")?.map(str::to_owned),
                code_verifier: params.get("code_verifier")?.map(str::to_owned),
            }),
            "password" => Ok(TokenRequest::Password {
                username: params.require("username")?.to_owned(),
                password: params.require("password")?.to_owned(),
                scope: params.get("scope")?.map(parse_scope).transpose()?,
            }),
            "urn:ietf:params:oauth:grant-type:token-exchange" => {
                let actor = match (params.get("actor_token")?, params.get("actor_token_type")?) {
                    (Some(t), Some(ty)) => Some((t.to_owned(), ty.to_owned())),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(Error::invalid_request(
                            "actor_token requires actor_token_type",
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(Error::invalid_request(
                            "actor_token_type requires actor_token",
                        ))
                    }
                };
                Ok(TokenRequest::TokenExchange(ExchangeRequest {
                    subject_token: params.require("subject_token")?.to_owned(),
                    subject_token_type: params.require("subject_token_type")?.to_owned(),
                    actor_token: actor,
                    requested_token_type: params.get("requested_token_type")?.map(str::to_owned),
                    subject_issuer: params.get("subject_issuer")?.map(str::to_owned),
                    audiences: params
                        .all("audience")
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    resources: parse_resources(params)?,
                    scope: params.get("scope")?.map(parse_scope).transpose()?,
                }))
            }
            "urn:ietf:params:oauth:grant-type:saml2-bearer" => Ok(TokenRequest::Saml2Bearer {
                assertion: params.require("assertion")?.to_owned(),
                scope: params.get("scope")?.map(parse_scope).transpose()?,
                resources: parse_resources(params)?,
            }),
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => Ok(TokenRequest::JwtBearer {
                assertion: params.require("assertion")?.to_owned(),
                scope: params.get("scope")?.map(parse_scope).transpose()?,
                resources: parse_resources(params)?,
            }),
            "urn:ietf:params:oauth:grant-type:device_code" => Ok(TokenRequest::DeviceCode {
                device_code: params.require("device_code")?.to_owned(),
            }),
            "urn:openid:params:grant-type:ciba" => Ok(TokenRequest::Ciba {
                auth_req_id: params.require("auth_req_id")?.to_owned(),
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: params.require("refresh_token")?.to_owned(),
                scope: params.get("scope")?.map(parse_scope).transpose()?,
                resources: parse_resources(params)?,
            }),
            other => Err(Error::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {other} is not supported by this authorization server"),
            )),
        }
    }
}

/// RFC 8707 §2: each `resource` is an absolute URI without a fragment.
pub(crate) fn parse_resources(params: &Params) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in params.all("resource") {
        let url = url::Url::parse(r)
            .map_err(|_| Error::invalid_target(format!("resource {r:?} is not an absolute URI")))?;
        if url.fragment().is_some() {
            return Err(Error::invalid_target(format!(
                "resource {r:?} must not contain a fragment"
            )));
        }
        if !out.iter().any(|x| x == r) {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}

/// RFC 6749 §5.1 successful response, with OIDC Core §3.1.3.3 `id_token`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl TokenResponse {
    /// RFC 6749 §5.1: an access token and its granted scope (omitted when empty); the refresh
    /// token, ID token and RFC 8693 issued type are added by the grants that have them. Its
    /// `token_type` is `DPoP` when the token is DPoP-bound (RFC 9449 §5), `Bearer` otherwise
    /// (a certificate-bound token too, RFC 8705 §3).
    pub(crate) fn issued(
        access_token: String,
        expires_in: i64,
        scope: &[String],
        binding: Binding<'_>,
    ) -> Self {
        TokenResponse {
            access_token,
            token_type: if binding.jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            }
            .into(),
            expires_in,
            scope: (!scope.is_empty()).then(|| scope.join(" ")),
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        }
    }
}

/// Never the tokens themselves.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// `POST /token`: authenticates the client, checks its DPoP proof (RFC 9449 §5), then runs
    /// the grant.
    pub async fn token(&self, req: &ClientRequest) -> Answered<TokenResponse> {
        let now = self.now();
        // RFC 6749 §5.2: an unauthenticated caller learns nothing about its request but invalid_client.
        let client = match self.authenticate_client(req).await {
            Ok(c) => c,
            Err(e) => return Answered::anonymous(e),
        };
        let answer = self.bound_grant(&client, req, now).await;
        if answer.is_ok() {
            let grant = req.params.get("grant_type").ok().flatten();
            if let Some(g) = grant.and_then(GrantType::parse) {
                self.usage.count(
                    crate::usage::token_metric(g),
                    Some(&client.client.client_id),
                    now,
                );
            }
        }
        if self.settings.audit_tokens {
            self.audit_token(&client.client.client_id, req, &answer)
                .await;
        }
        Answered::for_client(&client.client.client_id, answer)
    }

    /// Runs the grant with the tokens bound to what the request proves: its DPoP key (RFC 9449
    /// §5; required with `dpop_bound_access_tokens`) and its client certificate (RFC 8705 §3;
    /// with `tls_client_certificate_bound_access_tokens`, which requires one).
    async fn bound_grant(
        &self,
        client: &LoadedClient,
        req: &ClientRequest,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let jkt = self.request_binding(req, "/token", now).await?;
        if jkt.is_none() && client.client.dpop_bound_access_tokens {
            return Err(crate::dpop::invalid_proof(
                "this application's access tokens are DPoP-bound: send a DPoP proof (RFC 9449)",
            ));
        }
        let x5t = match (
            &req.certificate,
            client.client.mtls.tls_client_certificate_bound_access_tokens,
        ) {
            (Some(der), true) => Some(crate::mtls::thumbprint(der)),
            (None, true) => {
                return Err(Error::invalid_request(
                    "this application's access tokens are bound to its client certificate: send the request over mutual TLS (RFC 8705)",
                ))
            }
            (_, false) => None,
        };
        let caller = Caller {
            loaded: client,
            binding: Binding {
                jkt: jkt.as_deref(),
                x5t: x5t.as_deref(),
            },
        };
        self.grant(&caller, req, now).await
    }

    /// Runs the grant an authenticated client asked for.
    async fn grant(
        &self,
        client: &Caller<'_>,
        req: &ClientRequest,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let grant = TokenRequest::parse(&req.params)?;
        // RFC 6749 §5.2 unauthorized_client: "The authenticated client is not authorized to use
        // this authorization grant type."
        let grant_type = grant.grant_type();
        if !client.client.grant_types.contains(&grant_type) {
            return Err(Error::unauthorized_client(format!(
                "the client is not allowed to use the {} grant",
                grant_type.name()
            )));
        }
        // Each grant's future waits on the heap but client credentials' (the smallest, and the
        // most frequent): otherwise every token request's future is as large as the largest
        // grant's (token exchange's made it 7.3 KB; 1.8 KB so) and is copied whole each time
        // it moves.
        match grant {
            TokenRequest::ClientCredentials { scope, resources } => {
                self.client_credentials(client, scope, resources, now).await
            }
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                Box::pin(self.authorization_code(client, &code, redirect_uri, code_verifier, now))
                    .await
            }
            TokenRequest::RefreshToken {
                refresh_token,
                scope,
                resources,
            } => Box::pin(self.refresh_token(client, &refresh_token, scope, &resources, now)).await,
            TokenRequest::Password {
                username,
                password,
                scope,
            } => {
                Box::pin(self.password_grant(
                    client,
                    &username,
                    &password,
                    scope,
                    &req.address,
                    now,
                ))
                .await
            }
            TokenRequest::JwtBearer {
                assertion,
                scope,
                resources,
            } => Box::pin(self.jwt_bearer(client, &assertion, scope, resources, now)).await,
            TokenRequest::TokenExchange(x) => Box::pin(self.token_exchange(client, x, now)).await,
            TokenRequest::Saml2Bearer {
                assertion,
                scope,
                resources,
            } => Box::pin(self.saml2_bearer(client, &assertion, scope, resources, now)).await,
            TokenRequest::DeviceCode { device_code } => {
                Box::pin(self.device_code_grant(client, &device_code, now)).await
            }
            TokenRequest::Ciba { auth_req_id } => {
                Box::pin(self.ciba_grant(client, &auth_req_id, now)).await
            }
        }
    }

    /// With `admin.audit_tokens`: a `token.issued` or `token.refused` event for the client.
    async fn audit_token(
        &self,
        client_id: &str,
        req: &ClientRequest,
        answer: &Result<TokenResponse>,
    ) {
        let grant_type = req.params.get("grant_type").ok().flatten().unwrap_or("");
        let (action, detail) = match answer {
            Ok(t) => (
                "token.issued",
                json!({ "grant_type": grant_type, "scope": t.scope, "refresh_token": t.refresh_token.is_some() }),
            ),
            Err(e) => (
                "token.refused",
                json!({ "grant_type": grant_type, "error": e.code.as_str(), "error_description": e.description }),
            ),
        };
        let actor = Actor::client(client_id);
        let target = format!("client:{client_id}");
        self.record(&actor, action, &target, Some(client_id), detail)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_grants() {
        let p =
            Params::parse(b"grant_type=client_credentials&scope=a%20b&resource=https%3A%2F%2Fapi")
                .unwrap();
        assert_eq!(
            TokenRequest::parse(&p).unwrap(),
            TokenRequest::ClientCredentials {
                scope: Some(vec!["a".into(), "b".into()]),
                resources: vec!["https://api".into()]
            }
        );
        let e =
            TokenRequest::parse(&Params::parse(b"grant_type=urn%3Aexample").unwrap()).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
        let e = TokenRequest::parse(&Params::parse(b"scope=a").unwrap()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = TokenRequest::parse(
            &Params::parse(b"grant_type=client_credentials&resource=relative").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        let e = TokenRequest::parse(
            &Params::parse(b"grant_type=client_credentials&resource=https%3A%2F%2Fa%23f").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
    }

    proptest! {
        #[test]
        fn token_request_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
            if let Ok(p) = Params::parse(&body) {
                let _ = TokenRequest::parse(&p);
            }
        }
    }
}

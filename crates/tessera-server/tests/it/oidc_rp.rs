//! A real relying-party library, the `openidconnect` crate, against Tessera over real HTTP:
//! discovery, code flow with PKCE, ID token validation (signature, nonce, at_hash), userinfo and
//! refresh.

use std::future::IntoFuture;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use tessera_core::model::ConsentMode;

use crate::flow::{redirect_params, Browser, PASSWORD, RP};
use crate::support::Harness;

#[tokio::test]
async fn openidconnect_crate_code_flow_userinfo_and_refresh() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let h = Harness::with_issuer(&issuer).await;
    let uid = h.user("alice").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    tokio::spawn(axum::serve(listener, h.router.clone()).into_future());

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.id.clone()),
        Some(ClientSecret::new(app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(RP.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let b = Browser::new(&h);
    let path = format!("{}?{}", url.path(), url.query().unwrap());
    let page = b.get(&path).await;
    let p = redirect_params(&b.login(&page, "alice", PASSWORD).await);
    assert_eq!(&p["state"], csrf.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token response");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("valid ID token");
    assert_eq!(claims.subject().as_str(), uid);
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.subject().as_str(), uid);

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    let again = refreshed
        .id_token()
        .expect("id_token on refresh")
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("valid");
    assert_eq!(again.subject().as_str(), uid);
}

/// Step-up as a relying-party library asks for it: `acr_values` from discovery's
/// `acr_values_supported`; the ID token's `acr` and `amr` (RFC 8176) say what was done.
#[tokio::test]
async fn openidconnect_crate_asks_for_an_acr_and_reads_acr_and_amr() {
    use openidconnect::{AuthenticationContextClass, AuthenticationMethodReference};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let h = Harness::with_issuer(&issuer).await;
    crate::mfa::scheme(&h, "mfa", crate::mfa::MFA, true).await;
    h.user("alice").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    tokio::spawn(axum::serve(listener, h.router.clone()).into_future());

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let mfa = AuthenticationContextClass::new(crate::mfa::MFA.into());
    assert!(metadata
        .acr_values_supported()
        .is_some_and(|v| v.contains(&mfa)));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.id.clone()),
        Some(ClientSecret::new(app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(RP.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(mfa.clone())
        .set_pkce_challenge(challenge)
        .url();
    let b = Browser::new(&h);
    let path = format!("{}?{}", url.path(), url.query().unwrap());
    let enrol = b.login(&b.get(&path).await, "alice", PASSWORD).await;
    let (_, _, done) = crate::mfa::enrol_totp(&h, &b, &enrol).await;
    let p = redirect_params(&done);
    let tokens = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token response");
    let claims = tokens
        .id_token()
        .expect("id_token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect("valid ID token");
    assert_eq!(claims.auth_context_ref(), Some(&mfa));
    let amr: Vec<String> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m: &AuthenticationMethodReference| m.as_str().to_owned())
        .collect();
    assert_eq!(amr, ["pwd", "otp", "mfa"]);
    assert!(claims.auth_time().is_some());
}

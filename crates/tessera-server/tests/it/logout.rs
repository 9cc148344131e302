//! Logout: RP-initiated with id_token_hint or user confirmation, the session and its online grants
//! end, offline_access grants stay, front-channel iframes and a back-channel logout token.

use std::time::Duration;

use http::StatusCode;
use tessera_core::model::ConsentMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::flow::{code_request, enc, hidden, jwt_claims, redirect_params, sign_in, Browser};
use crate::support::{Harness, ISSUER};

/// A one-shot HTTP receiver on loopback: returns its URL and the body of the first request.
pub async fn receiver() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let (url, raw) = raw_receiver().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Ok((_, body)) = raw.await {
            let _ = tx.send(body);
        }
    });
    (url, rx)
}

/// [`receiver`] with the request's head (request line and header fields) beside its body.
pub async fn raw_receiver() -> (String, tokio::sync::oneshot::Receiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("back-channel receiver");
    let url = format!(
        "http://{}/backchannel",
        listener.local_addr().expect("back-channel receiver")
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("back-channel receiver");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.expect("back-channel receiver");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().expect("back-channel receiver"))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .expect("back-channel receiver");
                    let _ = tx.send((head.to_owned(), body.to_owned()));
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (url, rx)
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_notifies_every_application() {
    let h = Harness::new().await;
    h.user("alice").await;
    let (bc_url, bc_body) = receiver().await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.frontchannel_logout_uri = Some("https://rp.example.com/frontchannel".into());
            s.backchannel_logout_uri = Some(bc_url.clone());
        })
        .await;
    let b = Browser::new(&h);
    let (path, v) = code_request(&app, "openid", "");
    let p = sign_in(&b, &path, "alice").await;
    let online = h.exchange(&app, &p["code"], Some(&v)).await;
    let (path, v) = code_request(&app, "openid offline_access", "");
    let p = redirect_params(&b.get(&path).await);
    let offline = h.exchange(&app, &p["code"], Some(&v)).await;
    let id_token = online.json["id_token"].as_str().unwrap();
    let sid = jwt_claims(id_token)["sid"].as_str().unwrap().to_owned();

    let q = enc(&[
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", "https://rp.example.com/bye"),
        ("state", "xyz"),
    ]);
    let r = b.get(&format!("/logout?{q}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("You are signed out"));
    assert!(
        r.text.contains("https://rp.example.com/bye?state=xyz")
            || r.text
                .contains("https:&#x2f;&#x2f;rp.example.com&#x2f;bye?state&#x3d;xyz"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("frontchannel?iss="),
        "front-channel iframe: {}",
        r.text
    );
    assert!(r
        .header("content-security-policy")
        .contains("frame-src https://rp.example.com"));
    assert_eq!(b.cookie("tessera_session"), None, "cookie cleared");

    let body = tokio::time::timeout(Duration::from_secs(10), bc_body)
        .await
        .expect("back-channel logout in time")
        .unwrap();
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], app.id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(
        claims.get("nonce").is_none(),
        "Back-Channel Logout §2.4: no nonce"
    );

    let (path, _) = code_request(&app, "openid", "&prompt=none");
    assert_eq!(
        redirect_params(&b.get(&path).await)["error"],
        "login_required"
    );
    let refresh = |rt: &str| enc(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &refresh(online.json["refresh_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        r.error(),
        "invalid_grant",
        "a session-bound grant ends with the session"
    );
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &refresh(offline.json["refresh_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "offline_access outlives the session: {}",
        r.json
    );
}

#[tokio::test]
async fn logout_without_a_hint_asks_the_user() {
    let h = Harness::new().await;
    h.user("bob").await;
    let app = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let b = Browser::new(&h);
    let (path, _) = code_request(&app, "openid", "");
    sign_in(&b, &path, "bob").await;
    let q = enc(&[
        ("client_id", &app.id),
        ("post_logout_redirect_uri", "https://evil.example/"),
    ]);
    assert_eq!(
        b.get(&format!("/logout?{q}")).await.status,
        StatusCode::BAD_REQUEST,
        "unregistered redirect"
    );
    let page = b.get(&format!("/logout?client_id={}", app.id)).await;
    assert!(page.text.contains("Sign out?"), "{}", page.text);
    let forged = b.post("/logout", "confirm=yes").await;
    assert!(
        forged.text.contains("Sign out?"),
        "no CSRF token: still asking"
    );
    let csrf = hidden(&page.text, "csrf");
    let done = b
        .post("/logout", &enc(&[("confirm", "yes"), ("csrf", &csrf)]))
        .await;
    assert!(done.text.contains("You are signed out"));
    let (path, _) = code_request(&app, "openid", "&prompt=none");
    assert_eq!(
        redirect_params(&b.get(&path).await)["error"],
        "login_required"
    );
}

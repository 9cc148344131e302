//! Application logos: uploaded through the admin API (checked by size and by their bytes),
//! served publicly with safe headers, shown on the sign-in page, removed, and gone with their
//! application.

use axum::body::Body;
use base64::Engine;
use http::{Request, StatusCode};
use serde_json::json;
use tessera_core::model::ClientType;

use crate::admin_api::{automation, call, problem, setup, V1};
use crate::flow::code_request;
use crate::support::{Harness, Reply, ISSUER};

/// A real 16×16 PNG.
pub const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAIklEQVR42mP4sEDkPyWYQS7lxH9K8CAwYDQMRsNgNAzAGADDx1+f8fuOmwAAAABJRU5ErkJggg==";

pub fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .expect("png")
}

async fn upload(h: &Harness, id: &str, token: &str, content_type: &str, bytes: Vec<u8>) -> Reply {
    let req = Request::builder()
        .method("PUT")
        .uri(format!("{V1}/applications/{id}/logo"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Body::from(bytes))
        .expect("request");
    h.send(req).await
}

#[tokio::test]
async fn logos_are_checked_served_shown_and_removed() {
    let h = setup().await;
    let write = automation(&h, &["config:write"]).await;
    let read = automation(&h, &["config:read"]).await;
    let r = call(&h, "POST", "/applications", &write,
        Some(json!({"name": "Storefront", "type": ClientType::Web.as_str(), "redirect_uris": [crate::flow::RP]}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["application"]["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(r.json["application"].get("logo_uri"), None);

    problem(&upload(&h, &id, &read, "image/png", png()).await, 403);
    // Judged by the bytes: a PNG sent as JPEG, an SVG, a text file, an empty or too large file.
    let refused = upload(&h, &id, &write, "image/jpeg", png()).await;
    problem(&refused, 422);
    assert_eq!(refused.json["invalid-params"][0]["name"], "logo");
    assert!(refused.json["detail"]
        .as_str()
        .unwrap()
        .contains("image/png"));
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    assert!(
        upload(&h, &id, &write, "image/svg+xml", svg).await.json["detail"]
            .as_str()
            .unwrap()
            .contains("SVG")
    );
    problem(
        &upload(&h, &id, &write, "image/png", b"not an image".to_vec()).await,
        422,
    );
    problem(&upload(&h, &id, &write, "image/png", Vec::new()).await, 422);
    let big = [png(), vec![0u8; 300 * 1024]].concat();
    let r = upload(&h, &id, &write, "image/png", big).await;
    problem(&r, 422);
    assert!(r.json["detail"]
        .as_str()
        .unwrap()
        .contains("at most 256 KiB"));
    let huge = vec![0u8; 2 * 1024 * 1024];
    assert_eq!(upload(&h, &id, &write, "image/png", huge).await.status, 413);
    assert_eq!(
        h.get(&format!("/logo/{id}")).await.status,
        404,
        "nothing stored"
    );

    let r = upload(&h, &id, &write, "image/png", png()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let uri = r.json["logo_uri"].as_str().expect("logo_uri").to_owned();
    assert!(uri.starts_with(&format!("{ISSUER}/logo/{id}?v=")), "{uri}");
    let served = h.get(uri.strip_prefix(ISSUER).unwrap()).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.bytes, png());
    assert_eq!(served.header("content-type"), "image/png");
    assert_eq!(served.header("x-content-type-options"), "nosniff");
    assert!(served.header("content-security-policy").contains("sandbox"));
    let again = h
        .send(
            Request::builder()
                .uri(format!("/logo/{id}"))
                .header("if-none-match", served.header("etag"))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // The sign-in page shows it.
    let c = crate::support::TestClient {
        id: id.clone(),
        secret: String::new(),
    };
    let (path, _) = code_request(&c, "openid", "");
    let page = h.get(&path).await;
    assert!(page.text.contains("class=\"app-logo\""), "{}", page.text);
    assert!(page.text.contains(&format!("/logo/{id}?v=")));

    let admin = automation(&h, &["administrator"]).await;
    let log = call(&h, "GET", &format!("/audit?application={id}"), &admin, None).await;
    assert_eq!(log.json["items"][0]["action"], "client.updated");
    assert_eq!(log.json["items"][0]["detail"]["fields"], json!(["logo"]));

    // Removed: gone from the pages; set again, then gone with the application.
    let path_logo = format!("/applications/{id}/logo");
    assert_eq!(
        call(&h, "DELETE", &path_logo, &write, None).await.status,
        204
    );
    assert_eq!(h.get(&format!("/logo/{id}")).await.status, 404);
    let shown = call(&h, "GET", &format!("/applications/{id}"), &read, None).await;
    assert_eq!(shown.json.get("logo_uri"), None);
    assert_eq!(
        upload(&h, &id, &write, "image/png", png()).await.status,
        200
    );
    assert_eq!(
        call(&h, "DELETE", &format!("/applications/{id}"), &write, None)
            .await
            .status,
        204
    );
    assert_eq!(h.get(&format!("/logo/{id}")).await.status, 404);
    assert_eq!(h.provider.store.get_logo(&id).await.expect("store"), None);
}

/// CRC-32 (ISO 3309, as PNG chunks use it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The 16×16 PNG with its header claiming `width`×`height` (the chunk's CRC made right).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut p = png();
    p[16..20].copy_from_slice(&width.to_be_bytes());
    p[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

/// A logo's pixel dimensions are bounded, read from its header without decoding it: a small file
/// claiming 40000×40000 pixels would cost every browser that shows the sign-in page.
#[tokio::test]
async fn logos_of_huge_dimensions_are_refused() {
    let h = setup().await;
    let write = automation(&h, &["config:write"]).await;
    let r = call(&h, "POST", "/applications", &write,
        Some(json!({"name": "Storefront", "type": ClientType::Web.as_str(), "redirect_uris": [crate::flow::RP]}))).await;
    let id = r.json["application"]["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (bytes, kind) in [
        (png_claiming(40_000, 40_000), "image/png"),
        (png_claiming(16, 100_000), "image/png"),
        (
            [
                b"GIF89a".as_slice(),
                &60_000u16.to_le_bytes(),
                &60_000u16.to_le_bytes(),
                &[0u8; 20],
            ]
            .concat(),
            "image/gif",
        ),
    ] {
        let r = upload(&h, &id, &write, kind, bytes).await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "logo");
        assert!(
            r.json["detail"].as_str().unwrap().contains("pixels"),
            "{}",
            r.text
        );
    }
    assert_eq!(h.get(&format!("/logo/{id}")).await.status, 404);
    let r = upload(&h, &id, &write, "image/png", png_claiming(16, 16)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

//! Mutual TLS (RFC 8705): `tls_client_auth` (a CA-issued certificate matched by subject DN or
//! SAN) and `self_signed_tls_client_auth` (a certificate whose key the application registered),
//! certificate-bound access tokens (`cnf.x5t#S256`) checked at the admin API and userinfo,
//! discovery, the rules when saving, and both ways a certificate arrives: Tessera's own TLS
//! (`tessera serve` with `tls.*`) and a trusted proxy's header.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use serde_json::json;
use tessera_core::admin::{Caller, ClientSpec};
use tessera_core::model::{AuthMethod, ClientType, MutualTls};
use tessera_core::secret::{b64url, sha256};

use crate::flow::jwt_claims;
use crate::support::{Harness, Reply, TestClient};

const HEADER: &str = "x-ssl-client-cert";

/// A CA, and the certificates it issues for TLS clients (and servers).
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

/// A certificate and its private key, PEM.
struct Issued {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("ca").pem();
        Ca { params, key, pem }
    }

    fn issue(&self, cn: &str, sans: Vec<SanType>, server: bool) -> Issued {
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::OrganizationName, "Example");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().expect("key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(&key, &issuer).expect("cert");
        Issued {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            key,
        }
    }
}

fn self_signed(cn: &str) -> Issued {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::OrganizationName, "Example");
    p.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = p.self_signed(&key).expect("cert");
    Issued {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        key,
    }
}

/// The public JWK of a P-256 certificate key.
fn jwk_of(i: &Issued) -> serde_json::Value {
    let raw = i.key.public_key_raw();
    json!({"kty": "EC", "crv": "P-256", "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])})
}

/// A harness that trusts `ca` for tls_client_auth and takes certificates from the proxy header
/// when the request comes from 127.0.0.1.
async fn harness(ca: &Ca) -> Harness {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("pem");
    Harness::with_settings(crate::support::ISSUER, |s| {
        s.mtls.enabled = true;
        s.mtls.trust_anchors = vec![der.to_vec()];
        s.mtls.endpoint_base = Some("https://mtls.localhost:8443".into());
    })
    .await
    .with_state(|st| {
        st.certificate_proxy = Some(tessera_server::mtls::CertificateProxy {
            header: HEADER.parse().expect("header"),
            trusted: vec!["127.0.0.1".parse().expect("net")],
        })
    })
}

/// A request from `from` with the certificate in the proxy header (URL-encoded PEM).
async fn send_with(
    h: &Harness,
    mut req: Request<Body>,
    cert: Option<&Issued>,
    from: &str,
) -> Reply {
    if let Some(c) = cert {
        let escaped: String = form_urlencoded::byte_serialize(c.pem.as_bytes()).collect();
        req.headers_mut()
            .insert(HEADER, escaped.replace('+', "%20").parse().expect("header"));
    }
    let peer: SocketAddr = format!("{from}:40000").parse().expect("addr");
    req.extensions_mut().insert(ConnectInfo(peer));
    h.send(req).await
}

fn token_request(c: &TestClient) -> Request<Body> {
    Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "grant_type=client_credentials&client_id={}",
            c.id
        )))
        .expect("request")
}

async fn token(h: &Harness, c: &TestClient, cert: Option<&Issued>, from: &str) -> Reply {
    send_with(h, token_request(c), cert, from).await
}

async fn create(h: &Harness, spec: ClientSpec) -> Result<TestClient, String> {
    h.provider
        .admin(Caller::local())
        .create_client(&spec)
        .await
        .map(|c| TestClient {
            id: c.client.client_id,
            secret: String::new(),
        })
        .map_err(|e| format!("{e:?}"))
}

fn m2m(name: &str, method: AuthMethod, mtls: MutualTls) -> ClientSpec {
    ClientSpec {
        auth_method: Some(method),
        mtls,
        introspection_allowed: Some(true),
        ..ClientSpec::new(name, ClientType::M2m)
    }
}

#[tokio::test]
async fn tls_client_auth_takes_a_trusted_certificate_with_the_registered_subject() {
    let ca = Ca::new("Example CA");
    let h = harness(&ca).await;
    let by_dn = create(
        &h,
        m2m(
            "by dn",
            AuthMethod::TlsClientAuth,
            MutualTls {
                tls_client_auth_subject_dn: Some("CN=client one,O=Example".into()),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    let by_san = create(
        &h,
        m2m(
            "by san",
            AuthMethod::TlsClientAuth,
            MutualTls {
                tls_client_auth_san_dns: Some("client.example.com".into()),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    let one = ca.issue(
        "Client One",
        vec![SanType::DnsName("client.example.com".try_into().unwrap())],
        false,
    );
    let two = ca.issue("Client Two", vec![], false);
    let forged = self_signed("Client One");

    assert_eq!(
        token(&h, &by_dn, Some(&one), "127.0.0.1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        token(&h, &by_san, Some(&one), "127.0.0.1").await.status,
        StatusCode::OK
    );
    // The proxy's header twice, or holding more than one certificate: none is taken.
    let twice = {
        let mut req = token_request(&by_dn);
        let escaped: String = form_urlencoded::byte_serialize(one.pem.as_bytes()).collect();
        req.headers_mut()
            .append(HEADER, escaped.parse().expect("header"));
        req.headers_mut()
            .append(HEADER, escaped.parse().expect("header"));
        send_with(&h, req, None, "127.0.0.1").await
    };
    assert_eq!(twice.error(), "invalid_client", "{}", twice.text);
    let two = Issued {
        pem: format!("{}{}", one.pem, two.pem),
        key_pem: String::new(),
        der: Vec::new(),
        key: KeyPair::generate().expect("key"),
    };
    let r = send_with(&h, token_request(&by_dn), Some(&two), "127.0.0.1").await;
    assert_eq!(r.error(), "invalid_client", "{}", r.text);
    for (what, client, cert, from) in [
        ("another subject", &by_dn, Some(&two), "127.0.0.1"),
        ("a SAN it lacks", &by_san, Some(&two), "127.0.0.1"),
        (
            "the subject, self-signed",
            &by_dn,
            Some(&forged),
            "127.0.0.1",
        ),
        ("no certificate", &by_dn, None, "127.0.0.1"),
        (
            "the header from an untrusted address",
            &by_dn,
            Some(&one),
            "10.0.0.9",
        ),
    ] {
        let r = token(&h, client, cert, from).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
        assert_eq!(r.error(), "invalid_client", "{what}");
    }
    // The client id alone never authenticates a certificate application as a public one.
    let d = h.get("/.well-known/openid-configuration").await.json;
    let methods = d["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&json!("tls_client_auth"))
            && methods.contains(&json!("self_signed_tls_client_auth"))
    );
    assert_eq!(d["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        d["mtls_endpoint_aliases"]["token_endpoint"],
        "https://mtls.localhost:8443/token"
    );
}

#[tokio::test]
async fn self_signed_tls_client_auth_takes_the_certificate_of_a_registered_key() {
    let ca = Ca::new("Example CA");
    let h = harness(&ca).await;
    let mine = self_signed("whatever");
    let other = self_signed("whatever");
    let c = create(
        &h,
        ClientSpec {
            jwks: Some(json!({"keys": [jwk_of(&mine)]})),
            ..m2m(
                "self signed",
                AuthMethod::SelfSignedTlsClientAuth,
                MutualTls::default(),
            )
        },
    )
    .await
    .unwrap();
    assert_eq!(
        token(&h, &c, Some(&mine), "127.0.0.1").await.status,
        StatusCode::OK
    );
    let r = token(&h, &c, Some(&other), "127.0.0.1").await;
    assert_eq!(r.error(), "invalid_client", "{}", r.text);
    // A CA-issued certificate does not do either, unless its key is registered.
    let r = token(&h, &c, Some(&ca.issue("x", vec![], false)), "127.0.0.1").await;
    assert_eq!(r.error(), "invalid_client");
}

#[tokio::test]
async fn certificate_bound_tokens_are_of_use_only_with_their_certificate() {
    let ca = Ca::new("Example CA");
    let h = harness(&ca).await;
    tessera_core::admin::Admin::ensure_admin_api(&h.provider.admin(Caller::local()))
        .await
        .expect("admin api");
    let c = create(
        &h,
        ClientSpec {
            scopes: vec!["config:read".into()],
            apis: vec![h.provider.admin_api()],
            ..m2m(
                "bound",
                AuthMethod::TlsClientAuth,
                MutualTls {
                    tls_client_auth_subject_dn: Some("CN=bound,O=Example".into()),
                    tls_client_certificate_bound_access_tokens: true,
                    ..Default::default()
                },
            )
        },
    )
    .await
    .unwrap();
    let cert = ca.issue("bound", vec![], false);
    let r = token(&h, &c, Some(&cert), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["token_type"], "Bearer");
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let x5t = b64url(&sha256(&cert.der));
    assert_eq!(jwt_claims(&at)["cnf"]["x5t#S256"], x5t.as_str());

    let call = |cert: Option<&'static Issued>| {
        let at = at.clone();
        let h = &h;
        async move {
            let req = Request::get("/admin/api/v1/applications")
                .header("authorization", format!("Bearer {at}"))
                .body(Body::empty())
                .expect("request");
            send_with(h, req, cert, "127.0.0.1").await
        }
    };
    let cert: &'static Issued = Box::leak(Box::new(cert));
    let other: &'static Issued = Box::leak(Box::new(ca.issue("bound", vec![], false)));
    assert_eq!(call(Some(cert)).await.status, StatusCode::OK);
    assert_eq!(call(None).await.status, StatusCode::UNAUTHORIZED);
    // The same subject from the same CA, but another certificate: refused.
    assert_eq!(call(Some(other)).await.status, StatusCode::UNAUTHORIZED);
    // Introspection (the client authenticating with its certificate) reports the binding.
    let req = Request::post("/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={at}&client_id={}", c.id)))
        .expect("request");
    let i = send_with(&h, req, Some(cert), "127.0.0.1").await;
    assert_eq!(i.json["active"], true, "{}", i.text);
    assert_eq!(i.json["cnf"]["x5t#S256"], x5t.as_str());
}

#[tokio::test]
async fn certificate_settings_are_checked_when_saved() {
    let ca = Ca::new("Example CA");
    let h = harness(&ca).await;
    // No secret is made for an application that authenticates with its certificate.
    let made = h
        .provider
        .admin(Caller::local())
        .create_client(&m2m(
            "no secret",
            AuthMethod::TlsClientAuth,
            MutualTls {
                tls_client_auth_subject_dn: Some("CN=x".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert!(made.client_secret.is_none() && made.client.secret_ciphertext.is_none());
    // Without CAs to check against, tls_client_auth is not offered.
    let no_ca = Harness::with_settings(crate::support::ISSUER, |s| s.mtls.enabled = true).await;
    let methods = no_ca.get("/.well-known/openid-configuration").await.json
        ["token_endpoint_auth_methods_supported"]
        .clone();
    assert!(
        !methods
            .as_array()
            .unwrap()
            .contains(&json!("tls_client_auth"))
            && methods
                .as_array()
                .unwrap()
                .contains(&json!("self_signed_tls_client_auth")),
        "{methods}"
    );
    for (field, mtls, method) in [
        (
            "auth_method",
            MutualTls::default(),
            AuthMethod::TlsClientAuth,
        ),
        (
            "auth_method",
            MutualTls {
                tls_client_auth_san_dns: Some("a.example".into()),
                tls_client_auth_san_ip: Some("192.0.2.1".into()),
                ..Default::default()
            },
            AuthMethod::TlsClientAuth,
        ),
        (
            "tls_client_auth_san_ip",
            MutualTls {
                tls_client_auth_san_ip: Some("not an ip".into()),
                ..Default::default()
            },
            AuthMethod::TlsClientAuth,
        ),
        (
            "tls_client_auth_subject_dn",
            MutualTls {
                tls_client_auth_subject_dn: Some("CN=x".into()),
                ..Default::default()
            },
            AuthMethod::ClientSecretBasic,
        ),
        (
            "jwks",
            MutualTls::default(),
            AuthMethod::SelfSignedTlsClientAuth,
        ),
    ] {
        let e = create(&h, m2m("bad", method, mtls)).await.unwrap_err();
        assert!(e.contains(field), "{field}: {e}");
    }
    // A server that receives no client certificates offers none of it.
    let plain = Harness::new().await;
    let e = create(
        &plain,
        m2m(
            "x",
            AuthMethod::TlsClientAuth,
            MutualTls {
                tls_client_auth_subject_dn: Some("CN=x".into()),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap_err();
    assert!(e.contains("mutual TLS is not enabled"), "{e}");
    let d = plain.get("/.well-known/openid-configuration").await.json;
    assert!(!d["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("tls_client_auth")));
    assert!(d
        .get("tls_client_certificate_bound_access_tokens")
        .is_none());
}

/// `tessera serve` with its own TLS asking for client certificates: a client with a
/// CA-issued certificate authenticates with tls_client_auth over HTTPS and gets a token bound
/// to it; without a certificate it is refused.
#[tokio::test]
async fn native_tls_authenticates_clients_by_certificate() {
    use crate::process::{cli_env, exclusive, free_port, json as json_out, Server};
    let _serial = exclusive().await;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Example CA");
    let server_cert = ca.issue(
        "localhost",
        vec![SanType::IpAddress("127.0.0.1".parse().unwrap())],
        true,
    );
    let files = [
        ("ca.pem", &ca.pem),
        ("server.pem", &server_cert.pem),
        ("server.key", &server_cert.key_pem),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let (ca_file, cert_file, key_file) = (p("ca.pem"), p("server.pem"), p("server.key"));
    let env = [
        ("TESSERA_ISSUER", base.as_str()),
        ("TESSERA_TLS__CERT", cert_file.as_str()),
        ("TESSERA_TLS__KEY", key_file.as_str()),
        ("TESSERA_TLS__CLIENT_CERTIFICATES", "true"),
        ("TESSERA_MTLS__CLIENT_CA_FILE", ca_file.as_str()),
        ("TESSERA_HTTP__HEADER_READ_TIMEOUT_SECS", "2"),
    ];
    let created = json_out(&cli_env(
        dir.path(),
        &[
            "client",
            "create",
            "--type",
            "m2m",
            "--name",
            "mtls",
            "--auth-method",
            "tls_client_auth",
            "--tls-client-auth-subject-dn",
            "CN=robot,O=Example",
            "--tls-client-certificate-bound-access-tokens",
            "true",
            "--output",
            "json",
        ],
        &env,
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let server = Server::start_on(dir.path(), port, &env);
    let robot = ca.issue("robot", vec![], false);
    let trust = reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", robot.key_pem, robot.pem).as_bytes()).unwrap();
    let with_cert = reqwest::Client::builder()
        .add_root_certificate(trust.clone())
        .identity(identity)
        .build()
        .unwrap();
    let without = reqwest::Client::builder()
        .add_root_certificate(trust)
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if without
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "the TLS server did not come up: {}",
        std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
    );
    let ask = |c: &reqwest::Client| {
        c.post(format!("{base}/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
            ])
            .send()
    };
    let r = ask(&with_cert).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        jwt_claims(at)["cnf"]["x5t#S256"],
        b64url(&sha256(&robot.der)).as_str()
    );
    let r = ask(&without).await.unwrap();
    assert_eq!(r.status(), 401);
    let d: serde_json::Value = without
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["tls_client_certificate_bound_access_tokens"], true);
    // A connection that finishes the handshake and sends nothing is closed at the header
    // deadline (2 s here), not held for the idle timeout.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            rustls_pki_types::pem::PemObject::from_pem_slice(ca.pem.as_bytes())
                .map(|c: rustls_pki_types::CertificateDer<'_>| c.as_ref().to_vec())
                .unwrap(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A TLS connection to the server offering `alpn`.
    let connect = |alpn: &[&str]| {
        let mut config = config.clone();
        config.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect("127.0.0.1".try_into().unwrap(), tcp)
                .await
                .unwrap()
        }
    };
    let mut tls = connect(&[]).await;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        tokio::io::AsyncReadExt::read(&mut tls, &mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the silent TLS connection was still open after 8 s"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    // RFC 9113 §3.2: a connection whose handshake agreed on h2 speaks HTTP/2 only; one that
    // agreed on http/1.1, or on nothing, HTTP/1.1.
    for (alpn, h1) in [(&["h2"][..], false), (&["http/1.1"], true), (&[], true)] {
        let mut tls = connect(alpn).await;
        let ask = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        tokio::io::AsyncWriteExt::write_all(&mut tls, ask)
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut answer),
        )
        .await;
        assert_eq!(
            answer.starts_with(b"HTTP/1.1 200"),
            h1,
            "ALPN {alpn:?}: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(60)])
        );
    }
    // And HTTP/2 itself on such a connection.
    let mut sender = crate::process::http2(connect(&["h2"]).await).await;
    let req = http::Request::get(format!("{base}/healthz"))
        .body(crate::process::Empty::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(
        (res.status(), res.version()),
        (http::StatusCode::OK, http::Version::HTTP_2)
    );
    server.kill();
}

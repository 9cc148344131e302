//! Test support: a provider on in-memory SQLite with a settable clock, the router as a value, and
//! helpers that speak HTTP to it and return the wire (status, headers, JSON).

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use base64::Engine;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tessera_core::admin::{ApiSpec, ClientSpec, ScopeSpec};
use tessera_core::model::{Alg, ClientType, TokenFormat};
use tessera_core::secret::MasterKey;
use tessera_core::settings::{KeySettings, Lifetimes, Settings};
use tessera_core::{Clock, Provider};
use tessera_server::{app, AppState, Limits, Shared};
use tower::ServiceExt;

pub const ISSUER: &str = "http://localhost:8080";
pub const API: &str = "https://api.example.com";

pub struct Harness {
    pub provider: Arc<Provider>,
    pub clock: Clock,
    pub router: Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

/// A registered client and its secret.
#[derive(Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

impl TestClient {
    pub fn basic(&self) -> String {
        basic(&self.id, &self.secret)
    }
}

/// RFC 6749 §2.3.1: the client_id and secret are form-urlencoded, then joined and base64-encoded.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Harness {
    /// A fresh server on its own in-memory database, with the API `API` (scopes read:things,
    /// write:things) registered.
    pub async fn new() -> Harness {
        Harness::with_issuer(ISSUER).await
    }

    /// [`Harness::new`] with another issuer (a test that serves the router on a socket).
    pub async fn with_issuer(issuer: &str) -> Harness {
        Harness::with_settings(issuer, |_| {}).await
    }

    /// [`Harness::with_issuer`] with settings `tweak` adjusts.
    pub async fn with_settings(issuer: &str, tweak: impl FnOnce(&mut Settings)) -> Harness {
        Harness::on_store("sqlite::memory:", issuer, tweak).await
    }

    /// [`Harness::new`] on the SQLite database file `db`, which a test may also open.
    pub async fn on_file(db: &std::path::Path) -> Harness {
        Harness::on_store(&format!("sqlite://{}", db.display()), ISSUER, |_| {}).await
    }

    async fn on_store(url: &str, issuer: &str, tweak: impl FnOnce(&mut Settings)) -> Harness {
        let clock = Clock::fixed(now());
        let store = tessera_store::connect(url).await.expect("store");
        let store: Arc<dyn tessera_core::store::Store> =
            Arc::new(tessera_server::metrics::MeteredStore::new(store));
        let mut settings =
            Settings::new(issuer, Lifetimes::default(), KeySettings::default()).expect("settings");
        // The tests' key servers, webhooks and back-channel receivers listen on loopback.
        settings.allow_private_addresses = true;
        tweak(&mut settings);
        let master = MasterKey::parse(&MasterKey::generate_text()).expect("master key");
        let provider = Arc::new(
            Provider::new(settings, store, master, clock.clone())
                .await
                .expect("provider")
                .with_outbound(Arc::new(tessera_server::outbound::HttpOutbound {
                    timeout: std::time::Duration::from_millis(1_000),
                    max_bytes: 64 * 1024,
                    // The tests' key servers and webhooks listen on loopback.
                    allow_private: true,
                })),
        );
        provider
            .admin(tessera_core::admin::Caller::local())
            .create_api(&ApiSpec {
                identifier: API.into(),
                name: "Example".into(),
                scopes: vec!["read:things".into(), "write:things".into()],
            })
            .await
            .expect("api");
        let router = app(AppState::new(provider.clone()), Limits::default());
        Harness {
            provider,
            clock,
            router,
        }
    }

    /// This harness with its server's state adjusted by `tweak` (what `tessera serve` sets from
    /// its configuration beside the provider's settings).
    pub fn with_state(mut self, tweak: impl FnOnce(&mut Shared)) -> Harness {
        let mut shared = Shared::new(self.provider.clone());
        tweak(&mut shared);
        self.router = app(AppState::from(shared), Limits::default());
        self
    }

    pub fn spec(name: &str) -> ClientSpec {
        ClientSpec {
            scopes: vec!["read:things".into(), "write:things".into()],
            apis: vec![API.into()],
            ..ClientSpec::new(name, ClientType::M2m)
        }
    }

    pub async fn client_with(&self, spec: ClientSpec) -> TestClient {
        let created = self
            .provider
            .admin(tessera_core::admin::Caller::local())
            .create_client(&spec)
            .await
            .expect("create client");
        TestClient {
            id: created.client.client_id,
            secret: created.client_secret.expect("secret"),
        }
    }

    pub async fn client(&self, alg: Alg, format: TokenFormat) -> TestClient {
        self.client_with(ClientSpec {
            signing_alg: Some(tessera_core::model::JwsAlg::Key(alg)),
            token_format: Some(format),
            ..Self::spec("svc")
        })
        .await
    }

    pub async fn scope(&self, name: &str, default: bool) {
        self.provider
            .admin(tessera_core::admin::Caller::local())
            .create_scope(&ScopeSpec {
                name: name.into(),
                display_name: name.into(),
                default,
                ..ScopeSpec::default()
            })
            .await
            .expect("scope");
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
            status,
            headers,
            json,
        }
    }

    /// A GET whose body is text (status, body).
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let res = self
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn get_with_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// A form POST, with an optional `Authorization` header.
    pub async fn post(&self, path: &str, auth: Option<&str>, body: &str) -> Reply {
        let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        self.send(b.body(Body::from(body.to_owned())).expect("request"))
            .await
    }

    /// A client_credentials token; panics unless it is issued.
    pub async fn token(&self, c: &TestClient, extra: &str) -> Value {
        let r = self
            .post(
                "/token",
                Some(&c.basic()),
                &format!("grant_type=client_credentials{extra}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        r.json
    }

    /// The access_token of a client_credentials token response.
    pub async fn access_token(&self, c: &TestClient) -> String {
        self.token(c, "").await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn introspect(&self, caller: &TestClient, token: &str) -> Value {
        let r = self
            .post(
                "/introspect",
                Some(&caller.basic()),
                &format!("token={token}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        r.json
    }

    /// Verifies a JWS against Tessera's published keys (`/jwks`, by its `kid`, the algorithm
    /// the header names); its claims, unchecked otherwise.
    pub async fn verified(&self, jws: &str) -> Value {
        let jwks = self.get("/jwks").await.json;
        let header = jsonwebtoken::decode_header(jws).expect("a JWS");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
            jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .find(|k| k["kid"].as_str() == header.kid.as_deref())
                .expect("the signing key is published")
                .clone(),
        )
        .expect("jwk");
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.validate_aud = false;
        v.validate_exp = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(
            jws,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("key"),
            &v,
        )
        .expect("the signature verifies")
        .claims
    }

    /// Deletes every artifact and says how many there were.
    pub async fn drain_artifacts(&self) -> u64 {
        self.provider
            .store
            .purge_expired(tessera_core::Timestamp(i64::MAX), i64::MAX)
            .await
            .expect("purge")
    }
}

/// A connection of the test's own to the SQLite database `db` a harness serves.
pub async fn open_database(db: &std::path::Path) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", db.display());
    <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("open the database")
}

/// Makes the SQLite database `db` refuse every refresh token's insert (a trigger) until
/// [`accept_refresh_tokens`]: a write that fails after the tokens were made.
pub async fn refuse_refresh_tokens(db: &std::path::Path) -> sqlx::SqliteConnection {
    let mut conn = open_database(db).await;
    sqlx::query(
        "CREATE TRIGGER refuse_refresh_tokens BEFORE INSERT ON artifacts \
         WHEN NEW.kind = 'refresh_token' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    conn
}

/// Ends [`refuse_refresh_tokens`].
pub async fn accept_refresh_tokens(mut conn: sqlx::SqliteConnection) {
    sqlx::query("DROP TRIGGER refuse_refresh_tokens")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
}

//! Running the `tessera` binary as a real process: CLI commands and servers on free loopback
//! ports, with no `TESSERA_*` setting inherited from the test environment.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A `tessera` command that inherits no `TESSERA_*` setting from the environment of the tests.
pub fn tessera() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        cmd.env_remove(k);
    }
    cmd
}

/// An HTTP client for the tests; reqwest's TLS runs on rustls with the aws-lc-rs provider, which
/// is installed here once per test process.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// An HTTP/2 client on `io` (prior knowledge, or a TLS stream that agreed on h2), its connection
/// driven by a task of its own.
pub async fn http2<I>(io: I) -> hyper::client::conn::http2::SendRequest<Empty>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}

/// The body of an HTTP/2 request without one.
pub type Empty = http_body_util::Empty<axum::body::Bytes>;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Runs a CLI command in `dir` (so it finds `./tessera-data`), failing the test if it fails.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    cli_env(dir, args, &[])
}

pub fn cli_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = tessera()
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run tessera");
    assert!(
        out.status.success(),
        "tessera {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Registers a machine-to-machine client with the CLI (`extra` options appended); returns its
/// client_id and secret.
pub fn create_client(
    dir: &Path,
    env: &[(&str, &str)],
    name: &str,
    extra: &[&str],
) -> (String, String) {
    let args = [
        &[
            "client", "create", "--type", "m2m", "--name", name, "--output", "json",
        ][..],
        extra,
    ]
    .concat();
    registered(dir, env, &args)
}

/// Registers a web application with the CLI, redirecting to `redirect_uri`, its consent
/// accepted without asking (`extra` options appended); returns its client_id and secret.
pub fn create_web_client(
    dir: &Path,
    env: &[(&str, &str)],
    redirect_uri: &str,
    extra: &[&str],
) -> (String, String) {
    let args = [
        &[
            "client",
            "create",
            "--type",
            "web",
            "--name",
            "Web",
            "--redirect-uri",
            redirect_uri,
            "--consent",
            "auto-accept",
            "--output",
            "json",
        ][..],
        extra,
    ]
    .concat();
    registered(dir, env, &args)
}

/// Runs a `client create` (`args`); returns the new client's id and secret.
fn registered(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let c = json(&cli_env(dir, args, env));
    (
        c["client_id"].as_str().expect("client_id").to_owned(),
        c["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    )
}

/// Registers a machine-to-machine client that authenticates with `private_key_jwt` against the
/// key set at `jwks_uri` (with the CLI); returns its client_id.
pub fn create_keyed_client(dir: &Path, env: &[(&str, &str)], jwks_uri: &str) -> String {
    let c = json(&cli_env(
        dir,
        &[
            "client",
            "create",
            "--type",
            "m2m",
            "--name",
            "keyed",
            "--auth-method",
            "private_key_jwt",
            "--jwks-uri",
            jwks_uri,
            "--output",
            "json",
        ],
        env,
    ));
    c["client_id"].as_str().expect("client_id").to_owned()
}

/// Tests that time a running server ("within a second") or load it take this lock, so that on a
/// 2-core machine one test's load does not make another's timing fail.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Server {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_on(dir, free_port(), env)
    }

    /// [`Server::start`] on a given port (to set an issuer that names it).
    pub fn start_on(dir: &Path, port: u16, env: &[(&str, &str)]) -> Server {
        let log = dir.join("serve.log");
        let child = tessera()
            .arg("serve")
            .current_dir(dir)
            .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn serve");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = http().get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "server not ready: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        http()
            .post(format!("{}/token", self.base))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("request")
    }

    /// Polls until the token endpoint answers `want` for these credentials; returns how long it took.
    pub async fn until_status(&self, id: &str, secret: &str, want: u16) -> Duration {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.token(id, secret).await.status() == want {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the token endpoint never answered {want}");
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    pub fn terminate(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "serve exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(&self.log).expect("log")
    }
}

/// A test that panics still stops its server.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

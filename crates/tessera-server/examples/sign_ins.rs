//! A lean sign-in load generator for `bench/scale.py`: `WORKERS` browsers, each on one kept-alive
//! connection, sign users in through the real pages for `SECONDS` seconds (GET /authorize, POST
//! /login with the password, the 303 with the code, POST /token with PKCE) and it prints
//! `BENCH_RESULT rate=… sign_ins=…`. It runs on one thread and speaks HTTP/1.1 through a minimal
//! client of its own (each request formatted by hand and sent with one write, answers read into
//! reused buffers) so that it takes as little of the cores it shares with the server as it can;
//! the refresh tokens go to `TOKENS_OUT` if given.
//!
//!     sign_ins BASE CLIENT_ID SECRET REDIRECT_URI PASSWORD SECONDS WORKERS [TOKENS_OUT]
//!
//! `BASE` is a plain `http://` address. Browser `i` signs in as `user{i}`. Any unexpected answer
//! stops the run with an error.
//!
//! With `BENCH_TOTP_USERS=N` every sign-in also proves a TOTP code (RFC 6238): browser `i` takes
//! turns among users `mfa{i}-0` … `mfa{i}-{N-1}`, who sign in to an application whose scheme
//! asks for password + TOTP. Before the clock starts each of them sets up an authenticator app
//! through the enrolment page (so the measured sign-ins are password, code, token). A code
//! counts once per 30-second step, so N must cover a user's turn coming back within a step.

// A measuring tool: any failure is a broken measurement and stops it.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::PkceCodeChallenge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Bench {
    /// Where the server listens, the `Host` header and the base's path (before each request's).
    addrs: Vec<SocketAddr>,
    host: String,
    prefix: String,
    client_id: String,
    basic: String,
    redirect_uri: String,
    password: String,
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 7 {
        return Err(
            "usage: sign_ins BASE CLIENT_ID SECRET REDIRECT_URI PASSWORD SECONDS WORKERS \
                    [TOKENS_OUT]"
                .into(),
        );
    }
    let base = url::Url::parse(&args[0])?;
    if base.scheme() != "http" {
        return Err(format!("{}: the load generator speaks plain http:// only", args[0]).into());
    }
    let host = base.host_str().ok_or("the base has no host")?;
    let addrs = base.socket_addrs(|| Some(80))?;
    if addrs.is_empty() {
        return Err("the base's host has no address".into());
    }
    let secret = &args[2];
    let bench = std::sync::Arc::new(Bench {
        addrs,
        host: match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        },
        prefix: base.path().trim_end_matches('/').to_owned(),
        client_id: args[1].clone(),
        basic: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", args[1]))
        ),
        redirect_uri: args[3].clone(),
        password: args[4].clone(),
    });
    let seconds: f64 = args[5].parse()?;
    let workers: usize = args[6].parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (count, tokens, elapsed) = runtime.block_on(async move {
        let stop = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let totp_users: usize = std::env::var("BENCH_TOTP_USERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let ready = std::sync::Arc::new(tokio::sync::Barrier::new(workers));
        for i in 0..workers {
            let bench = bench.clone();
            let ready = ready.clone();
            if totp_users > 0 {
                tasks.spawn(
                    async move { totp_browser(&bench, i, totp_users, seconds, &ready).await },
                );
            } else {
                tasks.spawn(async move {
                    let tokens = browser(&bench, i, stop).await?;
                    Ok((tokens, start.elapsed()))
                });
            }
        }
        let mut tokens = Vec::new();
        let mut elapsed = Duration::ZERO;
        while let Some(done) = tasks.join_next().await {
            let (t, e) = done??;
            tokens.extend(t);
            elapsed = elapsed.max(e);
        }
        Ok::<_, Failure>((tokens.len(), tokens, elapsed))
    })?;
    if let Some(path) = args.get(7) {
        std::fs::write(path, tokens.join("\n") + "\n")?;
    }
    let rate = count as f64 / elapsed.as_secs_f64();
    println!("BENCH_RESULT rate={rate:.2} sign_ins={count}");
    Ok(())
}

/// One browser signing `user{i}` in again and again until `stop`; returns the refresh tokens.
async fn browser(bench: &Bench, i: usize, stop: Instant) -> Result<Vec<String>, Failure> {
    let mut http = Http::new(bench);
    let username = format!("user{i}");
    let mut tokens = Vec::new();
    while Instant::now() < stop {
        tokens.push(sign_in(bench, &mut http, &username).await?);
    }
    Ok(tokens)
}

/// A user of a TOTP browser: the key they set up and the last step a code of theirs was used.
struct TotpUser {
    name: String,
    secret: Vec<u8>,
    last_step: i64,
}

fn step_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now.div_euclid(tessera_core::factor::totp::STEP)
}

/// RFC 4648 base32 (the key the enrolment page shows, in groups with spaces).
fn base32_decode(s: &str) -> Vec<u8> {
    let (mut out, mut buf, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let Some(v) = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .iter()
            .position(|a| *a == c)
        else {
            continue;
        };
        buf = (buf << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// One browser of the TOTP run: sets up each of its users' authenticator apps, then, once the
/// others are ready too (the clock starts after a fixed pause), signs them in in turn for
/// `seconds`; a user whose code of this step (and the next) is spent is passed over.
async fn totp_browser(
    bench: &Bench,
    i: usize,
    users: usize,
    seconds: f64,
    ready: &tokio::sync::Barrier,
) -> Result<(Vec<String>, Duration), Failure> {
    let mut http = Http::new(bench);
    // Keys set up by an earlier run (`BENCH_TOTP_KEYS`: `name key last_step` lines).
    let keys_file = std::env::var("BENCH_TOTP_KEYS").ok();
    let known: HashMap<String, (Vec<u8>, i64)> = keys_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let (n, k, st) = (w.next()?, w.next()?, w.next()?.parse().ok()?);
            Some((n.to_owned(), (base32_decode(k), st)))
        })
        .collect();
    let mut team = Vec::with_capacity(users);
    for k in 0..users {
        let name = format!("mfa{i}-{k}");
        if let Some((secret, last_step)) = known.get(&name) {
            team.push(TotpUser {
                name,
                secret: secret.clone(),
                last_step: *last_step,
            });
            continue;
        }
        let (page, cookies, verifier) = login(bench, &mut http, &name).await?;
        let page = expect(page, 200)?;
        let key = page
            .split("id=\"totp-secret\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .ok_or("no enrolment page: does the application's scheme ask for TOTP?")?;
        let secret = base32_decode(key);
        let step = step_now();
        let code = tessera_core::factor::totp::code_at(&secret, step);
        let codes = post(
            &mut http,
            "/login/enrol",
            &cookies,
            &[
                ("interaction", &hidden(&page, "interaction")?),
                ("csrf", &hidden(&page, "csrf")?),
                ("method", "totp"),
                ("code", &code),
            ],
        )
        .await?;
        let cookies = merged(&cookies, &codes);
        let codes = expect(codes, 200)?;
        let done = post(
            &mut http,
            "/login/continue",
            &cookies,
            &[
                ("interaction", &hidden(&codes, "interaction")?),
                ("csrf", &hidden(&codes, "csrf")?),
            ],
        )
        .await?;
        redeem(bench, &mut http, done, &verifier).await?;
        team.push(TotpUser {
            name,
            secret,
            last_step: step,
        });
    }
    ready.wait().await;
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(seconds);
    let mut tokens = Vec::new();
    let mut turn = 0;
    while Instant::now() < stop {
        let now = step_now();
        let u = &mut team[turn % users];
        turn += 1;
        let step = (u.last_step + 1).max(now);
        if step > now + 1 {
            if turn % users == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        }
        let (page, cookies, verifier) = login(bench, &mut http, &u.name).await?;
        let page = expect(page, 200)?;
        let code = tessera_core::factor::totp::code_at(&u.secret, step);
        let done = post(
            &mut http,
            "/login/code",
            &cookies,
            &[
                ("interaction", &hidden(&page, "interaction")?),
                ("csrf", &hidden(&page, "csrf")?),
                ("kind", "totp"),
                ("code", &code),
            ],
        )
        .await?;
        u.last_step = step;
        tokens.push(redeem(bench, &mut http, done, &verifier).await?);
    }
    let elapsed = start.elapsed();
    if let Some(f) = keys_file {
        let lines: String = team
            .iter()
            .map(|u| {
                format!(
                    "{} {} {}\n",
                    u.name,
                    tessera_core::factor::totp::base32(&u.secret),
                    u.last_step
                )
            })
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)?;
        std::io::Write::write_all(&mut file, lines.as_bytes())?;
    }
    Ok((tokens, elapsed))
}

/// GET /authorize then POST /login with the password: the answer, the browser's cookies and
/// the PKCE verifier.
async fn login(
    bench: &Bench,
    http: &mut Http,
    username: &str,
) -> Result<(Answer, String, String), Failure> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &bench.client_id),
        ("redirect_uri", &bench.redirect_uri),
        ("scope", "openid offline_access"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
    ]);
    let page = http
        .request("GET", &format!("/authorize?{query}"), "", None, None)
        .await?;
    let cookies = merged("", &page);
    let page = expect(page, 200)?;
    let answer = post(
        http,
        "/login",
        &cookies,
        &[
            ("interaction", &hidden(&page, "interaction")?),
            ("csrf", &hidden(&page, "csrf")?),
            ("username", username),
            ("password", &bench.password),
        ],
    )
    .await?;
    let jar = merged(&cookies, &answer);
    Ok((answer, jar, verifier.secret().to_owned()))
}

/// The `Cookie` header after an answer: the `name=value` of its `Set-Cookie` headers replace
/// those of the same name (a new interaction for the next step, a new session after a factor).
fn merged(cookies: &str, answer: &Answer) -> String {
    let mut jar: Vec<(&str, &str)> = Vec::new();
    let fresh = answer.set_cookies.iter().map(String::as_str);
    for pair in cookies.split("; ").chain(fresh) {
        if let Some((k, v)) = pair.split_once('=') {
            match jar.iter_mut().find(|(name, _)| *name == k) {
                Some(old) => old.1 = v,
                None => jar.push((k, v)),
            }
        }
    }
    let mut header = String::new();
    for (k, v) in jar {
        if !header.is_empty() {
            header.push_str("; ");
        }
        header.push_str(k);
        header.push('=');
        header.push_str(v);
    }
    header
}

async fn post(
    http: &mut Http,
    path: &str,
    cookies: &str,
    pairs: &[(&str, &str)],
) -> Result<Answer, Failure> {
    http.request("POST", path, cookies, None, Some(form(pairs).as_str()))
        .await
}

/// The 303 with the code, redeemed at the token endpoint with the PKCE verifier.
async fn redeem(
    bench: &Bench,
    http: &mut Http,
    mut answer: Answer,
    verifier: &str,
) -> Result<String, Failure> {
    let location = answer.location.take();
    expect(answer, 303)?;
    let location = url::Url::parse(&location.ok_or("the sign-in gave no Location")?)?;
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no code in {location}"))?;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", bench.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    let answer = http
        .request(
            "POST",
            "/token",
            "",
            Some(bench.basic.as_str()),
            Some(form(&pairs).as_str()),
        )
        .await?;
    let body: serde_json::Value = serde_json::from_str(&expect(answer, 200)?)?;
    Ok(body["refresh_token"]
        .as_str()
        .ok_or("the token response has no refresh_token")?
        .to_owned())
}

/// The authorization code flow as a browser and its application run it; returns the refresh token.
async fn sign_in(bench: &Bench, http: &mut Http, username: &str) -> Result<String, Failure> {
    let (answer, _, verifier) = login(bench, http, username).await?;
    redeem(bench, http, answer, &verifier).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The answer's body if it has the `status`, else an error with the page's words.
fn expect(answer: Answer, status: u16) -> Result<String, Failure> {
    if answer.status != status {
        // A page's words, without its markup, say why.
        let mut text = String::new();
        let mut in_tag = false;
        for c in answer.body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(400)
            .collect();
        return Err(format!("expected {status}, got {}: {text}", answer.status).into());
    }
    Ok(answer.body)
}

/// The value of the hidden form field `name` in the login page.
fn hidden(page: &str, name: &str) -> Result<String, Failure> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .ok_or_else(|| format!("no {name} in the login page"))?
        + marker.len();
    let end = page[start..].find('"').ok_or("unterminated value")? + start;
    Ok(page[start..end]
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&"))
}

/// The longest answer head, chunk-size or trailer line, and body this client takes.
const MAX_HEAD: usize = 64 * 1024;
const MAX_LINE: usize = 8 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A minimal HTTP/1.1 client on one kept-alive connection (a browser's): each request is
/// formatted by hand into one reused buffer and sent with one write, and its answer is read into
/// another. A connection the server closes is opened again for the next request; a request
/// whose connection closes before any of its answer comes is sent once more on a new one.
struct Http {
    addrs: Vec<SocketAddr>,
    host: String,
    prefix: String,
    stream: Option<TcpStream>,
    out: String,
    buf: Vec<u8>,
}

/// An answer: its status, its `Location`, the `name=value` of each `Set-Cookie`, its body.
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

/// What went wrong in one exchange: `Unanswered` if none of the answer came (the connection was
/// closed or reset first), so that the request may be sent again.
enum Broken {
    Unanswered(String),
    Failed(String),
}

/// What an answer's head says.
struct Head {
    status: u16,
    keep_alive: bool,
    length: Option<usize>,
    chunked: bool,
    location: Option<String>,
    set_cookies: Vec<String>,
}

impl Http {
    fn new(bench: &Bench) -> Self {
        Self {
            addrs: bench.addrs.clone(),
            host: bench.host.clone(),
            prefix: bench.prefix.clone(),
            stream: None,
            out: String::with_capacity(2048),
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `method path` (path with its query) with the `Cookie` header if `cookies` is not
    /// empty, the `Authorization` header if given and a form body if given; returns the answer.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        cookies: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> Result<Answer, Failure> {
        self.out.clear();
        self.out.push_str(method);
        self.out.push(' ');
        self.out.push_str(&self.prefix);
        self.out.push_str(path);
        self.out.push_str(" HTTP/1.1\r\nHost: ");
        self.out.push_str(&self.host);
        self.out.push_str("\r\n");
        if !cookies.is_empty() {
            self.out.push_str("Cookie: ");
            self.out.push_str(cookies);
            self.out.push_str("\r\n");
        }
        if let Some(authorization) = authorization {
            self.out.push_str("Authorization: ");
            self.out.push_str(authorization);
            self.out.push_str("\r\n");
        }
        match body {
            Some(body) => {
                self.out
                    .push_str("Content-Type: application/x-www-form-urlencoded\r\n");
                write!(self.out, "Content-Length: {}\r\n\r\n", body.len())?;
                self.out.push_str(body);
            }
            None => self.out.push_str("\r\n"),
        }
        let shown = path.split_once('?').map_or(path, |(p, _)| p);
        let mut retry = true;
        loop {
            let mut stream = match self.stream.take() {
                Some(stream) => stream,
                None => {
                    let stream = TcpStream::connect(self.addrs.as_slice())
                        .await
                        .map_err(|e| format!("connecting to {}: {e}", self.host))?;
                    stream.set_nodelay(true)?;
                    stream
                }
            };
            match self.exchange(&mut stream).await {
                Ok((answer, keep_alive)) => {
                    if keep_alive {
                        self.stream = Some(stream);
                    }
                    return Ok(answer);
                }
                Err(Broken::Unanswered(_)) if retry => retry = false,
                Err(Broken::Unanswered(why)) => {
                    return Err(format!(
                        "{method} {shown}: the connection closed before an answer, twice: {why}"
                    )
                    .into())
                }
                Err(Broken::Failed(why)) => return Err(format!("{method} {shown}: {why}").into()),
            }
        }
    }

    /// Writes the request in `out` and reads its answer: the answer and whether the connection
    /// stays open.
    async fn exchange(&mut self, stream: &mut TcpStream) -> Result<(Answer, bool), Broken> {
        if let Err(e) = stream.write_all(self.out.as_bytes()).await {
            return Err(Broken::Unanswered(format!("sending: {e}")));
        }
        self.buf.clear();
        let mut from = 0;
        let head_end = loop {
            if let Some(i) = find(&self.buf[from..], b"\r\n\r\n") {
                break from + i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Broken::Failed(format!(
                    "an answer's head longer than {MAX_HEAD} bytes"
                )));
            }
            from = self.buf.len().saturating_sub(3);
            if self.buf.is_empty() {
                match stream.read_buf(&mut self.buf).await {
                    Ok(0) => {
                        return Err(Broken::Unanswered(
                            "the server closed the connection".to_owned(),
                        ))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Broken::Unanswered(e.to_string())),
                }
            } else {
                self.more(stream).await?;
            }
        };
        let head = parse_head(&self.buf[..head_end - 4]).map_err(Broken::Failed)?;
        let mut keep_alive = head.keep_alive;
        let body = if head.status < 200 || head.status == 204 || head.status == 304 {
            String::new()
        } else if head.chunked {
            let bytes = self.chunked(stream, head_end).await?;
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        } else if let Some(length) = head.length {
            if length > MAX_BODY {
                return Err(Broken::Failed(format!(
                    "a body of {length} bytes, more than {MAX_BODY}"
                )));
            }
            let end = head_end + length;
            self.fill(stream, end).await?;
            if self.buf.len() > end {
                return Err(Broken::Failed(
                    "bytes past the answer's Content-Length".to_owned(),
                ));
            }
            String::from_utf8_lossy(&self.buf[head_end..end]).into_owned()
        } else {
            // Neither a length nor chunks: the body runs to the end of the connection.
            loop {
                match stream.read_buf(&mut self.buf).await {
                    Ok(0) => break,
                    Ok(_) if self.buf.len() - head_end > MAX_BODY => {
                        return Err(Broken::Failed(format!(
                            "a body of more than {MAX_BODY} bytes"
                        )))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Broken::Failed(format!("reading an answer: {e}"))),
                }
            }
            keep_alive = false;
            String::from_utf8_lossy(&self.buf[head_end..]).into_owned()
        };
        let answer = Answer {
            status: head.status,
            location: head.location,
            set_cookies: head.set_cookies,
            body,
        };
        Ok((answer, keep_alive))
    }

    /// Decodes the chunked body that starts at `at` in the buffer, reading the rest of it.
    async fn chunked(&mut self, stream: &mut TcpStream, mut at: usize) -> Result<Vec<u8>, Broken> {
        let mut body = Vec::new();
        loop {
            let end = self.line_end(stream, at).await?;
            let line = &self.buf[at..end];
            let digits = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| usize::from_str_radix(d.trim(), 16).ok())
                .filter(|size| *size <= MAX_BODY - body.len())
                .ok_or_else(|| {
                    Broken::Failed(format!(
                        "a bad chunk size: {:?}",
                        String::from_utf8_lossy(line)
                    ))
                })?;
            at = end + 2;
            if size == 0 {
                break;
            }
            self.fill(stream, at + size + 2).await?;
            if !self.buf[at + size..].starts_with(b"\r\n") {
                return Err(Broken::Failed("a chunk not ended by CRLF".to_owned()));
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
        // The trailer fields, up to an empty line.
        loop {
            let end = self.line_end(stream, at).await?;
            let empty = end == at;
            at = end + 2;
            if empty {
                break;
            }
        }
        if self.buf.len() > at {
            return Err(Broken::Failed(
                "bytes past the answer's last chunk".to_owned(),
            ));
        }
        Ok(body)
    }

    /// Where the line that starts at `at` in the buffer ends (its CRLF), reading until it does.
    async fn line_end(&mut self, stream: &mut TcpStream, at: usize) -> Result<usize, Broken> {
        let mut from = at;
        loop {
            if let Some(i) = find(&self.buf[from..], b"\r\n") {
                return Ok(from + i);
            }
            if self.buf.len() - at > MAX_LINE {
                return Err(Broken::Failed(format!(
                    "a chunked body's line longer than {MAX_LINE} bytes"
                )));
            }
            from = self.buf.len().saturating_sub(1).max(at);
            self.more(stream).await?;
        }
    }

    /// Reads until the buffer holds `len` bytes.
    async fn fill(&mut self, stream: &mut TcpStream, len: usize) -> Result<(), Broken> {
        if len > self.buf.len() {
            self.buf.reserve(len - self.buf.len());
        }
        while self.buf.len() < len {
            self.more(stream).await?;
        }
        Ok(())
    }

    /// Reads more of an answer that has begun: the connection closing now is a failure.
    async fn more(&mut self, stream: &mut TcpStream) -> Result<(), Broken> {
        match stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(Broken::Failed(
                "the server closed the connection in the middle of an answer".to_owned(),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(Broken::Failed(format!("reading an answer: {e}"))),
        }
    }
}

/// The status line and the headers this client needs from an answer's head (without its final
/// empty line).
fn parse_head(head: &[u8]) -> Result<Head, String> {
    let head = std::str::from_utf8(head).map_err(|_| "an answer's head is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or_default();
    let status = words
        .next()
        .filter(|_| version.starts_with("HTTP/1."))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP/1 status line: {status_line:?}"))?;
    let (mut close, mut keep) = (false, false);
    let mut parsed = Head {
        status,
        keep_alive: false,
        length: None,
        chunked: false,
        location: None,
        set_cookies: Vec::new(),
    };
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a bad header line: {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| format!("a bad Content-Length: {value:?}"))?;
            if parsed.length.is_some_and(|l| l != length) {
                return Err("two different Content-Length headers".to_owned());
            }
            parsed.length = Some(length);
        } else if name.eq_ignore_ascii_case("location") {
            parsed.location = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("set-cookie") {
            let pair = value.split(';').next().unwrap_or_default().trim();
            if pair.contains('=') {
                parsed.set_cookies.push(pair.to_owned());
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                close |= option.eq_ignore_ascii_case("close");
                keep |= option.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(format!("an unsupported Transfer-Encoding: {value:?}"));
            }
            parsed.chunked = true;
        }
    }
    // HTTP/1.1 keeps the connection open unless told otherwise, HTTP/1.0 only if told so.
    parsed.keep_alive = !close && (keep || version == "HTTP/1.1");
    Ok(parsed)
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

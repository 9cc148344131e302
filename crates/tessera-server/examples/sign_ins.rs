//! A lean sign-in load generator for `bench/scale.py`: `WORKERS` browsers, each on one kept-alive
//! connection, sign users in through the real pages for `SECONDS` seconds (GET /authorize, POST
//! /login with the password, the 303 with the code, POST /token with PKCE) and it prints
//! `BENCH_RESULT rate=… sign_ins=…`. It runs on one thread so that it takes as little of the
//! cores it shares with the server as it can; the refresh tokens go to `TOKENS_OUT` if given.
//!
//!     sign_ins BASE CLIENT_ID SECRET REDIRECT_URI PASSWORD SECONDS WORKERS [TOKENS_OUT]
//!
//! Browser `i` signs in as `user{i}`. Any unexpected answer stops the run with an error.
//!
//! With `BENCH_TOTP_USERS=N` every sign-in also proves a TOTP code (RFC 6238): browser `i` takes
//! turns among users `mfa{i}-0` … `mfa{i}-{N-1}`, who sign in to an application whose scheme
//! asks for password + TOTP. Before the clock starts each of them sets up an authenticator app
//! through the enrolment page (so the measured sign-ins are password, code, token). A code
//! counts once per 30-second step, so N must cover a user's turn coming back within a step.

// A measuring tool: any failure is a broken measurement and stops it.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::PkceCodeChallenge;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Bench {
    base: String,
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
    let secret = &args[2];
    let bench = std::sync::Arc::new(Bench {
        base: args[0].trim_end_matches('/').to_owned(),
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
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()?;
    let username = format!("user{i}");
    let mut tokens = Vec::new();
    while Instant::now() < stop {
        tokens.push(sign_in(bench, &http, &username).await?);
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
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()?;
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
        let (page, cookies, verifier) = login(bench, &http, &name).await?;
        let page = expect(page, 200).await?;
        let key = page
            .split("id=\"totp-secret\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .ok_or("no enrolment page: does the application's scheme ask for TOTP?")?;
        let secret = base32_decode(key);
        let step = step_now();
        let code = tessera_core::factor::totp::code_at(&secret, step);
        let codes = post(
            bench,
            &http,
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
        let cookies = merged(&cookies, codes.headers());
        let codes = expect(codes, 200).await?;
        let done = post(
            bench,
            &http,
            "/login/continue",
            &cookies,
            &[
                ("interaction", &hidden(&codes, "interaction")?),
                ("csrf", &hidden(&codes, "csrf")?),
            ],
        )
        .await?;
        redeem(bench, &http, done, &verifier).await?;
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
        let (page, cookies, verifier) = login(bench, &http, &u.name).await?;
        let page = expect(page, 200).await?;
        let code = tessera_core::factor::totp::code_at(&u.secret, step);
        let done = post(
            bench,
            &http,
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
        tokens.push(redeem(bench, &http, done, &verifier).await?);
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
    http: &reqwest::Client,
    username: &str,
) -> Result<(reqwest::Response, String, String), Failure> {
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
        .get(format!("{}/authorize?{query}", bench.base))
        .send()
        .await?;
    let cookies = cookies(page.headers());
    let page = expect(page, 200).await?;
    let answer = post(
        bench,
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
    let jar = merged(&cookies, answer.headers());
    Ok((answer, jar, verifier.secret().to_owned()))
}

/// The `Cookie` header after an answer: its cookies replace those of the same name (a new
/// interaction for the next step, a new session after a factor).
fn merged(cookies: &str, headers: &HeaderMap) -> String {
    let fresh = self::cookies(headers);
    let mut jar: HashMap<&str, &str> = HashMap::new();
    for pair in cookies.split("; ").chain(fresh.split("; ")) {
        if let Some((k, v)) = pair.split_once('=') {
            jar.insert(k, v);
        }
    }
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn post(
    bench: &Bench,
    http: &reqwest::Client,
    path: &str,
    cookies: &str,
    pairs: &[(&str, &str)],
) -> Result<reqwest::Response, Failure> {
    Ok(http
        .post(format!("{}{path}", bench.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, cookies)
        .body(form(pairs))
        .send()
        .await?)
}

/// The 303 with the code, redeemed at the token endpoint with the PKCE verifier.
async fn redeem(
    bench: &Bench,
    http: &reqwest::Client,
    answer: reqwest::Response,
    verifier: &str,
) -> Result<String, Failure> {
    let location = answer
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    expect(answer, 303).await?;
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
        .post(format!("{}/token", bench.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(AUTHORIZATION, &bench.basic)
        .body(form(&pairs))
        .send()
        .await?;
    let body: serde_json::Value = serde_json::from_str(&expect(answer, 200).await?)?;
    Ok(body["refresh_token"]
        .as_str()
        .ok_or("the token response has no refresh_token")?
        .to_owned())
}

/// The authorization code flow as a browser and its application run it; returns the refresh token.
async fn sign_in(bench: &Bench, http: &reqwest::Client, username: &str) -> Result<String, Failure> {
    let (answer, _, verifier) = login(bench, http, username).await?;
    redeem(bench, http, answer, &verifier).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The `Cookie` header a browser sends back after these `Set-Cookie` headers.
fn cookies(headers: &HeaderMap) -> String {
    let jar: HashMap<&str, &str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .collect();
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn expect(answer: reqwest::Response, status: u16) -> Result<String, Failure> {
    let got = answer.status().as_u16();
    let body = answer.text().await?;
    if got != status {
        // A page's words, without its markup, say why.
        let mut text = String::new();
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(format!(
            "expected {status}, got {got}: {}",
            &text[..text.len().min(400)]
        )
        .into());
    }
    Ok(body)
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

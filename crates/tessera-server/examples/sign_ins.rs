//! A lean sign-in load generator for `bench/scale.py`: `WORKERS` browsers, each on one kept-alive
//! connection, sign users in through the real pages for `SECONDS` seconds (GET /authorize, POST
//! /login with the password, the 303 with the code, POST /token with PKCE) and it prints
//! `BENCH_RESULT rate=… sign_ins=…`. It runs on one thread so that it takes as little of the
//! cores it shares with the server as it can; the refresh tokens go to `TOKENS_OUT` if given.
//!
//!     sign_ins BASE CLIENT_ID SECRET REDIRECT_URI PASSWORD SECONDS WORKERS [TOKENS_OUT]
//!
//! Browser `i` signs in as `user{i}`. Any unexpected answer stops the run with an error.

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
        for i in 0..workers {
            let bench = bench.clone();
            tasks.spawn(async move { browser(&bench, i, stop).await });
        }
        let mut tokens = Vec::new();
        while let Some(done) = tasks.join_next().await {
            tokens.extend(done??);
        }
        Ok::<_, Failure>((tokens.len(), tokens, start.elapsed()))
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

/// The authorization code flow as a browser and its application run it; returns the refresh token.
async fn sign_in(bench: &Bench, http: &reqwest::Client, username: &str) -> Result<String, Failure> {
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
    let login = form(&[
        ("interaction", &hidden(&page, "interaction")?),
        ("csrf", &hidden(&page, "csrf")?),
        ("username", username),
        ("password", &bench.password),
    ]);
    let answer = http
        .post(format!("{}/login", bench.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, cookies)
        .body(login)
        .send()
        .await?;
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
    let exchange = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &bench.redirect_uri),
        ("code_verifier", verifier.secret()),
    ]);
    let answer = http
        .post(format!("{}/token", bench.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(AUTHORIZATION, &bench.basic)
        .body(exchange)
        .send()
        .await?;
    let body: serde_json::Value = serde_json::from_str(&expect(answer, 200).await?)?;
    Ok(body["refresh_token"]
        .as_str()
        .ok_or("the token response has no refresh_token")?
        .to_owned())
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
        return Err(format!(
            "expected {status}, got {got}: {}",
            &body[..body.len().min(300)]
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

//! `tessera key …`: list, generate, import (PEM key + certificate chain), retire.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};
use tessera_core::admin::Caller;
use tessera_core::admin::KeyWindow;
use tessera_core::model::{Alg, KeyRecord};
use tessera_core::{Provider, Timestamp};

use super::clients::parse_alg;
use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Every stored key with its window and state.
    List,
    /// Generate a key; it takes over signing for its algorithm at --not-before.
    Generate {
        #[arg(long, value_parser = parse_alg)]
        alg: Alg,
        /// When it starts signing: unix seconds or RFC 3339 (default: now).
        #[arg(long, value_parser = parse_time)]
        not_before: Option<Timestamp>,
        /// When it stops signing (default: keys.lifetime_days after --not-before).
        #[arg(long, value_parser = parse_time)]
        not_after: Option<Timestamp>,
    },
    /// Import a PEM private key with its PEM certificate chain (leaf first).
    Import {
        #[arg(long, value_parser = parse_alg)]
        alg: Alg,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long, value_parser = parse_time)]
        not_before: Option<Timestamp>,
        #[arg(long, value_parser = parse_time)]
        not_after: Option<Timestamp>,
    },
    /// Stop a key signing now; it stays published until the tokens it signed have expired.
    Retire {
        /// Key ids are base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(Timestamp(n));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| Timestamp(t.unix_timestamp()))
        .map_err(|_| format!("{s:?} is neither unix seconds nor an RFC 3339 time"))
}

fn rfc3339(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.0.to_string())
}

/// A key as printed: never the private part.
fn view(k: &KeyRecord, now: Timestamp) -> Value {
    let state = k.state(now);
    json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": state,
        "not_before": rfc3339(k.not_before),
        "not_after": rfc3339(k.not_after),
        "certificates": k.x5c.len(),
    })
}

pub async fn run(p: &Provider, cmd: KeyCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    let now = p.now();
    let rec = match cmd {
        KeyCmd::List => {
            let all: Vec<Value> = p.keys().await?.iter().map(|k| view(k, now)).collect();
            print(out, &Value::Array(all));
            return Ok(());
        }
        KeyCmd::Generate {
            alg,
            not_before,
            not_after,
        } => {
            p.generate_key(
                alg,
                KeyWindow {
                    not_before,
                    not_after,
                },
            )
            .await?
        }
        KeyCmd::Import {
            alg,
            key,
            cert,
            not_before,
            not_after,
        } => {
            let key_pem = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let chain = std::fs::read_to_string(&cert)
                .with_context(|| format!("cannot read {}", cert.display()))?;
            p.import_key(
                alg,
                &key_pem,
                &chain,
                KeyWindow {
                    not_before,
                    not_after,
                },
            )
            .await?
        }
        KeyCmd::Retire { kid } => p.retire_key(&kid).await?,
    };
    print(out, &view(&rec, now));
    Ok(())
}

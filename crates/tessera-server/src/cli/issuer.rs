//! `tessera issuer …`: the issuer a database was set up for, and moving it deliberately to the
//! configured one (every process then runs with the new issuer; tokens of the old one stop).

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::{move_installation, Caller};
use tessera_core::Clock;

use super::{print, provider, Output};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum IssuerCmd {
    /// The issuer the database was set up for, and the configured one.
    Show,
    /// Move the database from the issuer it was set up for (`--from`, as a check) to the
    /// configured issuer (`issuer` / TESSERA_ISSUER); the admin API and the Portal follow.
    Change {
        #[arg(long)]
        from: String,
    },
}

pub async fn run(config: &Config, cmd: IssuerCmd, out: Output) -> anyhow::Result<()> {
    config.prepare()?;
    let url = config.database_url();
    let store: Arc<dyn tessera_core::store::Store> = tessera_store::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", tessera_store::redact(&url)))?;
    let configured = config.settings()?.issuer;
    match cmd {
        IssuerCmd::Show => {
            let stored = store.installation().await?.map(|i| i.issuer);
            print(
                out,
                &json!({ "database": stored, "configured": configured }),
            );
        }
        IssuerCmd::Change { from } => {
            move_installation(&*store, &from, &configured, Clock::System.now()).await?;
            drop(store);
            let p = provider(config).await?;
            p.admin(Caller::local()).adopt_admin_api(&from).await?;
            print(out, &json!({ "from": from, "issuer": configured }));
        }
    }
    Ok(())
}

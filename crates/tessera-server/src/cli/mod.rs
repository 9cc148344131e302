//! The `tessera` command line: every command reads the same settings as the server and calls the
//! same core use-cases.

pub mod admin;
pub mod apply;
mod catalog;
mod clients;
mod export;
mod idps;
mod import;
mod issuer;
mod keys;
mod serve;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use tessera_core::{Clock, Provider};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "OAuth 2.0 authorization server and OpenID Connect provider"
)]
pub struct Cli {
    /// TOML configuration file (environment variables TESSERA_* override it).
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// How commands print resources.
    #[arg(long, short, global = true, value_enum, default_value = "text")]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Parsed once per process: the size of the client options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Applications (OAuth clients).
    #[command(subcommand)]
    Client(clients::ClientCmd),
    /// APIs (resource servers).
    #[command(subcommand)]
    Api(catalog::ApiCmd),
    /// Scopes.
    #[command(subcommand)]
    Scope(catalog::ScopeCmd),
    /// Authentication schemes: how users of an application sign in.
    #[command(subcommand)]
    Scheme(catalog::SchemeCmd),
    /// Upstream identity providers users sign in at.
    #[command(subcommand)]
    Idp(idps::IdpCmd),
    /// Users who sign in.
    #[command(subcommand)]
    User(users::UserCmd),
    /// Signing keys and certificates.
    #[command(subcommand)]
    Key(keys::KeyCmd),
    /// Create or update scopes, APIs, schemes, identity providers, clients and users from a YAML file.
    Apply(apply::ApplyArgs),
    /// Write the stored configuration as a YAML file for `apply` (secrets are never exported).
    Export(export::ExportArgs),
    /// Convert another system's configuration and users into a file for `apply`.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Administrators of the admin API and Admin Portal.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// The issuer the database was set up for.
    #[command(subcommand)]
    Issuer(issuer::IssuerCmd),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), Config::env())?;
    crate::cli::serve::init_logging(&config, matches!(cli.command, Command::Serve));
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            config.prepare()?;
            tessera_store::connect(&config.database_url())
                .await
                .context("database")?;
            println!("database is up to date");
            Ok(())
        }
        Command::Client(c) => clients::run(&*provider(&config).await?, c, cli.output).await,
        Command::User(c) => users::run(&*provider(&config).await?, c, cli.output).await,
        Command::Api(c) => catalog::run_api(&*provider(&config).await?, c, cli.output).await,
        Command::Scope(c) => catalog::run_scope(&*provider(&config).await?, c, cli.output).await,
        Command::Scheme(c) => catalog::run_scheme(&*provider(&config).await?, c, cli.output).await,
        Command::Idp(c) => idps::run(&*provider(&config).await?, c, cli.output).await,
        Command::Key(c) => keys::run(&*provider(&config).await?, c, cli.output).await,
        Command::Apply(a) => apply::run(&*provider(&config).await?, a, cli.output).await,
        Command::Export(a) => export::run(&*provider(&config).await?, a).await,
        Command::Import(c) => import::run(&*provider(&config).await?, c, cli.output).await,
        Command::Admin(c) => admin::run(&*provider(&config).await?, c, cli.output).await,
        Command::Issuer(c) => issuer::run(&config, c, cli.output).await,
    }
}

/// The provider on the configured database, as the server builds it.
pub async fn provider(config: &Config) -> anyhow::Result<Arc<Provider>> {
    config.prepare()?;
    let settings = config.settings()?;
    let master = config.master_key()?;
    let url = config.database_url();
    let store = tessera_store::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", tessera_store::redact(&url)))?;
    let store: Arc<dyn tessera_core::store::Store> =
        Arc::new(crate::metrics::MeteredStore::new(store));
    Ok(Arc::new(
        Provider::new(settings, store, master, Clock::System)
            .await
            .context("cannot load the configuration")?
            .with_outbound(Arc::new(config.outbound.client())),
    ))
}

/// Prints a resource as JSON, or as aligned `key  value` lines.
pub fn print(output: Output, value: &Value) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => print_text(value),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // A list of lists (a scheme's sets of methods) keeps its grouping: a+b, c.
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::Array(inner) => inner.iter().map(text_of).collect::<Vec<_>>().join("+"),
                other => text_of(other),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_text(value: &Value) {
    match value {
        Value::Object(m) => {
            let width = m.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in m {
                println!("{k:width$}  {}", text_of(v));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print_text(item);
            }
            if items.is_empty() {
                println!("(none)");
            }
        }
        other => println!("{}", text_of(other)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// Key ids, client ids and user ids are base64url: one in 64 starts with `-`.
    #[test]
    fn ids_may_start_with_a_hyphen() {
        for args in [
            &["tessera", "key", "retire", "-xy9mJ0gQRW17"][..],
            &["tessera", "client", "show", "-abc"],
            &["tessera", "client", "update", "-abc", "--name", "New"],
            &["tessera", "user", "block", "-u1"],
            &["tessera", "user", "update", "-u1", "--username", "ann"],
        ] {
            let cli = Cli::try_parse_from(args.iter().copied());
            assert!(cli.is_ok(), "{args:?}: {:?}", cli.err());
        }
        let cli =
            Cli::try_parse_from(["tessera", "client", "update", "-abc", "--name", "New"]).unwrap();
        let text = format!("{:?}", cli.command);
        assert!(
            text.contains("\"-abc\"") && text.contains("Some(\"New\")"),
            "{text}"
        );
    }
}

//! `tessera api …` and `tessera scope …`.

use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::{ApiSpec, ScopeSpec};
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Register an API; its identifier becomes the `aud` of tokens issued for it.
    Create {
        #[arg(long)]
        identifier: String,
        #[arg(long, default_value = "")]
        name: String,
        /// A scope the API defines (repeat for several); missing scopes are created.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    List,
    Show {
        identifier: String,
    },
    /// Replace the name and scopes of an API.
    Update {
        identifier: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    Delete {
        identifier: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    Create {
        name: String,
        #[arg(long, default_value = "")]
        display_name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Granted when a request names no scope.
        #[arg(long)]
        default: bool,
    },
    List,
    Show {
        name: String,
    },
    /// Replace the display name, description and default flag of a scope.
    Update {
        name: String,
        #[arg(long, default_value = "")]
        display_name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        default: bool,
    },
    Delete {
        name: String,
    },
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub async fn run_api(p: &Provider, cmd: ApiCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        ApiCmd::Create {
            identifier,
            name,
            scopes,
        } => print(
            out,
            &to_value(
                &p.create_api(&ApiSpec {
                    identifier,
                    name,
                    scopes,
                })
                .await?,
            ),
        ),
        ApiCmd::List => print(out, &to_value(&p.list_apis().await?)),
        ApiCmd::Show { identifier } => print(out, &to_value(&p.get_api(&identifier).await?)),
        ApiCmd::Update {
            identifier,
            name,
            scopes,
        } => print(
            out,
            &to_value(
                &p.update_api(&ApiSpec {
                    identifier,
                    name,
                    scopes,
                })
                .await?,
            ),
        ),
        ApiCmd::Delete { identifier } => {
            p.delete_api(&identifier).await?;
            print(out, &json!({"deleted": identifier}));
        }
    }
    Ok(())
}

pub async fn run_scope(p: &Provider, cmd: ScopeCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        ScopeCmd::Create {
            name,
            display_name,
            description,
            default,
        } => print(
            out,
            &to_value(
                &p.create_scope(&ScopeSpec {
                    name,
                    display_name,
                    description,
                    default,
                })
                .await?,
            ),
        ),
        ScopeCmd::List => print(out, &to_value(&p.list_scopes().await?)),
        ScopeCmd::Show { name } => print(out, &to_value(&p.get_scope(&name).await?)),
        ScopeCmd::Update {
            name,
            display_name,
            description,
            default,
        } => print(
            out,
            &to_value(
                &p.update_scope(&ScopeSpec {
                    name,
                    display_name,
                    description,
                    default,
                })
                .await?,
            ),
        ),
        ScopeCmd::Delete { name } => {
            p.delete_scope(&name).await?;
            print(out, &json!({"deleted": name}));
        }
    }
    Ok(())
}

//! `tessera admin create`: the first administrator of a fresh install (and the admin API with
//! its scopes, which the server also creates at start).

use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::Caller;
use tessera_core::admin::ADMIN_GROUP;
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create an administrator (or make an existing user one): a member of the tessera-admins
    /// group, who may sign in to the Admin Portal.
    Create {
        #[arg(long)]
        username: String,
        /// The password (or TESSERA_NEW_PASSWORD, which stays out of the shell history);
        /// required for a new user.
        #[arg(long, env = "TESSERA_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Make an existing user an administrator. Without it an existing username (compared
        /// regardless of case) is refused, so an account someone else made earlier under that
        /// name is never promoted by mistake.
        #[arg(long)]
        existing: bool,
    },
}

pub async fn run(p: &Provider, cmd: AdminCmd, out: Output) -> anyhow::Result<()> {
    let admin = p.admin(Caller::local());
    match cmd {
        AdminCmd::Create {
            username,
            password,
            existing,
        } => {
            admin.ensure_admin_api().await?;
            let u = admin
                .make_administrator(&username, password.as_deref(), existing)
                .await?;
            print(
                out,
                &json!({
                    "id": u.id,
                    "username": u.username,
                    "group": ADMIN_GROUP,
                    "admin_api": p.admin_api(),
                }),
            );
        }
    }
    Ok(())
}

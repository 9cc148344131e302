//! `tessera user …`: create, list, show, update, set-password, block, unblock, delete, and a
//! user's factors and linked identities.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use tessera_core::admin::{Caller, PasswordChange, UserPatch, UserSpec, UserView};
use tessera_core::model::User;
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Create(CreateArgs),
    List,
    /// Show a user (by id or username).
    Show {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Change a user's username, claims, attributes or groups; unset options keep their value.
    Update {
        #[arg(allow_hyphen_values = true)]
        user: String,
        #[arg(long)]
        username: Option<String>,
        #[command(flatten)]
        data: DataArgs,
        /// Replace the groups (repeat --group; give --group "" to clear).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Set a new password (from --password or TESSERA_NEW_PASSWORD).
    SetPassword {
        #[arg(allow_hyphen_values = true)]
        user: String,
        #[arg(long, env = "TESSERA_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Block a user: no sign-in, no refresh, their tokens introspect inactive.
    Block {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    Unblock {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    Delete {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// List a user's second factors and recovery codes (never a secret or a key).
    Factors {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Remove a factor: totp, recovery_codes, or passkey:<credential id> (see `user factors`).
    RemoveFactor {
        #[arg(allow_hyphen_values = true)]
        user: String,
        factor: String,
    },
    /// List the identities at upstream identity providers linked to a user.
    Identities {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Unlink a user's identity (the subject at the identity provider, see `user identities`).
    UnlinkIdentity {
        #[arg(allow_hyphen_values = true)]
        user: String,
        idp: String,
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
    /// Ask the user to set up a second factor at their next sign-in (--off: stop asking).
    RequireEnrolment {
        #[arg(allow_hyphen_values = true)]
        user: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub username: String,
    /// The password (or TESSERA_NEW_PASSWORD, which stays out of the shell history).
    #[arg(long, env = "TESSERA_NEW_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// A hash made by another system, to migrate users: argon2, bcrypt, PBKDF2 or scrypt (see the
    /// README's "Migrating users and their passwords"); replaced with argon2id at the first sign-in.
    #[arg(long)]
    pub password_hash: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// A group the user belongs to (repeat for several).
    #[arg(long = "group")]
    pub groups: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct DataArgs {
    /// An OIDC standard claim, name=value; JSON values (true, {"country":"BE"}) are parsed.
    #[arg(long = "claim", value_parser = parse_pair)]
    pub claims: Vec<(String, Value)>,
    /// A custom attribute, name=value; JSON values are parsed.
    #[arg(long = "attribute", value_parser = parse_pair)]
    pub attributes: Vec<(String, Value)>,
}

fn parse_pair(s: &str) -> Result<(String, Value), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} must be name=value"))?;
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

/// A user as printed: never the password hash.
pub fn view(u: &User) -> Value {
    serde_json::to_value(UserView::from(u)).unwrap_or_default()
}

fn map(pairs: Vec<(String, Value)>) -> Map<String, Value> {
    pairs.into_iter().collect()
}

pub async fn run(p: &Provider, cmd: UserCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    let patch = |blocked| UserPatch {
        blocked: Some(blocked),
        ..UserPatch::default()
    };
    let value = match cmd {
        UserCmd::Create(a) => {
            let spec = UserSpec {
                username: a.username,
                password: a.password,
                password_hash: a.password_hash,
                claims: map(a.data.claims),
                attributes: map(a.data.attributes),
                groups: a.groups,
                blocked: false,
            };
            view(&p.create_user(&spec).await?)
        }
        UserCmd::List => Value::Array(p.users().await?.iter().map(view).collect()),
        UserCmd::Show { user } => view(&p.user(&user).await?),
        UserCmd::Update {
            user,
            username,
            data,
            groups,
        } => {
            let patch = UserPatch {
                username,
                claims: map(data.claims),
                attributes: map(data.attributes),
                groups: (!groups.is_empty())
                    .then(|| groups.into_iter().filter(|g| !g.is_empty()).collect()),
                blocked: None,
            };
            view(&p.update_user(&user, &patch).await?)
        }
        UserCmd::SetPassword { user, password } => {
            let change = PasswordChange {
                password,
                current_password: None,
            };
            p.set_user_password(&user, &change).await?;
            json!({"user": user, "password": "set"})
        }
        UserCmd::Block { user } => view(&p.update_user(&user, &patch(true)).await?),
        UserCmd::Unblock { user } => view(&p.update_user(&user, &patch(false)).await?),
        UserCmd::Delete { user } => {
            p.delete_user(&user).await?;
            json!({"deleted": user})
        }
        UserCmd::Factors { user } => serde_json::to_value(p.user_factors(&user).await?)?,
        UserCmd::RemoveFactor { user, factor } => {
            p.remove_factor(&user, &factor).await?;
            json!({"user": user, "removed": factor})
        }
        UserCmd::Identities { user } => serde_json::to_value(p.identities(&user).await?)?,
        UserCmd::UnlinkIdentity { user, idp, subject } => {
            p.unlink_identity(&user, &idp, &subject).await?;
            json!({"user": user, "unlinked": {"idp": idp, "subject": subject}})
        }
        UserCmd::RequireEnrolment { user, off } => {
            p.require_enrolment(&user, !off).await?;
            json!({"user": user, "enrolment_required": !off})
        }
    };
    print(out, &value);
    Ok(())
}

//! `tessera client …`: create (secret printed once), list, show, update, delete, rotate-secret.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tessera_core::admin::{ClientPatch, ClientSpec};
use tessera_core::model::{Alg, AuthMethod, Client, ClientType, TokenFormat};
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Register an application; prints its client_id and secret (the secret only this once).
    Create(CreateArgs),
    List,
    Show {
        client_id: String,
    },
    /// Change settings of an application; unset options keep their value.
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        opts: Options,
    },
    Delete {
        client_id: String,
    },
    /// Replace the secret: the old one stops working at once; the new one is printed once.
    RotateSecret {
        client_id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Application type: m2m (machine to machine).
    #[arg(long = "type", value_parser = parse_type)]
    pub client_type: ClientType,
    #[arg(long)]
    pub name: String,
    /// An explicit client_id, to migrate an existing integration.
    #[arg(long)]
    pub client_id: Option<String>,
    /// An explicit secret, to migrate an existing integration (at least 16 characters).
    #[arg(long, env = "TESSERA_NEW_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    #[command(flatten)]
    pub opts: Options,
}

#[derive(Debug, Args, Default)]
pub struct Options {
    #[arg(long)]
    pub description: Option<String>,
    /// A scope the client may request (repeat for several).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// An API identifier (audience) the client may obtain tokens for (repeat for several).
    #[arg(long = "api")]
    pub apis: Vec<String>,
    /// Access token format: jwt or opaque.
    #[arg(long, value_parser = parse_format)]
    pub token_format: Option<TokenFormat>,
    /// JWT access token signing algorithm: RS256, PS256, ES256 or EdDSA.
    #[arg(long, value_parser = parse_alg)]
    pub signing_alg: Option<Alg>,
    /// client_secret_basic or client_secret_post.
    #[arg(long, value_parser = parse_auth)]
    pub auth_method: Option<AuthMethod>,
    /// Access token lifetime in seconds (60-86400).
    #[arg(long)]
    pub access_token_ttl: Option<i64>,
    /// May the client call the introspection endpoint.
    #[arg(long)]
    pub introspection: Option<bool>,
    #[arg(long)]
    pub enabled: Option<bool>,
}

fn parse_type(s: &str) -> Result<ClientType, String> {
    ClientType::parse(s).ok_or_else(|| format!("unknown type {s:?}: web, m2m, spa or native"))
}
fn parse_format(s: &str) -> Result<TokenFormat, String> {
    TokenFormat::parse(s).ok_or_else(|| format!("unknown token format {s:?}: jwt or opaque"))
}
pub(crate) fn parse_alg(s: &str) -> Result<Alg, String> {
    Alg::parse(s).ok_or_else(|| format!("unknown algorithm {s:?}: RS256, PS256, ES256 or EdDSA"))
}
fn parse_auth(s: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(s)
        .ok_or_else(|| format!("unknown method {s:?}: client_secret_basic or client_secret_post"))
}

/// A client as printed: never the secret's ciphertext.
pub fn view(c: &Client) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("secret_ciphertext");
    }
    v
}

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

pub async fn run(p: &Provider, cmd: ClientCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        ClientCmd::Create(a) => {
            let spec = ClientSpec {
                client_id: a.client_id,
                client_secret: a.client_secret,
                name: a.name,
                description: a.opts.description.unwrap_or_default(),
                client_type: a.client_type,
                scopes: a.opts.scopes,
                apis: a.opts.apis,
                token_format: a.opts.token_format,
                signing_alg: a.opts.signing_alg,
                auth_method: a.opts.auth_method,
                access_token_ttl: a.opts.access_token_ttl,
                introspection_allowed: a.opts.introspection,
                enabled: a.opts.enabled,
            };
            let created = p.create_client(&spec).await?;
            let mut v = view(&created.client);
            v["client_secret"] = json!(created.client_secret);
            print(out, &v);
            if out == Output::Text {
                eprintln!("\nCopy the client secret now: it will not be displayed again.");
            }
        }
        ClientCmd::List => {
            let all: Vec<Value> = p.list_clients().await?.iter().map(view).collect();
            print(out, &Value::Array(all));
        }
        ClientCmd::Show { client_id } => print(out, &view(&p.get_client(&client_id).await?)),
        ClientCmd::Update {
            client_id,
            name,
            opts,
        } => {
            let patch = ClientPatch {
                name,
                description: opts.description,
                scopes: non_empty(opts.scopes),
                apis: non_empty(opts.apis),
                token_format: opts.token_format,
                signing_alg: opts.signing_alg,
                auth_method: opts.auth_method,
                access_token_ttl: opts.access_token_ttl,
                introspection_allowed: opts.introspection,
                enabled: opts.enabled,
            };
            print(out, &view(&p.update_client(&client_id, &patch).await?));
        }
        ClientCmd::Delete { client_id } => {
            p.delete_client(&client_id).await?;
            print(out, &json!({"deleted": client_id}));
        }
        ClientCmd::RotateSecret { client_id } => {
            let secret = p.rotate_client_secret(&client_id).await?;
            print(
                out,
                &json!({"client_id": client_id, "client_secret": secret}),
            );
            if out == Output::Text {
                eprintln!("\nThe previous secret no longer works. Copy the new one now: it will not be displayed again.");
            }
        }
    }
    Ok(())
}

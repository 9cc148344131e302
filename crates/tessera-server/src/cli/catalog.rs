//! `tessera api …`, `tessera scope …` and `tessera scheme …`.

use clap::{Args, Subcommand};
use serde_json::json;
use tessera_core::admin::Caller;
use tessera_core::admin::{ApiSpec, SchemeSpec, ScopeSpec};
use tessera_core::factor::Method;
use tessera_core::Provider;

use super::{print, Output};

/// An API as given on the command line (create, and update which replaces name and scopes).
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The identifier (absolute URI) that becomes the `aud` of tokens issued for the API.
    #[arg(long)]
    identifier: String,
    #[arg(long, default_value = "")]
    name: String,
    /// A scope the API defines (repeat for several); missing scopes are created.
    #[arg(long = "scope")]
    scopes: Vec<String>,
}

/// A scope as given on the command line (create, and update which replaces every field).
#[derive(Debug, Args)]
pub struct ScopeArgs {
    name: String,
    #[arg(long, default_value = "")]
    display_name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Granted when a request names no scope.
    #[arg(long)]
    default: bool,
    /// Leave the scope out of discovery's scopes_supported.
    #[arg(long)]
    hidden: bool,
    /// A custom claim the scope releases, as claim=attribute (repeat for several).
    #[arg(long = "claim", value_parser = parse_claim)]
    claims: Vec<(String, String)>,
}

fn parse_claim(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(c, a)| (c.to_owned(), a.to_owned()))
        .ok_or_else(|| format!("{s:?} must be claim=attribute"))
}

/// An authentication scheme as given on the command line (create, and update which replaces it).
#[derive(Debug, Args)]
pub struct SchemeArgs {
    name: String,
    /// A set of methods proved together, joined by '+': password, totp, passkey, upstream (repeat for
    /// alternatives: --methods password+totp --methods passkey).
    #[arg(long = "methods", value_parser = parse_methods, required = true)]
    methods: Vec<Vec<Method>>,
    /// The acr value the scheme yields (unique among schemes).
    #[arg(long)]
    acr: String,
    #[arg(long, default_value = "")]
    display_name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Seconds a proved factor counts for in the SSO session (at least 60).
    #[arg(long)]
    factor_lifetime: Option<i64>,
    /// Users who lack a factor may not set one up while signing in.
    #[arg(long)]
    no_enrolment: bool,
    /// An identity provider the `upstream` method signs in at (repeat for several).
    #[arg(long = "identity-provider")]
    identity_providers: Vec<String>,
}

fn parse_methods(s: &str) -> Result<Vec<Method>, String> {
    s.split('+')
        .map(|m| {
            Method::parse(m.trim())
                .ok_or_else(|| format!("unknown method {m:?}: password, totp, passkey or upstream"))
        })
        .collect()
}

impl From<SchemeArgs> for SchemeSpec {
    fn from(a: SchemeArgs) -> SchemeSpec {
        SchemeSpec {
            name: a.name,
            display_name: a.display_name,
            description: a.description,
            methods: a.methods,
            acr: a.acr,
            factor_lifetime: a.factor_lifetime,
            enrolment: Some(!a.no_enrolment),
            identity_providers: a.identity_providers,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SchemeCmd {
    /// Create an authentication scheme.
    Create(SchemeArgs),
    List,
    Show {
        name: String,
    },
    /// Replace an authentication scheme.
    Update(SchemeArgs),
    /// Delete a scheme no application uses.
    Delete {
        name: String,
    },
}

pub async fn run_scheme(p: &Provider, cmd: SchemeCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    let value = match cmd {
        SchemeCmd::Create(a) => to_value(&p.create_scheme(&a.into()).await?),
        SchemeCmd::List => to_value(&p.schemes().await?),
        SchemeCmd::Show { name } => to_value(&p.scheme(&name).await?),
        SchemeCmd::Update(a) => to_value(&p.update_scheme(&a.into()).await?),
        SchemeCmd::Delete { name } => {
            p.delete_scheme(&name).await?;
            json!({ "deleted": name })
        }
    };
    print(out, &value);
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Register an API.
    Create(ApiArgs),
    List,
    Show {
        identifier: String,
    },
    /// Replace the name and scopes of an API.
    Update(ApiArgs),
    Delete {
        identifier: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    Create(ScopeArgs),
    List,
    Show {
        name: String,
    },
    /// Replace the display name, description and default flag of a scope.
    Update(ScopeArgs),
    Delete {
        name: String,
    },
}

impl From<ApiArgs> for ApiSpec {
    fn from(a: ApiArgs) -> ApiSpec {
        ApiSpec {
            identifier: a.identifier,
            name: a.name,
            scopes: a.scopes,
        }
    }
}

impl From<ScopeArgs> for ScopeSpec {
    fn from(a: ScopeArgs) -> ScopeSpec {
        ScopeSpec {
            name: a.name,
            display_name: a.display_name,
            description: a.description,
            default: a.default,
            discoverable: Some(!a.hidden),
            claims: a.claims.into_iter().collect(),
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub async fn run_api(p: &Provider, cmd: ApiCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    let value = match cmd {
        ApiCmd::Create(a) => to_value(&p.create_api(&a.into()).await?),
        ApiCmd::List => to_value(&p.apis().await?),
        ApiCmd::Show { identifier } => to_value(&p.api(&identifier).await?),
        ApiCmd::Update(a) => to_value(&p.update_api(&a.into()).await?),
        ApiCmd::Delete { identifier } => {
            p.delete_api(&identifier).await?;
            json!({ "deleted": identifier })
        }
    };
    print(out, &value);
    Ok(())
}

pub async fn run_scope(p: &Provider, cmd: ScopeCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    let value = match cmd {
        ScopeCmd::Create(a) => to_value(&p.create_scope(&a.into()).await?),
        ScopeCmd::List => to_value(&p.scopes().await?),
        ScopeCmd::Show { name } => to_value(&p.scope(&name).await?),
        ScopeCmd::Update(a) => to_value(&p.update_scope(&a.into()).await?),
        ScopeCmd::Delete { name } => {
            p.delete_scope(&name).await?;
            json!({ "deleted": name })
        }
    };
    print(out, &value);
    Ok(())
}

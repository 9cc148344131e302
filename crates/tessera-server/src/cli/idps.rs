//! `tessera idp …`: upstream identity providers users sign in at.

use std::collections::BTreeMap;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tessera_core::admin::{Caller, IdpSpec};
use tessera_core::federation::{IdpProtocol, Mapping, UpstreamAuth};
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    Oidc,
    Oauth2,
    Saml,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

/// An identity provider as given on the command line (create, and update which replaces it; a
/// client secret not given is kept).
#[derive(Debug, Args)]
pub struct IdpArgs {
    /// Lower-case letters, digits, '-', '_' and '.'; part of the callback URL.
    name: String,
    #[arg(long, value_enum, default_value = "oidc")]
    protocol: Protocol,
    /// OpenID Connect: the issuer; its discovery document gives the endpoints and keys.
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    authorization_endpoint: Option<String>,
    #[arg(long)]
    token_endpoint: Option<String>,
    #[arg(long)]
    userinfo_endpoint: Option<String>,
    /// Tessera's client id there (OpenID Connect and OAuth 2.0).
    #[arg(long, default_value = "")]
    client_id: String,
    /// SAML: the provider's metadata URL.
    #[arg(long)]
    metadata_url: Option<String>,
    /// SAML: the provider's metadata, from this file.
    #[arg(long = "metadata-file", value_parser = read_text)]
    metadata_xml: Option<String>,
    /// SAML: the NameID format to ask for.
    #[arg(long)]
    name_id_format: Option<String>,
    /// SAML: offer Tessera's encryption key in its metadata and accept only encrypted
    /// assertions.
    #[arg(long)]
    encrypted_assertions: bool,
    /// The secret Tessera authenticates with (or TESSERA_IDP_CLIENT_SECRET).
    #[arg(long, env = "TESSERA_IDP_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    #[arg(long, value_enum, default_value = "client-secret-basic")]
    auth_method: AuthMethod,
    #[arg(long, default_value = "")]
    display_name: String,
    /// A scope to ask for (repeat; default openid email profile for OpenID Connect).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Also read the userinfo endpoint (OpenID Connect).
    #[arg(long)]
    use_userinfo: bool,
    /// The claim that identifies the user upstream (default sub, or id for OAuth 2.0).
    #[arg(long)]
    subject_claim: Option<String>,
    /// Copy an upstream claim to the user, claim=target (repeat; target: username, groups, a
    /// standard claim or attributes.<name>); replaces the default mappings.
    #[arg(long = "map", value_parser = parse_map)]
    mappings: Vec<Mapping>,
    /// Do not create users on their first sign-in: only linked users sign in.
    #[arg(long)]
    no_jit: bool,
    /// Trust the provider's verified email to link to an existing user.
    #[arg(long)]
    link_by_email: bool,
    /// An email domain whose users are sent here (repeat).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Count an upstream amr/acr value as an RFC 8176 method, upstream=method (repeat).
    #[arg(long = "amr", value_parser = parse_amr)]
    amr_map: Vec<(String, String)>,
    /// Keep the provider but refuse sign-ins at it.
    #[arg(long)]
    disabled: bool,
    /// Tessera's logout does not go on to the provider's end_session_endpoint.
    #[arg(long)]
    no_upstream_logout: bool,
    /// A client id at the provider whose ID tokens applications may exchange, besides
    /// --client-id (repeat).
    #[arg(long = "exchange-audience")]
    exchange_audiences: Vec<String>,
}

fn read_text(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn parse_map(s: &str) -> Result<Mapping, String> {
    s.split_once('=')
        .map(|(c, t)| Mapping {
            claim: c.to_owned(),
            to: t.to_owned(),
        })
        .ok_or_else(|| format!("{s:?} must be claim=target"))
}

fn parse_amr(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(u, m)| (u.to_owned(), m.to_owned()))
        .ok_or_else(|| format!("{s:?} must be upstream=method"))
}

impl From<IdpArgs> for IdpSpec {
    fn from(a: IdpArgs) -> IdpSpec {
        let saml = matches!(a.protocol, Protocol::Saml);
        IdpSpec {
            name: a.name,
            display_name: a.display_name,
            enabled: Some(!a.disabled),
            protocol: match a.protocol {
                Protocol::Oidc => IdpProtocol::Oidc,
                Protocol::Oauth2 => IdpProtocol::Oauth2,
                Protocol::Saml => IdpProtocol::Saml,
            },
            issuer: a.issuer,
            authorization_endpoint: a.authorization_endpoint,
            token_endpoint: a.token_endpoint,
            userinfo_endpoint: a.userinfo_endpoint,
            client_id: a.client_id,
            // TESSERA_IDP_CLIENT_SECRET may be set for the OpenID providers made alongside: a
            // SAML provider has no client secret.
            client_secret: a.client_secret.filter(|_| !saml),
            auth_method: match a.auth_method {
                AuthMethod::ClientSecretBasic => UpstreamAuth::ClientSecretBasic,
                AuthMethod::ClientSecretPost => UpstreamAuth::ClientSecretPost,
                AuthMethod::PrivateKeyJwt => UpstreamAuth::PrivateKeyJwt,
                AuthMethod::None => UpstreamAuth::None,
            },
            scopes: (!a.scopes.is_empty()).then_some(a.scopes),
            use_userinfo: a.use_userinfo,
            subject_claim: a.subject_claim,
            mappings: (!a.mappings.is_empty()).then_some(a.mappings),
            jit: Some(!a.no_jit),
            link_by_email: a.link_by_email,
            domains: a.domains,
            amr_map: a.amr_map.into_iter().collect::<BTreeMap<_, _>>(),
            upstream_logout: Some(!a.no_upstream_logout),
            exchange_audiences: a.exchange_audiences,
            metadata_url: a.metadata_url,
            metadata_xml: a.metadata_xml,
            name_id_format: a.name_id_format,
            encrypted_assertions: a.encrypted_assertions,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IdpCmd {
    /// Add an identity provider (prints the redirect URI to register at it).
    Create(IdpArgs),
    List,
    Show {
        name: String,
    },
    /// Replace an identity provider (the stored client secret is kept unless one is given).
    Update(IdpArgs),
    /// Delete a provider no scheme names; its linked identities are unlinked.
    Delete {
        name: String,
    },
}

pub async fn run(p: &Provider, cmd: IdpCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    let value = match cmd {
        IdpCmd::Create(a) => serde_json::to_value(p.create_idp(&a.into()).await?)?,
        IdpCmd::List => serde_json::to_value(p.idps().await?)?,
        IdpCmd::Show { name } => serde_json::to_value(p.idp(&name).await?)?,
        IdpCmd::Update(a) => serde_json::to_value(p.update_idp(&a.into()).await?)?,
        IdpCmd::Delete { name } => {
            p.delete_idp(&name).await?;
            json!({ "deleted": name })
        }
    };
    print(out, &value);
    Ok(())
}

//! `tessera import keycloak realm-export.json`: a Keycloak realm as an apply file (written out,
//! or applied with `--apply`), and the report of what is not carried over.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use tessera_core::admin::{Caller, KeycloakImport, SpecFile};
use tessera_core::Provider;

use super::apply::{apply_spec, print_plan};
use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// A realm export of Keycloak 19 to 26 (`kc.sh export --realm NAME --file realm.json`).
    Keycloak(KeycloakArgs),
}

#[derive(Debug, Args)]
pub struct KeycloakArgs {
    /// The export (one realm, or an array of realms).
    pub export: PathBuf,
    /// The realm to import when the export holds several.
    #[arg(long)]
    pub realm: Option<String>,
    /// Write the apply file here instead of to standard output.
    #[arg(long, short = 'f', conflicts_with = "apply")]
    pub file: Option<PathBuf>,
    /// Apply it to this store instead of writing the file (with the plan printed).
    #[arg(long)]
    pub apply: bool,
    /// With --apply: print the plan without changing anything.
    #[arg(long, requires = "apply")]
    pub dry_run: bool,
}

pub async fn run(p: &Provider, c: ImportCmd, out: Output) -> anyhow::Result<()> {
    let ImportCmd::Keycloak(a) = c;
    let admin = p.admin(Caller::local());
    let text = std::fs::read_to_string(&a.export)
        .with_context(|| format!("cannot read {}", a.export.display()))?;
    let import = admin
        .import_keycloak(&text, a.realm.as_deref())
        .await
        .with_context(|| format!("{} cannot be imported", a.export.display()))?;
    if a.apply {
        let plan = apply_spec(&admin, &import.spec, false, a.dry_run).await?;
        match out {
            Output::Json => print(
                out,
                &json!({"report": report_json(&import), "dry_run": a.dry_run, "plan": plan.items}),
            ),
            Output::Text => {
                report_text(&import);
                print_plan(&plan, a.dry_run, out);
            }
        }
        return Ok(());
    }
    let yaml =
        serde_norway::to_string(&SpecFile::of(&import.spec)).context("cannot write the file")?;
    let file = format!(
        "# tessera import keycloak: realm {} of Keycloak {} ({} finding(s) in the report).\n\
         # It holds client secrets and password hashes: keep it as a secret. Apply it with\n\
         # tessera apply -f FILE (--dry-run first).\n{yaml}",
        import.realm,
        import.keycloak_version,
        import.findings.len()
    );
    if let Some(path) = &a.file {
        write_private(path, &file).with_context(|| format!("cannot write {}", path.display()))?;
    }
    match (out, a.file.is_some()) {
        (Output::Json, true) => print(out, &json!({"report": report_json(&import)})),
        // Standard output is the one JSON document: the file is in it.
        (Output::Json, false) => print(out, &json!({"report": report_json(&import), "file": file})),
        (Output::Text, written) => {
            report_text(&import);
            if !written {
                print!("{file}");
            }
        }
    }
    Ok(())
}

fn report_json(import: &KeycloakImport) -> serde_json::Value {
    let s = &import.spec;
    json!({
        "realm": import.realm, "keycloak_version": import.keycloak_version,
        "imported": {
            "scopes": s.scopes.len(), "apis": s.apis.len(),
            "identity_providers": s.identity_providers.len(), "clients": s.clients.len(),
            "users": s.users.len(),
        },
        "findings": import.findings,
    })
}

/// The report as text, on standard error (standard output keeps the file or the plan).
fn report_text(import: &KeycloakImport) {
    let s = &import.spec;
    eprintln!(
        "realm {} (Keycloak {}): {} scope(s), {} API(s), {} identity provider(s), {} application(s), {} user(s)",
        import.realm,
        import.keycloak_version,
        s.scopes.len(),
        s.apis.len(),
        s.identity_providers.len(),
        s.clients.len(),
        s.users.len()
    );
    for f in &import.findings {
        eprintln!("{:12}  {}  {}", f.outcome.as_str(), f.at, f.reason);
    }
}

/// Writes `text` to a new or emptied file only its owner may read (it holds secrets and hashes).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(text.as_bytes())
}

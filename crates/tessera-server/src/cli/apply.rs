//! `tessera apply -f tessera.yaml [--dry-run] [--prune]`: declarative configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tessera_core::admin::{Action, Admin, Caller, Plan, Spec};
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The YAML file (scopes, apis, identity_providers, schemes, clients, users).
    #[arg(long, short = 'f')]
    pub file: PathBuf,
    /// Print the plan without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete the scopes, APIs, identity providers, schemes and clients the file does not
    /// declare (never Tessera's own, nor users).
    #[arg(long)]
    pub prune: bool,
    /// With --dry-run: exit with status 2 when the store differs from the file (drift).
    #[arg(long)]
    pub exit_code: bool,
}

/// `apply --dry-run --exit-code` found changes to make: the process exits with status 2.
#[derive(Debug)]
pub struct Drift(pub usize);

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "drift: the store differs from the file in {} place(s)",
            self.0
        )
    }
}

impl std::error::Error for Drift {}

/// Parses a declarative file (unknown keys are errors).
pub fn parse_spec(text: &str) -> Result<Spec, serde_norway::Error> {
    serde_norway::from_str(text)
}

pub async fn run(p: &Provider, a: ApplyArgs, out: Output) -> anyhow::Result<()> {
    // Status 2 must mean drift only: asked of a real apply, it is an error (status 1).
    anyhow::ensure!(
        a.dry_run || !a.exit_code,
        "--exit-code reports drift without changing anything: it needs --dry-run"
    );
    let p = &p.admin(Caller::local());
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let spec = parse_spec(&text)
        .with_context(|| format!("{} is not a valid Tessera file", a.file.display()))?;
    let plan = apply_spec(p, &spec, a.prune, a.dry_run).await?;
    let changes = print_plan(&plan, a.dry_run, out);
    if a.exit_code && changes > 0 {
        return Err(Drift(changes).into());
    }
    Ok(())
}

/// Plans `spec` and applies it unless `dry_run`.
pub async fn apply_spec(
    p: &Admin<'_>,
    spec: &Spec,
    prune: bool,
    dry_run: bool,
) -> anyhow::Result<Plan> {
    let plan = p.plan(spec, prune).await?;
    if !dry_run {
        p.apply_plan(&plan).await?;
    }
    Ok(plan)
}

/// How many changes a plan has.
pub fn changes(plan: &Plan) -> usize {
    plan.items
        .iter()
        .filter(|i| i.action != Action::Unchanged)
        .count()
}

/// Prints the plan (with the secrets generated, once, when it was applied); returns how many
/// changes it has.
pub fn print_plan(plan: &Plan, dry_run: bool, out: Output) -> usize {
    let changes = changes(plan);
    match out {
        Output::Json => print(out, &json!({"dry_run": dry_run, "plan": plan.items})),
        Output::Text => {
            for item in &plan.items {
                let action = match item.action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Unchanged => "unchanged",
                    Action::Delete => "delete",
                };
                println!("{action:9}  {:6}  {}", item.kind, item.key);
                if let (Some(secret), false) = (&item.client_secret, dry_run) {
                    println!("           client_secret {secret}  (copy it now: it will not be displayed again)");
                }
            }
            println!(
                "{} change(s){}",
                changes,
                if dry_run {
                    " planned (dry run: nothing written)"
                } else {
                    " applied"
                }
            );
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    #[test]
    fn unknown_keys_are_refused() {
        assert!(
            super::parse_spec("clients:\n  - name: x\n    type: m2m\n    colour: red\n").is_err()
        );
        assert!(super::parse_spec("scopes: []\napis: []\nclients: []\n").is_ok());
    }

    proptest! {
        #[test]
        fn the_declarative_parser_never_panics(text in "(?s).{0,400}") {
            let _ = super::parse_spec(&text);
        }

        #[test]
        fn yaml_shaped_input_never_panics(
            key in prop::sample::select(vec!["scopes", "apis", "clients", "name", "type", "client_id", "x"]),
            value in "[ -~]{0,40}",
        ) {
            let _ = super::parse_spec(&format!("{key}:\n  - name: {value}\n    type: {value}\n    scopes: [{value}]\n"));
        }
    }
}

//! `tessera export [-f tessera.yaml]`: the stored configuration as an apply file, which
//! `tessera apply --dry-run` then reports unchanged.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tessera_core::admin::{Caller, SECRET_KEPT};
use tessera_core::Provider;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write the file here instead of to standard output.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
}

pub async fn run(p: &Provider, a: ExportArgs) -> anyhow::Result<()> {
    let export = p.admin(Caller::local()).export().await?;
    let yaml = serde_norway::to_string(&export.file()).context("cannot write the export")?;
    let text = format!(
        "# tessera export at configuration version {}. Secrets are never exported:\n\
         # {SECRET_KEPT:?} keeps the stored one when the file is applied.\n{yaml}",
        export.version
    );
    match a.file {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

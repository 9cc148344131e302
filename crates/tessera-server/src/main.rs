//! `tessera`: parses the command line and runs it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = tessera_server::cli::Cli::parse();
    match tessera_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Not a failure: the plan a CI pipeline asked about has changes (status 2; 1 is an error).
        Err(e) if e.is::<tessera_server::cli::apply::Drift>() => {
            eprintln!("{e}");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

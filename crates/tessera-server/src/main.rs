//! `tessera`: parses the command line and runs it.

use clap::Parser;

/// mimalloc: each request allocates and frees many small buffers on two or more threads; glibc's
/// allocator spent a tenth of the CPU there, and kept more memory per thread arena.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A usage error exits 1, as every other error does: status 2 means drift only
    // (`apply --dry-run --exit-code`), and a mistyped flag in a pipeline must not read as drift.
    let cli = match tessera_server::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
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

//! Starting a peer process of the tests (node-oidc-provider, the SAML identity provider) and
//! reading the ready line it prints once it listens.

use std::io::Write;
use std::process::Stdio;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// How long a peer may print nothing before it is replaced: each starts in about a second.
const SILENT: std::time::Duration = std::time::Duration::from_secs(60);
/// Starts of a peer before the test fails.
const STARTS: u32 = 4;

/// Starts what `command` makes, stopped when dropped, and returns it with its first line. Twice
/// in CI a node peer printed nothing for minutes (once two at once), not reproduced in hundreds
/// of starts alone or in whole runs of the tests: so a silent peer's threads are shown on the
/// log (past the test harness's capture) and the peer replaced; one that never starts fails
/// the test.
pub(crate) async fn started(what: &str, command: impl Fn() -> Command) -> (Child, String) {
    for attempt in 1..=STARTS {
        let mut command = command();
        command.stdout(Stdio::piped()).kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        let out = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(out).lines();
        if let Ok(line) = tokio::time::timeout(SILENT, lines.next_line()).await {
            let line = line.expect("read").unwrap_or_else(|| {
                panic!("{what} ended without its ready line");
            });
            return (child, line);
        }
        let _ = writeln!(
            std::io::stderr(),
            "{what} printed nothing in {} s (start {attempt} of {STARTS}): {}",
            SILENT.as_secs(),
            threads(&child)
        );
    }
    panic!("{what} never started");
}

/// What a child's threads are doing: each one's name, state and kernel wait channel.
fn threads(child: &Child) -> String {
    let Some(pid) = child.id() else {
        return "exited".into();
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("pid {pid} gone");
    };
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    tasks
        .flatten()
        .map(|t| {
            let stat = read(t.path().join("stat"));
            let state = stat.rsplit(") ").next().unwrap_or("").split(' ').next();
            format!(
                "{} {} {}",
                read(t.path().join("comm")).trim(),
                state.unwrap_or("?"),
                read(t.path().join("wchan")),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

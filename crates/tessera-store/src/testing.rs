//! Test support: a fresh PostgreSQL database per test, on the server `TEST_DATABASE_URL` names.

use std::io::Write;

use sqlx::Executor;

/// Creates an empty database on the `TEST_DATABASE_URL` server for the test `test` and returns its
/// URL. When the variable is not set, the test cannot run: with `TESSERA_TESTS_REQUIRE_POSTGRES`
/// set (as `scripts/test` sets it) that fails the test; otherwise it says `SKIPPED` on the
/// terminal, past the test harness's capture, and returns `None`. A server that is named but cannot
/// be reached fails the test: a PostgreSQL run never passes without running.
pub async fn fresh_postgres_database(test: &str) -> Option<String> {
    let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        skipped(test);
        return None;
    };
    static DRIVERS: std::sync::Once = std::sync::Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let name = format!(
        "tessera_test_{}",
        tessera_core::secret::b64url(&tessera_core::secret::random_bytes::<9>())
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    #[allow(clippy::expect_used)] // a named server that cannot be used fails the test
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .expect("TEST_DATABASE_URL names a PostgreSQL server this test cannot connect to");
    #[allow(clippy::expect_used)]
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("the TEST_DATABASE_URL server refused CREATE DATABASE");
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (admin_url.clone(), String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s.to_owned())
        .unwrap_or(base);
    Some(format!("{server}/{name}{query}"))
}

/// Reports the PostgreSQL test `test` as not run: fails it when `TESSERA_TESTS_REQUIRE_POSTGRES` is
/// set, else writes `SKIPPED` straight to the process's stderr (the harness captures only the
/// print macros, so the line shows even when the test passes).
fn skipped(test: &str) {
    let why = "TEST_DATABASE_URL is not set (scripts/test starts a throwaway PostgreSQL)";
    assert!(
        std::env::var_os("TESSERA_TESTS_REQUIRE_POSTGRES").is_none(),
        "{test}: {why}"
    );
    let _ = writeln!(std::io::stderr().lock(), "test {test} ... SKIPPED: {why}");
}

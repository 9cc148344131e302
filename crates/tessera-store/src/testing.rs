//! Test support: a fresh PostgreSQL database per test, on the server `TEST_DATABASE_URL` names.

use sqlx::Executor;

/// Creates an empty database on the `TEST_DATABASE_URL` server and returns its URL; `None` when the
/// variable is not set.
pub async fn fresh_postgres_database() -> Option<String> {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    static DRIVERS: std::sync::Once = std::sync::Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let name = format!(
        "tessera_test_{}",
        tessera_core::secret::b64url(&tessera_core::secret::random_bytes::<9>())
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .ok()?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .ok()?;
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

//! PostgreSQL specifics: one pool shared by reads and writes, short acquire timeout so an
//! unreachable database fails requests fast.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use tessera_core::store::StoreError;

use crate::pool::Pool;
use crate::sql::{Dialect, SqlStore};

pub(crate) async fn open(url: &str) -> Result<SqlStore, StoreError> {
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .map_err(crate::error::map_err)?;
    let pool = Pool::Shared(pool);
    Ok(SqlStore::new(
        Dialect::Postgres,
        pool.clone(),
        pool,
        None,
        false,
    ))
}

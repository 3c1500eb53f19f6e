//! The database pool and migrations. Each service owns one schema and keeps
//! its own migration table in it (`<schema>._sqlx_migrations`, configured by
//! the service's `sqlx.toml`), so services migrate independently even when
//! they share a database.

use std::time::Duration;

use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};

use crate::ServerConfig;

pub async fn connect(url: &str, cfg: &ServerConfig) -> Result<PgPool, sqlx::Error> {
    connect_with(url, cfg.pool_size(), Duration::from_millis(cfg.db_acquire_timeout_ms)).await
}

pub async fn connect_with(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .connect(url)
        .await
}

/// Applies a service's embedded migrations. sqlx takes a database-wide
/// advisory lock, so replicas starting together migrate once.
pub async fn migrate(pool: &PgPool, migrator: &Migrator, service: &str) -> Result<(), sqlx::migrate::MigrateError> {
    migrator.run(pool).await?;
    tracing::info!(service, migrations = migrator.iter().count(), "schema migrated");
    Ok(())
}

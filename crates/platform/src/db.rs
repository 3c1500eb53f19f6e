//! The database pool and migrations. Each service owns one schema and keeps
//! its own migration table in it (`<schema>._sqlx_migrations`, configured by
//! the service's `sqlx.toml`), so services migrate independently even when
//! they share a database.
//!
//! No query outlives its call:
//! - every statement runs under `statement_timeout`, below the RPC deadline;
//! - a call abandoned mid-query (client gone, deadline passed) drops its
//!   connection: on its way back to the pool the connection gets a short
//!   moment to finish what it was doing, and is closed otherwise; Postgres
//!   notices the closed socket within `client_connection_check_interval`
//!   and cancels the query, so a burst of abandoned slow calls cannot hold
//!   the pool;
//! - connections are not pinged when handed out (the next query finds a
//!   broken one, and that call answers UNAVAILABLE): one round trip less
//!   per call.

use std::time::Duration;

use sqlx::{
    Connection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::ServerConfig;

/// How long a connection coming back to the pool may take to finish its
/// last statement before it is closed instead (see the module comment).
const RELEASE_GRACE: Duration = Duration::from_millis(250);

/// How often Postgres checks, while running a query, that its client is
/// still connected.
const CLIENT_CHECK_INTERVAL_MS: u64 = 1_000;

pub async fn connect(url: &str, cfg: &ServerConfig) -> Result<PgPool, sqlx::Error> {
    connect_with_timeout(
        url,
        cfg.pool_size(),
        Duration::from_millis(cfg.db_acquire_timeout_ms),
        Some(cfg.statement_timeout()),
    )
    .await
}

/// A pool without a statement timeout (tests' assertion pools, tools).
pub async fn connect_with(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    connect_with_timeout(url, max_connections, acquire_timeout, None).await
}

pub async fn connect_with_timeout(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, sqlx::Error> {
    let mut options: PgConnectOptions = url.parse()?;
    let mut settings = vec![("client_connection_check_interval", format!("{CLIENT_CHECK_INTERVAL_MS}"))];
    if let Some(t) = statement_timeout {
        settings.push(("statement_timeout", t.as_millis().to_string()));
    }
    options = options.options(settings);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(false)
        .after_release(|conn, _meta| {
            Box::pin(async move {
                // Finished cleanly: the sync round trip answers at once. Still
                // busy with a statement its caller abandoned: close it, and
                // Postgres cancels the statement.
                match tokio::time::timeout(RELEASE_GRACE, conn.ping()).await {
                    Ok(Ok(())) => Ok(true),
                    // Broken (the server went away): closed, and replaced on demand.
                    Ok(Err(_)) => Ok(false),
                    Err(_) => {
                        metrics::counter!("crm_db_abandoned_statements_total").increment(1);
                        tracing::info!("closing a connection whose statement was abandoned by its call");
                        Ok(false)
                    }
                }
            })
        })
        .connect_with(options)
        .await
}

/// Applies a service's embedded migrations on a connection of its own,
/// without the statement timeout (an index build may take longer). sqlx
/// takes a database-wide advisory lock, so replicas starting together
/// migrate once.
pub async fn migrate(pool: &PgPool, migrator: &Migrator, service: &str) -> Result<(), sqlx::migrate::MigrateError> {
    let options = (*pool.connect_options()).clone().options([("statement_timeout", "0")]);
    let mut conn = sqlx::PgConnection::connect_with(&options).await?;
    migrator.run(&mut conn).await?;
    let _ = conn.close().await;
    tracing::info!(service, migrations = migrator.iter().count(), "schema migrated");
    Ok(())
}

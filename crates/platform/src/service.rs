//! Running a service: what a service declares about itself (`ServiceDef`) and
//! the one start-up sequence every service binary, `crm serve` and `crm up`
//! share — connect, migrate, start background work, bind, serve.

use std::{net::SocketAddr, time::Duration};

use crm_domain::WorkingCalendar;
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;

use crate::{
    Clock, ServerConfig, ServiceSpec, TokenKeys, db, idempotency,
    server::{self, BoxError},
};

/// What the platform needs to know to run a service.
pub struct ServiceDef {
    /// Short name: `customers`, also its schema.
    pub name: &'static str,
    pub default_port: u16,
    pub migrator: &'static Migrator,
    /// Schema-qualified idempotency table, purged in the background.
    pub idempotency_table: &'static str,
    /// Builds the gRPC service over its pool.
    pub build: fn(PgPool, &ServiceContext) -> ServiceSpec,
    /// Background work (escalation, dunning...) started with the server and
    /// stopped with it. Every replica runs it, so it must be safe to run
    /// concurrently (row locks with SKIP LOCKED, advisory locks).
    pub background: Option<fn(PgPool, ServiceContext) -> BackgroundTask>,
}

/// A future that runs until the service stops (it is aborted then).
pub type BackgroundTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Shared settings a service may need to build itself.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    pub calendar: WorkingCalendar,
    /// The deployment's token keys, for minting `system` tokens to call peers.
    pub keys: TokenKeys,
    /// Where the customers service answers (CRM_CUSTOMERS_URL).
    pub customers_url: String,
    /// Where the other services answer (CRM_COMPLAINTS_URL, CRM_DISPATCH_URL,
    /// CRM_BILLING_URL): their event feeds.
    pub complaints_url: String,
    pub dispatch_url: String,
    pub billing_url: String,
    /// How often held saga steps are checked again.
    pub saga_retry: Duration,
    /// Fires when the server starts shutting down, so long-lived streams
    /// (event feeds) end and let it drain.
    pub stopping: Stopping,
    /// The one clock handlers, consumers and jobs read.
    pub clock: Clock,
}

impl ServiceContext {
    pub fn new(cfg: &ServerConfig, keys: TokenKeys) -> Result<Self, BoxError> {
        Ok(Self {
            calendar: cfg.calendar.build()?,
            keys,
            customers_url: cfg.customers_url.clone(),
            complaints_url: cfg.complaints_url.clone(),
            dispatch_url: cfg.dispatch_url.clone(),
            billing_url: cfg.billing_url.clone(),
            saga_retry: Duration::from_millis(cfg.saga_retry_ms),
            stopping: Stopping::never(),
            clock: Clock::system(),
        })
    }

    /// The URL of a peer service by its short name.
    pub fn peer_url(&self, service: &str) -> Option<&str> {
        match service {
            "customers" => Some(&self.customers_url),
            "complaints" => Some(&self.complaints_url),
            "dispatch" => Some(&self.dispatch_url),
            "billing" => Some(&self.billing_url),
            _ => None,
        }
    }
}

/// A signal that the server is shutting down.
#[derive(Debug, Clone)]
pub struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    /// A signal that never fires (until a server installs its own).
    pub fn never() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        // Keep the sender alive for ever: a dropped sender would read as "stopped".
        std::mem::forget(tx);
        Self(rx)
    }

    fn pair() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(rx))
    }

    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The token keys from `CRM_JWT_SECRET`; services refuse to start without one.
pub fn token_keys(cfg: &ServerConfig) -> Result<TokenKeys, BoxError> {
    let secret = cfg
        .jwt_secret
        .as_deref()
        .ok_or("CRM_JWT_SECRET is not set: services need the key that signs bearer tokens (>= 32 bytes)")?;
    Ok(TokenKeys::hs256(secret.as_bytes())?)
}

/// Connects to `database_url` and applies the service's migrations.
pub async fn prepare(def: &ServiceDef, cfg: &ServerConfig, database_url: &str) -> Result<PgPool, BoxError> {
    let pool = db::connect(database_url, cfg).await.map_err(|e| format!("cannot connect to the database: {e}"))?;
    db::migrate(&pool, def.migrator, def.name).await.map_err(|e| format!("{} migrations failed: {e}", def.name))?;
    Ok(pool)
}

/// Serves a prepared service on `listener` until `shutdown`, with its
/// background work; closes the pool afterwards.
pub async fn serve_prepared(
    def: &ServiceDef,
    pool: PgPool,
    listener: TcpListener,
    keys: TokenKeys,
    cfg: &ServerConfig,
    ctx: &ServiceContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let (stop_tx, stopping) = Stopping::pair();
    let ctx = &ServiceContext { stopping, ..ctx.clone() };
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let ttl = Duration::from_secs(u64::from(cfg.idempotency_ttl_hours) * 3600);
    let purge =
        tokio::spawn(idempotency::purge_loop(pool.clone(), def.idempotency_table, ttl, Duration::from_secs(3600)));
    let background = def.background.map(|start| tokio::spawn(start(pool.clone(), ctx.clone())));
    let spec = (def.build)(pool.clone(), ctx);
    let ready = crate::health::watch_database(&pool);
    let result = server::serve(listener, spec, keys, cfg, ready, shutdown).await;
    purge.abort();
    if let Some(task) = background {
        task.abort();
    }
    pool.close().await;
    result
}

/// The whole start-up of one service against `database_url`.
pub async fn run(
    def: &ServiceDef,
    cfg: &ServerConfig,
    database_url: &str,
    keys: TokenKeys,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let ctx = ServiceContext::new(cfg, keys.clone())?;
    let pool = prepare(def, cfg, database_url).await?;
    let addr = cfg.grpc_addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], def.default_port)));
    let listener = server::bind(addr).await?;
    serve_prepared(def, pool, listener, keys, cfg, &ctx, shutdown).await
}

/// The whole `main` of a service's own binary (`crm-<name>`): flags and
/// `CRM_*` variables (docs/operations.md), then [`main`]; a failure is logged,
/// printed and exit code 1.
pub fn binary(def: &'static ServiceDef) -> std::process::ExitCode {
    use clap::{Args, FromArgMatches};
    // Once per process: clap takes the program name as a static string.
    let program: &'static str = Box::leak(format!("crm-{}", def.name).into_boxed_str());
    let matches = ServerConfig::augment_args(clap::Command::new(program))
        .about(format!("The {} gRPC service", def.name))
        .version(env!("CARGO_PKG_VERSION"))
        .get_matches();
    let cfg = match ServerConfig::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let outcome = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(main(def, cfg)),
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{program} failed");
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `main` of a service binary: logs, metrics exporter, config checks, then
/// `run` until SIGTERM/SIGINT.
pub async fn main(def: &ServiceDef, cfg: ServerConfig) -> Result<(), BoxError> {
    crate::telemetry::init();
    let database_url = cfg.database_url.clone().ok_or("DATABASE_URL is not set")?;
    let keys = token_keys(&cfg)?;
    if let Some(admin) = cfg.admin_addr {
        crate::metrics::install_exporter(admin)?;
        tracing::info!(%admin, "metrics on http://{admin}/metrics");
    }
    run(def, &cfg, &database_url, keys, server::shutdown_signal()).await
}

//! The test kit: a real Postgres for every test binary (an ephemeral cluster
//! started from the machine's Postgres binaries, or `CRM_TEST_DATABASE_URL`),
//! a migrated template database built once per set of services, a fresh
//! database per test cloned from it, services spawned in-process on port 0,
//! and bearer tokens for any role.
//!
//! Each `#[tokio::test]` has its own runtime, so nothing here keeps a pool
//! across tests: shared state is plain data, connections are per test.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use crm_platform::{
    ServerConfig, ServiceContext, ServiceDef, TokenKeys, db,
    localpg::{Durability, LocalPostgres},
    server::BoxError,
    service,
};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{Mutex, OnceCell};

mod events;
mod services;

pub use crm_domain::Role;
pub use events::{HandFeed, context, event};
pub use services::{Peers, TestGroup, TestService};

/// The key test tokens are signed with.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret!!";

struct Cluster {
    /// URL of the server's maintenance database (`postgres`).
    admin_url: String,
    /// Base of the server URL, to which a database name is appended.
    base_url: String,
    prefix: String,
}

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();
static TEMPLATES: Mutex<Option<HashMap<String, String>>> = Mutex::const_new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

async fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_try_init(start_cluster).await {
        Ok(c) => c,
        Err(e) => panic!("test Postgres could not start: {e}"),
    }
}

/// A server chosen by the program (a benchmark's own tuned cluster),
/// before any database was asked for; wins over `CRM_TEST_DATABASE_URL`.
static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every database of this process live on the server of `admin_url`
/// (its maintenance database). Call before the first `database`.
pub fn use_server(admin_url: &str) {
    let _ = SERVER.set(admin_url.to_string());
}

async fn start_cluster() -> Result<Cluster, BoxError> {
    let pid = std::process::id();
    let prefix = format!("crm_t{pid}_");
    if let Some(url) = SERVER.get().cloned().or_else(|| std::env::var("CRM_TEST_DATABASE_URL").ok()) {
        let base_url =
            url.rsplit_once('/').map(|(b, _)| b.to_string()).ok_or("CRM_TEST_DATABASE_URL needs a /database")?;
        let cluster = Cluster { admin_url: url, base_url, prefix };
        drop_stale_databases(&cluster).await?;
        return Ok(cluster);
    }
    let dir = std::env::temp_dir().join(format!("crm-test-pg-{pid}-{}", uuid::Uuid::now_v7().simple()));
    let mut last_err: Option<BoxError> = None;
    for _ in 0..3 {
        let port = crm_platform::localpg::free_port()?;
        let pg = LocalPostgres::new(&dir, port)?;
        let started = {
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || pg.ensure_started(Durability::Ephemeral)).await?
        };
        match started {
            Ok(()) => {
                pg.remove_when_process_exits(pid)?;
                return Ok(Cluster {
                    admin_url: pg.url("postgres"),
                    base_url: pg.url("").trim_end_matches('/').to_string(),
                    prefix,
                });
            }
            // Another process may have taken the port in between: retry.
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| "postgres did not start".into()))
}

/// Databases left behind by earlier runs against a shared server, whose
/// process is gone.
async fn drop_stale_databases(c: &Cluster) -> Result<(), BoxError> {
    let mut conn = PgConnection::connect(&c.admin_url).await?;
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'crm\\_t%'")
        .fetch_all(&mut conn)
        .await?;
    for name in names {
        let pid = name.trim_start_matches("crm_t").split('_').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                .execute(&mut conn)
                .await;
        }
    }
    Ok(())
}

/// A pool on the cluster's maintenance database, for what a test does to
/// the server itself (closing a database to connections, say).
pub async fn admin_pool() -> PgPool {
    let c = cluster().await;
    match db::connect_with(&c.admin_url, 2, Duration::from_secs(10)).await {
        Ok(p) => p,
        Err(e) => panic!("connect to the test cluster: {e}"),
    }
}

/// A database of its own for one test, with every migration of `services`.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A small pool for assertions on what the service stored.
    pub async fn pool(&self) -> PgPool {
        match db::connect_with(&self.url, 4, Duration::from_secs(10)).await {
            Ok(p) => p,
            Err(e) => panic!("connect to test database {}: {e}", self.name),
        }
    }
}

/// Builds (once) a template with the migrations of `services` and clones it.
pub async fn database(services: &[&ServiceDef]) -> TestDb {
    match try_database(services).await {
        Ok(db) => db,
        Err(e) => panic!("test database: {e}"),
    }
}

async fn try_database(services: &[&ServiceDef]) -> Result<TestDb, BoxError> {
    let c = cluster().await;
    let key: Vec<&str> = services.iter().map(|s| s.name).collect();
    let key = key.join("+");
    let template = {
        let mut guard = TEMPLATES.lock().await;
        let templates = guard.get_or_insert_with(HashMap::new);
        match templates.get(&key) {
            Some(t) => t.clone(),
            None => {
                let t = format!("{}tpl_{}", c.prefix, templates.len());
                build_template(c, &t, services).await?;
                templates.insert(key, t.clone());
                t
            }
        }
    };
    let name = format!("{}{}", c.prefix, COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = PgConnection::connect(&c.admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(TestDb { url: format!("{}/{name}", c.base_url), name })
}

async fn build_template(c: &Cluster, name: &str, services: &[&ServiceDef]) -> Result<(), BoxError> {
    let mut conn = PgConnection::connect(&c.admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
    conn.close().await?;
    let url = format!("{}/{name}", c.base_url);
    let pool = db::connect_with(&url, 2, Duration::from_secs(30)).await?;
    for s in services {
        db::migrate(&pool, s.migrator, s.name).await?;
    }
    // A template must have no connections when it is cloned.
    pool.close().await;
    Ok(())
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Bearer(format!("Bearer {token}").parse().ok())
    }

    /// Sends no credential at all.
    pub fn none() -> Self {
        Bearer(None)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

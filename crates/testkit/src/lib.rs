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

pub use crm_domain::Role;
pub use events::{HandFeed, context, event};

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

/// A service running in-process on 127.0.0.1:<random port> against its own
/// fresh database. Stops when dropped.
pub struct TestService {
    pub addr: SocketAddr,
    pub db: TestDb,
    keys: TokenKeys,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The address of a peer a test did not start (the discard port; nothing
/// listens there, so calls fail at once).
const NO_PEER: &str = "http://127.0.0.1:9";

/// Where a service's peers answer (unset: nowhere, see `NO_PEER`).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub customers: Option<String>,
    pub complaints: Option<String>,
    pub dispatch: Option<String>,
    pub billing: Option<String>,
}

impl TestService {
    /// The service alone, on a fresh database with its migrations.
    pub async fn spawn(def: &'static ServiceDef) -> TestService {
        let db = database(&[def]).await;
        Self::spawn_on(def, db, None).await
    }

    /// The service on a given database (shared with other services of the
    /// same test), calling the customers service at `customers_url`.
    pub async fn spawn_on(def: &'static ServiceDef, db: TestDb, customers_url: Option<String>) -> TestService {
        let peers = Peers { customers: customers_url, ..Peers::default() };
        Self::spawn_with(def, db, &peers, |_| {}).await
    }

    /// The service alone on a fresh database, with settings changed by
    /// `configure` (limits and timeouts under test).
    pub async fn spawn_configured(def: &'static ServiceDef, configure: impl FnOnce(&mut ServerConfig)) -> TestService {
        let db = database(&[def]).await;
        Self::spawn_with(def, db, &Peers::default(), configure).await
    }

    async fn spawn_with(
        def: &'static ServiceDef,
        db: TestDb,
        peers: &Peers,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestService {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        match Self::try_spawn(def, db, peers, listener, configure).await {
            Ok(s) => s,
            Err(e) => panic!("spawn {}: {e}", def.name),
        }
    }

    async fn try_spawn(
        def: &'static ServiceDef,
        db: TestDb,
        peers: &Peers,
        listener: tokio::net::TcpListener,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Result<TestService, BoxError> {
        // CRM_TEST_LOG=1 shows the services' logs (filtered by CRM_LOG) while debugging a test.
        if std::env::var_os("CRM_TEST_LOG").is_some() {
            crm_platform::telemetry::init();
        }
        let mut cfg = ServerConfig::defaults();
        for (slot, url) in [
            (&mut cfg.customers_url, &peers.customers),
            (&mut cfg.complaints_url, &peers.complaints),
            (&mut cfg.dispatch_url, &peers.dispatch),
            (&mut cfg.billing_url, &peers.billing),
        ] {
            // A peer the test did not start is an address nothing listens on,
            // never the default port: another test's service may have been
            // given that port, and its feed must not leak into this test.
            *slot = url.clone().unwrap_or_else(|| NO_PEER.to_string());
        }
        cfg.db_max_connections = 16;
        cfg.shutdown_timeout_ms = 2_000;
        // Held saga steps are looked at again quickly, so flow tests wait little.
        cfg.saga_retry_ms = 200;
        configure(&mut cfg);
        let keys = TokenKeys::hs256(TEST_JWT_SECRET.as_bytes())?;
        let ctx = ServiceContext::new(&cfg, keys.clone())?;
        let pool = db::connect(&db.url, &cfg).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_keys = keys.clone();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            if let Err(e) = service::serve_prepared(def, pool, listener, server_keys, &cfg, &ctx, stop).await {
                eprintln!("test service {} stopped with an error: {e}", def.name);
            }
        });
        Ok(TestService { addr, db, keys, shutdown: Some(tx), task: Some(task) })
    }

    /// Stops the service (as SIGTERM would) and waits until it has: its
    /// background work is aborted mid-flight, its pool closed.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token for `sub` with `roles` (and a branch), valid for an hour.
    pub fn token(&self, roles: &[Role], sub: &str, branch: Option<&str>) -> String {
        match self.keys.mint(sub, roles, branch, Duration::from_secs(3600)) {
            Ok(t) => t,
            Err(e) => panic!("mint token: {e}"),
        }
    }

    /// A connected channel (no credentials).
    pub async fn channel(&self) -> tonic::transport::Channel {
        match tonic::transport::Endpoint::from_shared(self.url()) {
            Ok(e) => match e.timeout(Duration::from_secs(30)).connect().await {
                Ok(c) => c,
                Err(err) => panic!("connect to {}: {err}", self.addr),
            },
            Err(err) => panic!("endpoint {}: {err}", self.addr),
        }
    }

    /// An interceptor that sends `token` as the bearer credential.
    pub fn bearer(&self, roles: &[Role], sub: &str, branch: Option<&str>) -> Bearer {
        Bearer::new(&self.token(roles, sub, branch))
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Several services on one database, each knowing where the others answer,
/// as they run in production; any of them can be stopped and started again
/// on the same address.
pub struct TestGroup {
    pub db: TestDb,
    defs: Vec<&'static ServiceDef>,
    services: Vec<Option<TestService>>,
    addrs: Vec<SocketAddr>,
}

impl TestGroup {
    /// Every service of `defs` on one fresh database with all their migrations.
    pub async fn spawn(defs: &[&'static ServiceDef]) -> TestGroup {
        let db = database(defs).await;
        let mut listeners = Vec::new();
        for _ in defs {
            match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => listeners.push(l),
                Err(e) => panic!("bind: {e}"),
            }
        }
        let addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        let mut group = TestGroup { db, defs: defs.to_vec(), services: Vec::new(), addrs };
        for (def, listener) in defs.iter().zip(listeners) {
            let s = group.start_on(def, listener).await;
            group.services.push(Some(s));
        }
        group
    }

    fn peers(&self) -> Peers {
        let url =
            |name: &str| self.defs.iter().position(|d| d.name == name).map(|i| format!("http://{}", self.addrs[i]));
        Peers {
            customers: url("customers"),
            complaints: url("complaints"),
            dispatch: url("dispatch"),
            billing: url("billing"),
        }
    }

    async fn start_on(&self, def: &'static ServiceDef, listener: tokio::net::TcpListener) -> TestService {
        match TestService::try_spawn(def, self.db.clone(), &self.peers(), listener, |_| {}).await {
            Ok(s) => s,
            Err(e) => panic!("spawn {}: {e}", def.name),
        }
    }

    fn index(&self, name: &str) -> usize {
        match self.defs.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => panic!("{name} is not in this group"),
        }
    }

    /// The running service `name`.
    pub fn get(&self, name: &str) -> &TestService {
        match &self.services[self.index(name)] {
            Some(s) => s,
            None => panic!("{name} is stopped"),
        }
    }

    /// Stops `name` and waits until it has stopped.
    pub async fn stop(&mut self, name: &str) {
        let i = self.index(name);
        if let Some(mut s) = self.services[i].take() {
            s.stop().await;
        }
    }

    /// Starts `name` again on its old address.
    pub async fn start(&mut self, name: &str) {
        let i = self.index(name);
        assert!(self.services[i].is_none(), "{name} is already running");
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addrs[i]).await {
                Ok(l) => break l,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addrs[i]),
            }
        };
        let s = self.start_on(self.defs[i], listener).await;
        self.services[i] = Some(s);
    }

    /// Another replica of `name` on the same database, with the same peers,
    /// on its own port: as a second pod of a Deployment. It runs until dropped.
    pub async fn replica(&self, name: &str) -> TestService {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        self.start_on(self.defs[self.index(name)], listener).await
    }

    /// Stops and starts `name`.
    pub async fn restart(&mut self, name: &str) {
        self.stop(name).await;
        self.start(name).await;
    }
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

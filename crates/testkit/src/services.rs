//! Services spawned in-process on port 0 over a test database: one, or a
//! group calling each other and following each other's event feeds.

use super::*;

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

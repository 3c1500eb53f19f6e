//! The system under test, run as ops run it: a private Postgres cluster on a
//! free loopback port (which the suite may restart, stop or start), and each
//! service as its own `crm serve <service>` process with its logs in a
//! file, which the suite may kill -9, SIGTERM and start again.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use crm_domain::Role;
use crm_platform::{
    TokenKeys,
    localpg::{self, Durability, LocalPostgres},
};
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::{Error, wire};

/// The private cluster.
pub struct Cluster {
    pub pg: LocalPostgres,
    bin: PathBuf,
    as_postgres: bool,
    pub url: String,
}

impl Cluster {
    /// Creates and starts a cluster in `dir` on a free port, with database `crm`.
    pub async fn start(dir: &Path) -> Result<Cluster, Error> {
        let mut last: Option<Error> = None;
        for _ in 0..3 {
            let port = localpg::free_port()?;
            let pg = LocalPostgres::new(dir, port)?;
            let started = {
                let pg = pg.clone();
                tokio::task::spawn_blocking(move || pg.ensure_started(Durability::Ephemeral)).await?
            };
            match started {
                Ok(()) => {
                    // If the suite dies without cleaning up, the cluster goes with it.
                    pg.remove_when_process_exits(std::process::id())?;
                    localpg::ensure_database(&pg.url("postgres"), "crm").await?;
                    let as_postgres = is_root();
                    return Ok(Cluster { url: pg.url("crm"), bin: LocalPostgres::find_bin_dir()?, as_postgres, pg });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| "postgres did not start".into()))
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), Error> {
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        let out = cmd.arg("-D").arg(&self.pg.data_dir).args(args).stdin(Stdio::null()).output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into())
        }
    }

    /// `pg_ctl restart -m fast`: sessions are cut, the server comes back.
    pub async fn restart_fast(&self) -> Result<(), Error> {
        let log = self.pg.data_dir.join("server.log").display().to_string();
        let port = format!("-p {}", self.pg.port);
        self.blocking(move |c| c.pg_ctl(&["-m", "fast", "-w", "-t", "60", "-l", &log, "-o", &port, "restart"])).await
    }

    /// `pg_ctl stop -m fast`.
    pub async fn stop_fast(&self) -> Result<(), Error> {
        self.blocking(|c| c.pg_ctl(&["-m", "fast", "-w", "stop"])).await
    }

    /// Starts the stopped cluster and waits until it accepts connections.
    pub async fn start_again(&self) -> Result<(), Error> {
        let pg = self.pg.clone();
        tokio::task::spawn_blocking(move || pg.ensure_started(Durability::Ephemeral)).await?
    }

    async fn blocking(&self, f: impl FnOnce(&Cluster) -> Result<(), Error> + Send + 'static) -> Result<(), Error> {
        let me = Cluster {
            pg: self.pg.clone(),
            bin: self.bin.clone(),
            as_postgres: self.as_postgres,
            url: self.url.clone(),
        };
        tokio::task::spawn_blocking(move || f(&me)).await?
    }

    /// Stops the cluster at once and deletes it.
    pub fn remove(&self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.pg.data_dir);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// The four services, in start order, with the gRPC service each serves.
pub const SERVICES: [(&str, &str); 4] = [
    ("customers", "crm.customers.v1.CustomerService"),
    ("complaints", "crm.complaints.v1.ComplaintService"),
    ("dispatch", "crm.dispatch.v1.DispatchService"),
    ("billing", "crm.billing.v1.BillingService"),
];

/// One `crm serve <name>` process (or none while it is down).
pub struct Service {
    pub name: &'static str,
    pub grpc_service: &'static str,
    pub grpc_port: u16,
    pub admin_port: u16,
    pub log: PathBuf,
    env: BTreeMap<String, String>,
    child: Option<Child>,
    crm: PathBuf,
    /// Starts so far (1 after the first).
    pub starts: u32,
}

impl Service {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the process (stderr appended to its log file).
    pub fn spawn(&mut self) -> Result<(), Error> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        writeln!(&log, "---- faults: start #{} of {} ----", self.starts + 1, self.name)?;
        let mut cmd = Command::new(&self.crm);
        cmd.args(["serve", self.name]);
        // Only our settings: nothing inherited from the caller's CRM_*.
        for (k, _) in std::env::vars() {
            if k.starts_with("CRM_") || k == "DATABASE_URL" || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(&self.env).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", self.crm.display()))?;
        if let Some(pid) = child.id() {
            watchdog(pid);
        }
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// Waits until health says SERVING; how long it took.
    pub async fn wait_serving(&self, within: Duration) -> Result<Duration, Error> {
        let started = Instant::now();
        let channel = wire::channel(&self.url())?;
        loop {
            if health(&channel, self.grpc_service).await == Some(ServingStatus::Serving) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > within {
                return Err(format!("{} not SERVING within {within:?} (see {})", self.name, self.log.display()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9.
    pub async fn kill9(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// SIGTERM, then waits for the process to exit; its exit code and how
    /// long it took.
    pub async fn terminate(&mut self, within: Duration) -> Result<(Option<i32>, Duration), Error> {
        let Some(mut child) = self.child.take() else { return Err("not running".into()) };
        let pid = child.id().ok_or("no pid")?;
        let started = Instant::now();
        let ok = Command::new("kill").args(["-s", "TERM", &pid.to_string()]).status().await?.success();
        if !ok {
            return Err(format!("kill -TERM {pid} failed").into());
        }
        match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => Ok((status?.code(), started.elapsed())),
            Err(_) => {
                child.start_kill()?;
                Err(format!("{} did not exit within {within:?} of SIGTERM", self.name).into())
            }
        }
    }

    /// Whether the process is running: it exists and is not a zombie (a
    /// child that died stays in /proc until it is reaped).
    pub fn alive(&self) -> bool {
        let Some(pid) = self.pid() else { return false };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string)))
            .is_some_and(|state| state != "Z" && state != "X")
    }

    /// Resident memory in kB (VmRSS).
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
    }

    /// The body of `GET /metrics` on the admin port.
    pub fn metrics(&self) -> Result<String, Error> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.admin_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)?;
        Ok(raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(raw))
    }

    /// Lines of its log that mention a panic.
    pub fn panics(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(|l| l.chars().take(400).collect())
            .collect()
    }

    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }
}

/// Kills `pid` once the suite's own process is gone, whatever ended it.
fn watchdog(pid: u32) {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null"
    );
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// The health of `service` on `channel`, if it answers within a second.
pub async fn health(channel: &Channel, service: &str) -> Option<ServingStatus> {
    let mut h = HealthClient::new(channel.clone());
    let mut req = tonic::Request::new(HealthCheckRequest { service: service.to_string() });
    req.set_timeout(Duration::from_secs(1));
    let r = tokio::time::timeout(Duration::from_secs(2), h.check(req)).await.ok()?.ok()?;
    ServingStatus::try_from(r.into_inner().status).ok()
}

/// Everything the suite runs.
pub struct System {
    pub cluster: Cluster,
    pub services: Vec<Service>,
    pub keys: TokenKeys,
    pub run_dir: PathBuf,
}

/// Settings of the services for this run.
pub struct Settings {
    pub stream_idle_ms: u64,
}

impl System {
    pub async fn start(crm: &Path, run_dir: &Path, pg_dir: &Path, settings: &Settings) -> Result<System, Error> {
        let cluster = Cluster::start(pg_dir).await?;
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let keys = TokenKeys::hs256(secret.as_bytes())?;
        let mut ports = Vec::new();
        for _ in 0..SERVICES.len() * 2 {
            ports.push(free_port_distinct(&ports)?);
        }
        let url_of = |i: usize| format!("http://127.0.0.1:{}", ports[i * 2]);
        let mut services = Vec::new();
        for (i, (name, grpc_service)) in SERVICES.iter().enumerate() {
            let (grpc_port, admin_port) = (ports[i * 2], ports[i * 2 + 1]);
            let env: BTreeMap<String, String> = [
                ("DATABASE_URL", cluster.url.clone()),
                ("CRM_JWT_SECRET", secret.clone()),
                ("CRM_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
                ("CRM_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
                ("CRM_CUSTOMERS_URL", url_of(0)),
                ("CRM_COMPLAINTS_URL", url_of(1)),
                ("CRM_DISPATCH_URL", url_of(2)),
                ("CRM_BILLING_URL", url_of(3)),
                ("CRM_STREAM_IDLE_TIMEOUT_MS", settings.stream_idle_ms.to_string()),
                ("CRM_SHUTDOWN_TIMEOUT_MS", "10000".to_string()),
                ("CRM_LOG", "info".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            services.push(Service {
                name,
                grpc_service,
                grpc_port,
                admin_port,
                log: run_dir.join(format!("{name}.log")),
                env,
                child: None,
                crm: crm.to_path_buf(),
                starts: 0,
            });
        }
        let mut system = System { cluster, services, keys, run_dir: run_dir.to_path_buf() };
        // Customers first (its migration creates pg_trgm), then the rest together.
        system.services[0].spawn()?;
        system.services[0].wait_serving(Duration::from_secs(60)).await?;
        for s in system.services.iter_mut().skip(1) {
            s.spawn()?;
        }
        for s in &system.services {
            s.wait_serving(Duration::from_secs(60)).await?;
        }
        Ok(system)
    }

    pub fn service(&self, name: &str) -> Result<&Service, Error> {
        self.services.iter().find(|s| s.name == name).ok_or_else(|| format!("no service {name}").into())
    }

    pub fn service_mut(&mut self, name: &str) -> Result<&mut Service, Error> {
        self.services.iter_mut().find(|s| s.name == name).ok_or_else(|| format!("no service {name}").into())
    }

    /// A token for `sub` with `roles` (branch `bj`), valid for a day.
    pub fn token(&self, roles: &[Role], sub: &str) -> Result<String, Error> {
        Ok(self.keys.mint(sub, roles, Some("bj"), Duration::from_secs(24 * 3600))?)
    }

    /// A pool on the cluster's `crm` database, for checks of what is stored.
    pub async fn pool(&self) -> Result<sqlx::PgPool, Error> {
        Ok(crm_platform::db::connect_with(&self.cluster.url, 4, Duration::from_secs(10)).await?)
    }

    /// Kills every process and removes the cluster.
    pub async fn shutdown(&mut self) {
        for s in &mut self.services {
            let _ = s.kill9().await;
        }
        self.cluster.remove();
    }
}

fn free_port_distinct(taken: &[u16]) -> Result<u16, Error> {
    for _ in 0..50 {
        let p = localpg::free_port()?;
        if !taken.contains(&p) {
            return Ok(p);
        }
    }
    Err("no free port".into())
}

//! A private Postgres cluster run from the machine's own Postgres binaries,
//! for `crm up` (persistent, under `./.crm/`) and for the test kit (ephemeral,
//! in a temporary directory). Postgres refuses to run as root, so as root the
//! cluster is owned by and run as the `postgres` OS user.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::error::BoxError;

#[derive(Debug, Clone)]
pub struct LocalPostgres {
    pub data_dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    run_as: Option<String>,
}

/// How the cluster is tuned: durable for people's data, fast for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    /// fsync off: a crash may lose the cluster, which a test run throws away anyway.
    Ephemeral,
}

impl LocalPostgres {
    /// Where the Postgres server binaries are: `CRM_PG_BIN`, else the newest
    /// `/usr/lib/postgresql/<version>/bin`, else `initdb` on the PATH.
    pub fn find_bin_dir() -> Result<PathBuf, BoxError> {
        if let Ok(dir) = std::env::var("CRM_PG_BIN") {
            return Ok(PathBuf::from(dir));
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Ok(bin);
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                    return Ok(dir);
                }
            }
        }
        Err("no PostgreSQL server binaries found (initdb, pg_ctl). On Debian/Ubuntu: \
             sudo apt-get install -y postgresql (or set CRM_PG_BIN to the bin directory)"
            .into())
    }

    /// A cluster in `data_dir` listening on 127.0.0.1:`port` (TCP only).
    pub fn new(data_dir: impl Into<PathBuf>, port: u16) -> Result<Self, BoxError> {
        let bin = Self::find_bin_dir()?;
        let run_as = if is_root() { Some("postgres".to_string()) } else { None };
        if run_as.is_some() && !Command::new("id").args(["-u", "postgres"]).output().is_ok_and(|o| o.status.success()) {
            return Err("running as root needs the `postgres` OS user (created by Debian's postgresql package)".into());
        }
        Ok(Self { data_dir: data_dir.into(), port, bin, run_as })
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://crm@127.0.0.1:{}/{}", self.port, database)
    }

    pub fn is_initialized(&self) -> bool {
        self.data_dir.join("PG_VERSION").exists()
    }

    /// Creates the cluster if it does not exist yet and starts it if it is not
    /// running. Blocking: call from `spawn_blocking` in async code.
    pub fn ensure_started(&self, durability: Durability) -> Result<(), BoxError> {
        if !self.is_initialized() {
            self.init(durability)?;
        }
        if self.is_running() {
            return Ok(());
        }
        let log = self.data_dir.join("server.log");
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start")
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            return Err(format!(
                "Postgres in {} did not start on port {}:\n{}",
                self.data_dir.display(),
                self.port,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
            .into());
        }
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Fast stop: in-flight transactions are rolled back, data is kept.
    pub fn stop(&self) -> Result<(), BoxError> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()?;
        if status.success() { Ok(()) } else { Err("pg_ctl stop failed".into()) }
    }

    /// Stops the cluster and deletes it once process `pid` has exited, from a
    /// detached shell: test binaries have no hook that runs at exit.
    pub fn remove_when_process_exits(&self, pid: u32) -> Result<(), BoxError> {
        let pg_ctl = self.bin.join("pg_ctl");
        let prefix = self.run_as.as_ref().map(|u| format!("runuser -u {u} -- ")).unwrap_or_default();
        let dir = shell_quote(&self.data_dir);
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {prefix}{} -D {dir} -m immediate -w stop >/dev/null 2>&1; rm -rf {dir}",
            shell_quote(&pg_ctl)
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }

    fn init(&self, durability: Durability) -> Result<(), BoxError> {
        std::fs::create_dir_all(&self.data_dir)?;
        if let Some(user) = &self.run_as {
            let ok = Command::new("chown").arg(format!("{user}:")).arg(&self.data_dir).status()?.success();
            if !ok {
                return Err(format!("cannot hand {} to the {user} user", self.data_dir.display()).into());
            }
            let reachable = Command::new("runuser")
                .args(["-u", user, "--", "test", "-w"])
                .arg(&self.data_dir)
                .status()
                .is_ok_and(|s| s.success());
            if !reachable {
                return Err(format!(
                    "the {user} user cannot reach {}: a parent directory is private to root; \
                     clone the project somewhere world-traversable (e.g. /srv or /tmp) or set DATABASE_URL",
                    self.data_dir.display()
                )
                .into());
            }
        }
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", "crm", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
            .args(if durability == Durability::Ephemeral { &["--no-sync"][..] } else { &[][..] })
            .output()?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let mut conf = String::from(
            "\n# written by crm\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 400\n",
        );
        if durability == Durability::Ephemeral {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf_path = self.data_dir.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }
}

/// Creates `database` if it does not exist yet.
pub async fn ensure_database(server_url: &str, database: &str) -> Result<(), BoxError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{}\"", database.replace('"', ""))))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

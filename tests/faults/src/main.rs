//! `make faults`: the fault and abuse suite (SPEC; issue 12).
//!
//! Runs the release `crm` binary as ops do — each service its own
//! `crm serve <service>` process on loopback, over a private Postgres
//! cluster the suite starts on a free port — and, from outside:
//! 1. kills each service with kill -9 (and one with SIGTERM) under
//!    idempotent load, restarts it, and checks from the database that every
//!    request was applied exactly once (and billing's ledger balances);
//! 2. restarts and stops Postgres under load (UNAVAILABLE, NOT_SERVING,
//!    recovery within 3 s);
//! 3. stalls uploads from one principal while another works;
//! 4. fuzzes every method of every service (no INTERNAL, no panic, no row
//!    changed by a refused call);
//! 5. floods made-up method names (RSS and /metrics flat).
//!
//! Each check prints one line with its numbers; the exit code is non-zero if
//! any failed. Processes and the cluster are removed at the end, also on
//! failure, Ctrl-C or the time limit. Settings: `FAULTS_*` (docs/reliability.md).

mod fuzz;
mod kill;
mod load;
mod outage;
mod report;
mod rng;
mod shapes;
mod stall;
mod system;
mod unknown;
mod wire;

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use report::Verdict;
use rng::Rng;
use system::{Settings, System};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Every knob, from `FAULTS_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub scenarios: Vec<String>,
    pub seed: u64,
    pub crm: PathBuf,
    pub out_dir: PathBuf,
    pub time_limit: Duration,
    pub kill_services: Vec<String>,
    pub kill_requests: usize,
    pub kill_clients: usize,
    pub sigterm_service: String,
    pub down_ms: u64,
    pub pg_writes: usize,
    pub pg_stop_secs: u64,
    pub stalled_streams: usize,
    pub stall_calls: usize,
    pub stream_idle_ms: u64,
    pub stall_p99_ms: f64,
    pub fuzz_services: Vec<String>,
    pub fuzz_requests: usize,
    pub strict_framing: bool,
    pub unknown_services: Vec<String>,
    pub unknown_requests: usize,
    pub rss_slack_kb: u64,
    pub metrics_slack_bytes: usize,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Error> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| format!("{name}={v:?} is not valid").into()),
        _ => Ok(default),
    }
}

fn list(name: &str, default: &str) -> Vec<String> {
    let v = std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string());
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

const ALL: &str = "customers,complaints,dispatch,billing";

impl Config {
    fn from_env() -> Result<Config, Error> {
        let exe_dir = std::env::current_exe()?.parent().map(PathBuf::from).unwrap_or_default();
        let seed = match std::env::var("FAULTS_SEED") {
            Ok(s) if !s.trim().is_empty() => s.trim().parse()?,
            _ => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64,
        };
        Ok(Config {
            scenarios: list("FAULTS_SCENARIOS", "kill,pg,stall,fuzz,unknown"),
            seed,
            crm: var("FAULTS_CRM_BIN", exe_dir.join("crm"))?,
            out_dir: var("FAULTS_OUT_DIR", PathBuf::from("target/faults"))?,
            time_limit: Duration::from_secs(var("FAULTS_TIME_LIMIT_SECS", 900)?),
            kill_services: list("FAULTS_KILL_SERVICES", ALL),
            kill_requests: var("FAULTS_KILL_REQUESTS", 1200)?,
            kill_clients: var("FAULTS_KILL_CLIENTS", 8)?,
            // Set but empty (or `none`): no SIGTERM run.
            sigterm_service: match std::env::var("FAULTS_SIGTERM_SERVICE") {
                Ok(v) if v.trim() == "none" => String::new(),
                Ok(v) => v.trim().to_string(),
                Err(_) => "billing".to_string(),
            },
            down_ms: var("FAULTS_DOWN_MS", 500)?,
            pg_writes: var("FAULTS_PG_WRITES", 800)?,
            pg_stop_secs: var("FAULTS_PG_STOP_SECS", 5)?,
            stalled_streams: var("FAULTS_STALLED_STREAMS", 16)?,
            stall_calls: var("FAULTS_STALL_CALLS", 300)?,
            stream_idle_ms: var("FAULTS_STREAM_IDLE_MS", 2000)?,
            stall_p99_ms: var("FAULTS_STALL_P99_MS", 250.0)?,
            fuzz_services: list("FAULTS_FUZZ_SERVICES", ALL),
            fuzz_requests: var("FAULTS_FUZZ_REQUESTS", 10_000)?,
            strict_framing: var("FAULTS_STRICT_FRAMING", 0u8)? == 1,
            unknown_services: list("FAULTS_UNKNOWN_SERVICES", ALL),
            unknown_requests: var("FAULTS_UNKNOWN_REQUESTS", 20_000)?,
            rss_slack_kb: var("FAULTS_RSS_SLACK_KB", 8192)?,
            metrics_slack_bytes: var("FAULTS_METRICS_SLACK_BYTES", 2048)?,
        })
    }

    fn wants(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario || s == "all")
    }
}

/// What this machine is, for the record.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or("?".into(), |kb| format!("{:.0} GB", kb as f64 / 1024.0 / 1024.0));
    let pg = crm_platform::localpg::LocalPostgres::find_bin_dir()
        .ok()
        .and_then(|b| std::process::Command::new(b.join("postgres")).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM, {pg}")
}

async fn scenarios(sys: &mut System, cfg: &Config, run_id: &str, verdicts: &mut Vec<Verdict>) -> Result<(), Error> {
    let mut rng = Rng::new(cfg.seed);
    let record = |v: Verdict, verdicts: &mut Vec<Verdict>| {
        v.print();
        verdicts.push(v);
    };
    if cfg.wants("kill") {
        for name in &cfg.kill_services {
            let kind = load::Kind::of(name).ok_or_else(|| format!("FAULTS_KILL_SERVICES: no service {name}"))?;
            record(kill::run(sys, cfg, run_id, kind, kill::Fault::Kill9).await?, verdicts);
        }
        if !cfg.sigterm_service.is_empty() {
            let kind = load::Kind::of(&cfg.sigterm_service)
                .ok_or_else(|| format!("FAULTS_SIGTERM_SERVICE: no service {}", cfg.sigterm_service))?;
            record(kill::run(sys, cfg, run_id, kind, kill::Fault::Sigterm).await?, verdicts);
        }
    }
    if cfg.wants("pg") {
        for v in outage::run(sys, cfg, run_id).await? {
            record(v, verdicts);
        }
    }
    if cfg.wants("stall") {
        record(stall::run(sys, cfg).await?, verdicts);
    }
    if cfg.wants("fuzz") {
        let schema = shapes::Schema::load(crm_proto::FILE_DESCRIPTOR_SET)?;
        for name in &cfg.fuzz_services {
            record(fuzz::run(sys, cfg, &schema, name, &mut rng).await?, verdicts);
            record(fuzz::framing(sys, cfg, &schema, name).await?, verdicts);
        }
    }
    if cfg.wants("unknown") {
        for name in &cfg.unknown_services {
            record(unknown::run(sys, cfg, name, &mut rng).await?, verdicts);
        }
    }
    // Whatever happened, no service may have panicked at any point.
    for s in &sys.services {
        let panics = s.panics();
        let mut v = Verdict::new("all", format!("{} log", s.name));
        v.check(panics.is_empty(), || format!("{} panics: {}", panics.len(), panics.join(" | ")));
        v.numbers = format!(
            "{} starts, {} panics, log {} ({} kB)",
            s.starts,
            panics.len(),
            s.log.display(),
            s.log_bytes() / 1024
        );
        record(v, verdicts);
    }
    Ok(())
}

async fn run() -> Result<bool, Error> {
    let cfg = Config::from_env()?;
    if !cfg.crm.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p crm-cli` (or set FAULTS_CRM_BIN)",
            cfg.crm.display()
        )
        .into());
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let run_dir = std::fs::canonicalize(std::env::current_dir()?)?.join(&cfg.out_dir).join(format!("{stamp}-{run_id}"));
    std::fs::create_dir_all(&run_dir)?;
    let pg_dir = std::env::temp_dir().join(format!("crm-faults-pg-{run_id}"));
    println!("crm fault suite {run_id}: seed {} (FAULTS_SEED to replay), logs in {}", cfg.seed, run_dir.display());
    println!("machine: {}", machine());
    println!("scenarios: {}; time limit {} s", cfg.scenarios.join(","), cfg.time_limit.as_secs());
    let started = Instant::now();
    let settings = Settings { stream_idle_ms: cfg.stream_idle_ms };
    let mut sys = System::start(&cfg.crm, &run_dir, &pg_dir, &settings).await?;
    println!("system up in {:.1} s: postgres {}", started.elapsed().as_secs_f64(), sys.cluster.pg.url("crm"));
    for s in &sys.services {
        println!("  {:<10} grpc 127.0.0.1:{}  metrics 127.0.0.1:{}/metrics", s.name, s.grpc_port, s.admin_port);
    }

    let mut verdicts = Vec::new();
    let outcome = tokio::select! {
        r = scenarios(&mut sys, &cfg, &run_id, &mut verdicts) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        _ = tokio::time::sleep(cfg.time_limit) => Err(format!("time limit of {} s reached", cfg.time_limit.as_secs()).into()),
    };
    sys.shutdown().await;
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    let table = report::markdown(&verdicts);
    let _ = std::fs::write(run_dir.join("report.md"), &table);
    println!();
    println!("{table}");
    println!(
        "{} checks, {} failed, in {:.0} s; processes stopped and the cluster removed; report {}",
        verdicts.len(),
        failed,
        started.elapsed().as_secs_f64(),
        run_dir.join("report.md").display()
    );
    if let Err(e) = outcome {
        println!("suite aborted: {e}");
        return Ok(false);
    }
    Ok(failed == 0)
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faults: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("faults: {e}");
            ExitCode::FAILURE
        }
    }
}

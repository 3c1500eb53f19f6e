//! Load generation, pgbench ceilings and the private cluster of the
//! customers benchmark.

use std::{
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use crm_platform::localpg::{Durability, LocalPostgres};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requests/s and latency percentiles of one measurement.
pub struct Stats {
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p50_ms(&self) -> f64 {
        self.p50.as_secs_f64() * 1e3
    }

    pub fn p99_ms(&self) -> f64 {
        self.p99.as_secs_f64() * 1e3
    }

    pub fn print(&self) {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} |",
            self.name,
            self.rate(),
            self.p50_ms(),
            self.p99_ms(),
            self.errors
        );
    }
}

pub fn row_header(title: &str) {
    println!("| {title} | req/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|");
}

fn percentiles(mut all: Vec<Duration>) -> (Duration, Duration) {
    all.sort();
    let pct = |p: usize| all.get((all.len() * p / 100).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    (pct(50), pct(99))
}

/// Runs `call(worker, i)` from `concurrency` workers for `seconds`.
pub async fn measure<F, Fut>(name: &str, concurrency: usize, seconds: u64, call: F) -> Stats
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = vec![];
    for w in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut i) = (vec![], 0usize, 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                if !call(w, i).await {
                    errors += 1;
                }
                lat.push(t.elapsed());
                i += 1;
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (vec![], 0);
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = start.elapsed();
    let requests = all.len();
    let (p50, p99) = percentiles(all);
    Stats { name: name.into(), requests, errors, elapsed, p50, p99 }
}

fn pg_bin(name: &str) -> PathBuf {
    LocalPostgres::find_bin_dir().map(|d| d.join(name)).unwrap_or_else(|_| PathBuf::from(name))
}

/// Runs pgbench with `args` and per-transaction logging; the latency
/// percentiles come from the log.
fn run_pgbench(name: &str, url: &str, args: &[&str], seconds: u64) -> Result<Stats, BoxError> {
    let dir = std::env::temp_dir().join(format!("crm-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let prefix = dir.join("log");
    let out = std::process::Command::new(pg_bin("pgbench"))
        .args(args)
        .args(["-T", &seconds.to_string(), "-l", "--log-prefix"])
        .arg(&prefix)
        .arg(url)
        .output()?;
    if !out.status.success() {
        return Err(format!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for entry in std::fs::read_dir(&dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f.get(2).and_then(|v| v.parse::<u64>().ok()) {
                Some(us) => lat.push(Duration::from_micros(us)),
                None => errors += 1,
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let requests = lat.len();
    let (p50, p99) = percentiles(lat);
    Ok(Stats { name: name.into(), requests, errors, elapsed: Duration::from_secs(seconds), p50, p99 })
}

/// pgbench running `sql` (one transaction per run of the script).
pub fn pgbench(url: &str, name: &str, sql: &str, clients: u64, seconds: u64) -> Result<Stats, BoxError> {
    let file = std::env::temp_dir().join(format!("crm-bench-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(&file, sql)?;
    let clients = clients.to_string();
    let file_arg = file.to_string_lossy().to_string();
    let r = run_pgbench(name, url, &["-n", "-M", "prepared", "-c", &clients, "-j", "2", "-f", &file_arg], seconds);
    let _ = std::fs::remove_file(&file);
    r
}

/// pgbench's own tables at scale 10 (a million accounts), in the bench database.
pub fn pgbench_init(url: &str) -> Result<(), BoxError> {
    let out = std::process::Command::new(pg_bin("pgbench")).args(["-i", "-q", "-s", "10"]).arg(url).output()?;
    if !out.status.success() {
        return Err(format!("pgbench -i failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// `pgbench -S`: its built-in primary-key select, the database ceiling of a read.
pub fn pgbench_select_only(url: &str, clients: u64, seconds: u64) -> Result<Stats, BoxError> {
    let clients = clients.to_string();
    run_pgbench(
        "primary-key select (pgbench -S, ceiling)",
        url,
        &["-n", "-S", "-M", "prepared", "-c", &clients, "-j", "2"],
        seconds,
    )
}

/// The writes of one CreateCustomer, as one pgbench transaction: the
/// idempotency key and its response, the customer row (with its search
/// terms and read document), a contact, an address, ownership and stage
/// history, the outbox event. Triggers (audit, contact points) fire as for
/// the service.
pub const CREATE_SQL: &str = r"\set n random(1, 1000000000)
BEGIN;
SELECT set_config('crm.actor', 'bench', true), set_config('crm.action', 'CreateCustomer', true), set_config('crm.request_id', '', true);
INSERT INTO customers.idempotency_keys (request_id, principal, method, request) VALUES (gen_random_uuid(), 'bench', 'CreateCustomer', '\x0a2431') RETURNING request_id AS key \gset
INSERT INTO customers.customers (id, kind, display_name, name_norm, legal_name, legal_name_norm, industry, region, phone, email, owner_id, branch, grade, value_tier, service_level, stage, collected_at, search_grams, core_grams, name_core, search_text, search_version, created_by, created_at, updated_at, version, doc, doc_version) VALUES (gen_random_uuid(), 'organization', '华润燃气' || :n, '华润燃气' || :n, '杭州华润燃气有限公司' || :n, '杭州华润燃气有限公司' || :n, 'utilities', 'CN-ZJ', '+86571' || lpad(:n::text, 8, '0'), 'info' || :n || '@hz.com.cn', 's-hz-1', 'hz', 'C', 'potential', 'general', 'prospect', now(), ARRAY['华润','润燃','燃气','华	燃','润	气','py' || chr(58) || 'hua run','py' || chr(58) || 'run ran','py' || chr(58) || 'ran qi','pi' || chr(58) || 'hrr','pi' || chr(58) || 'rrq','杭州', :n::text], ARRAY['华润','润燃','燃气'], '华润燃气', 'huarunranqi hrrq hangzhouhuarunranqiyouxiangongsi hzhrrqyxgs', 2, 'bench', now(), now(), 1, decode(repeat('0a1b2c3d', 100), 'hex'), 1) RETURNING id \gset
INSERT INTO customers.contacts (id, customer_id, name, position, phones, email, decision_maker) VALUES (gen_random_uuid(), :id, '王伟', '经理', ARRAY['+86138' || lpad(:n::text, 8, '0')], 'wang.wei' || :n || '@163.com', false);
INSERT INTO customers.addresses (id, customer_id, kind, province, city, district, street, postal_code) VALUES (gen_random_uuid(), :id, 'head_office', '浙江省', '杭州市', '西湖区', '文一路88号', '310000');
INSERT INTO customers.ownership_history (customer_id, owner_id, branch, assigned_by, reason) VALUES (:id, 's-hz-1', 'hz', 'bench', 'registered');
INSERT INTO customers.stage_history (customer_id, from_stage, to_stage, changed_by, reason) VALUES (:id, NULL, 'prospect', 'bench', 'registered');
INSERT INTO customers.outbox (id, event_type, aggregate_id, schema_version, body, occurred_at) VALUES (gen_random_uuid(), 'customer.registered', :id, 1, decode(repeat('0a1b', 60), 'hex'), now());
UPDATE customers.idempotency_keys SET response = decode(repeat('0a1b2c3d', 100), 'hex') WHERE request_id = :key;
COMMIT;
";

/// The same rows an import writes (customers, contacts, addresses) inserted
/// bare through sqlx, one UNNEST per table per thousand rows, on one
/// connection: the database ceiling of an import. Returns rows/s.
pub async fn bare_insert(pool: &sqlx::PgPool, seed: u64, rows: usize) -> Result<f64, BoxError> {
    use crm_customers::{model::Customer, store};
    let import_id = uuid::Uuid::now_v7();
    let mut r = super::data::Rng::new(seed);
    let mut customers: Vec<Customer> = Vec::with_capacity(rows);
    for n in 0..rows {
        let c = super::data::customer(&mut r, 50_000_000 + n);
        let new = crm_customers::api::customer_input_for_bench(&c)?;
        customers.push(Customer::register(new, c.owner_id.clone(), c.branch.clone(), "bench", chrono::Utc::now()));
    }
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    for (k, chunk) in customers.chunks(1_000).enumerate() {
        let rows: Vec<store::ImportedCustomer> = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| store::ImportedCustomer { customer: c, doc: Vec::new(), row: (k * 1_000 + i) as i64 })
            .collect();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        store::insert_imported(&mut tx, import_id, &rows).await?;
        let contacts: Vec<_> = chunk.iter().flat_map(|c| c.contacts.iter().map(move |k| (c.id, k))).collect();
        store::insert_contacts(&mut tx, &contacts).await?;
        let addresses: Vec<_> = chunk.iter().flat_map(|c| c.addresses.iter().map(move |a| (c.id, a))).collect();
        store::insert_addresses(&mut tx, &addresses).await?;
        tx.commit().await?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// A private cluster tuned for a million customers (fsync off: a crash
/// loses it, which a benchmark throws away anyway).
pub fn start_cluster() -> Result<LocalPostgres, BoxError> {
    let dir = std::env::temp_dir().join(format!("crm-bench-pg-{}", uuid::Uuid::new_v4().simple()));
    let pg = LocalPostgres::new(&dir, crm_platform::localpg::free_port()?)?;
    pg.ensure_started(Durability::Ephemeral)?;
    pg.remove_when_process_exits(std::process::id())?;
    let conf = dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)?;
    text.push_str(
        "\n# customers benchmark\nshared_buffers = '4GB'\neffective_cache_size = '12GB'\nmaintenance_work_mem = '512MB'\n\
         max_wal_size = '8GB'\ncheckpoint_timeout = '30min'\nwal_level = minimal\nmax_wal_senders = 0\n",
    );
    if std::env::var_os("BENCH_HOLD").is_some() {
        // Per-statement times, triggers' statements included, to look at
        // while the run is held (CREATE EXTENSION pg_stat_statements).
        text.push_str("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = 'all'\n");
    }
    std::fs::write(&conf, text)?;
    pg.stop()?;
    pg.ensure_started(Durability::Ephemeral)?;
    Ok(pg)
}

pub fn stop_cluster(pg: &LocalPostgres) {
    let _ = pg.stop();
}

/// What the numbers were measured on.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    let pg = std::process::Command::new(pg_bin("postgres"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {} GiB, {pg}", mem / 1024 / 1024)
}

/// The protocol ceiling of an RPC: the gRPC health `Check` of a bare tonic
/// server (no auth, no layers, no database) on loopback, `callers` at once,
/// as the dispatch benchmark measures it.
pub async fn bare_check(callers: usize, seconds: u64) -> Result<Stats, BoxError> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(tonic::transport::Server::builder().add_service(health).serve_with_incoming(
        tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |c| {
            let c = c?;
            c.set_nodelay(true)?;
            Ok::<_, std::io::Error>(c)
        }),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;
    let bare = tonic_health::pb::health_client::HealthClient::new(channel);
    Ok(measure("bare tonic Check (protocol ceiling)", callers, seconds, move |_, _| {
        let mut c = bare.clone();
        async move { c.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok() }
    })
    .await)
}

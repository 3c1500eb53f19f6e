//! `make bench`: the customers service at a million customers (issue 11,
//! docs/benchmarks.md), each figure next to a ceiling measured in the same
//! run on the same machine:
//!
//! - import (ImportCustomers over gRPC) into a table that already holds the
//!   book, against the bare insert of the same rows (customers, contacts,
//!   addresses) through sqlx;
//! - SearchCustomers per query kind and scope, 8 callers, p50/p99, and how
//!   often the customer sought is in the top 5; ceilings: pgbench running
//!   the lookups the search makes;
//! - the duplicate check (CreateCustomer that finds likely duplicates);
//! - CreateCustomer at 10 thousand and at a million rows, 32 callers, against
//!   pgbench running the same writes;
//! - GetCustomer at 32 callers against pgbench's own primary-key select
//!   (`pgbench -S` on a scale-10 pgbench database in the same cluster).
//!
//! Runs against a private Postgres cluster it starts (fsync off, 4 GB of
//! shared buffers). Settings: BENCH_CUSTOMERS (default 1000000),
//! BENCH_SECONDS (default 5), BENCH_SEARCH_SECONDS (default 3); CRM_LOG (for
//! example `error`) prints the service's logs; BENCH_HOLD keeps the cluster and
//! the service up at the end, until Ctrl-C.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop

mod data;
mod load;

use std::time::Instant;

use crm_domain::search::{pinyin_full, pinyin_initials};
use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use crm_testkit::{Bearer, Role, TestService};
use load::{Stats, measure, pgbench, row_header};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

type Client = CustomerServiceClient<InterceptedService<Channel, Bearer>>;

/// Makes the query of one kind for the `i`th sample customer.
type QueryOf = Box<dyn Fn(&pb::Customer, usize) -> String + Send + Sync>;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn client(svc: &TestService, roles: &[Role], sub: &str, branch: Option<&str>) -> Client {
    CustomerServiceClient::with_interceptor(svc.channel().await, svc.bearer(roles, sub, branch))
        .max_decoding_message_size(64 << 20)
}

/// A client for a long upload: no per-call timeout on the channel (the
/// server bounds an upload by its idle time between messages instead).
async fn upload_client(svc: &TestService) -> Client {
    let channel =
        tonic::transport::Endpoint::from_shared(svc.url()).expect("endpoint").connect().await.expect("connect");
    CustomerServiceClient::with_interceptor(channel, svc.bearer(&[Role::Admin], "bench-import", None))
}

/// Imports `rows` generated from `seed` starting at `first`, over `streams`
/// concurrent uploads; returns (rows, seconds).
async fn import_book(svc: &TestService, first: usize, rows: usize, seed: u64, streams: usize) -> (u64, f64) {
    let started = Instant::now();
    let per = rows.div_ceil(streams);
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut c = upload_client(svc).await;
        let (from, to) = (first + s * per, (first + (s + 1) * per).min(first + rows));
        tasks.push(tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let producer = tokio::spawn(async move {
                let options = pb::ImportOptions {
                    request_id: rid(),
                    duplicate_policy: pb::ImportDuplicatePolicy::Skip as i32,
                    first_row_number: from as i64 + 1,
                };
                let _ = tx.send(pb::ImportCustomersRequest { options: Some(options), customers: vec![] }).await;
                let mut r = data::Rng::new(seed ^ from as u64);
                let mut batch = Vec::with_capacity(500);
                for n in from..to {
                    batch.push(data::customer(&mut r, n));
                    if batch.len() == 500 {
                        let msg = pb::ImportCustomersRequest { options: None, customers: std::mem::take(&mut batch) };
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send(pb::ImportCustomersRequest { options: None, customers: batch }).await;
            });
            let resp = c.import_customers(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
            let _ = producer.await;
            resp.map(|r| r.into_inner())
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.expect("joined").expect("import");
        created += r.created as u64;
        if r.invalid > 0 {
            eprintln!("  import: {} invalid rows, first: {:?}", r.invalid, r.errors.first());
        }
    }
    (created, started.elapsed().as_secs_f64())
}

/// A sample of the book to ask for: regenerated from the same seed.
struct Sample {
    customers: Vec<pb::Customer>,
}

fn sample(seed: u64, rows: usize, streams: usize, every: usize) -> Sample {
    let per = rows.div_ceil(streams);
    let mut customers = Vec::new();
    for s in 0..streams {
        let (from, to) = (s * per, ((s + 1) * per).min(rows));
        let mut r = data::Rng::new(seed ^ from as u64);
        for n in from..to {
            let c = data::customer(&mut r, n);
            if n % every == 0 && c.kind == pb::PartyKind::Organization as i32 {
                customers.push(c);
            }
        }
    }
    Sample { customers }
}

/// The distinctive part of a sample company: the name without city and form.
fn core(c: &pb::Customer) -> String {
    crm_domain::search::name_core(&crm_domain::normalize_for_match(&c.legal_name))
}

fn typo(s: &str, salt: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 4 {
        return s.to_string();
    }
    let at = 1 + salt % (chars.len() - 2);
    chars.iter().enumerate().map(|(i, c)| if i == at { '闰' } else { *c }).collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The service's own logs, when asked for (CRM_LOG=error shows what an
    // error row was).
    if std::env::var_os("CRM_LOG").is_some() {
        crm_platform::telemetry::init();
    }
    let book = setting("BENCH_CUSTOMERS", 1_000_000) as usize;
    let seconds = setting("BENCH_SECONDS", 5);
    let search_seconds = setting("BENCH_SEARCH_SECONDS", 3);
    let seed = 20261201;
    let streams = 2;
    let pg = load::start_cluster()?;
    let admin_url = pg.url("postgres");
    crm_testkit::use_server(&admin_url);
    let machine = load::machine();
    println!("# customers benchmark, {} — {machine}", chrono::Utc::now().format("%Y-%m-%d"));
    println!();

    // CreateCustomer at 10 thousand customers.
    let small_db = crm_testkit::database(&[&crm_customers::SERVICE]).await;
    let small = TestService::spawn_on(&crm_customers::SERVICE, small_db.clone(), None).await;
    import_book(&small, 0, 10_000, seed + 1, streams).await;
    let small_pool = small_db.pool().await;
    sqlx::query("ANALYZE").execute(&small_pool).await?;
    let create_small = create_load(&small, "CreateCustomer at 10k rows", 32, seconds, 10_000_000).await;
    drop(small);

    // The book.
    let db = crm_testkit::database(&[&crm_customers::SERVICE]).await;
    let svc = TestService::spawn_on(&crm_customers::SERVICE, db.clone(), None).await;
    let pool = db.pool().await;
    if std::env::var_os("BENCH_HOLD").is_some() {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(&pool).await?;
    }
    let (created, secs) = import_book(&svc, 0, book, seed, streams).await;
    println!(
        "Seeded {created} customers through ImportCustomers in {secs:.1} s ({:.0} rows/s).",
        created as f64 / secs
    );

    // Import into the full table, against the bare insert of the same rows.
    let extra = book / 10;
    let (created, secs) = import_book(&svc, book, extra, seed + 2, streams).await;
    let import_rate = created as f64 / secs;
    let bare_rate = load::bare_insert(&pool, seed + 3, extra).await?;
    println!();
    println!("| import, {extra} rows into {book} | rows/s | seconds |");
    println!("|---|---:|---:|");
    println!("| ImportCustomers (gRPC, 2 streams, all checks) | {import_rate:.0} | {secs:.1} |");
    println!("| bare UNNEST insert of the same rows (ceiling) | {bare_rate:.0} | {:.1} |", extra as f64 / bare_rate);
    // The steady state a live book is in once autovacuum has been by: every
    // table vacuumed (index-only scans need the visibility map) and
    // analysed, so no autovacuum worker takes one of the two cores from
    // the measurements that follow.
    let vacuum = std::time::Instant::now();
    sqlx::query("VACUUM (ANALYZE)").execute(&pool).await?;
    println!();
    println!("VACUUM (ANALYZE) of the database: {:.1} s.", vacuum.elapsed().as_secs_f64());

    let total = book + extra;
    let s = sample(seed, book, streams, 997);
    println!();
    println!("Sample of {} companies to search for.", s.customers.len());

    // Search, per kind and scope.
    println!();
    println!("| search (8 callers) | scope | req/s | p50 ms | p99 ms | errors | found in top 5 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let kinds: Vec<(&str, QueryOf)> = vec![
        ("name part (brand)", Box::new(|c: &pb::Customer, _| core(c).chars().take(2).collect())),
        ("one wrong character", Box::new(|c: &pb::Customer, i| typo(&core(c).chars().take(4).collect::<String>(), i))),
        ("pinyin, full", Box::new(|c: &pb::Customer, _| pinyin_full(&core(c).chars().take(4).collect::<String>()))),
        ("pinyin, initials", Box::new(|c: &pb::Customer, _| pinyin_initials(&core(c)))),
        ("phone, first 7 digits", Box::new(|c: &pb::Customer, _| c.contacts[0].phones[0].chars().take(7).collect())),
        ("phone, whole", Box::new(|c: &pb::Customer, _| c.contacts[0].phones[0].clone())),
        (
            "email, start",
            Box::new(|c: &pb::Customer, _| c.contacts[0].email.split('@').next().unwrap_or("").to_string()),
        ),
    ];
    let kinds = std::sync::Arc::new(kinds);
    let samples = std::sync::Arc::new(s.customers);
    for k in 0..kinds.len() {
        for scope in ["sales", "branch manager", "admin"] {
            let mut clients = Vec::new();
            for (w, c) in samples.iter().take(8).enumerate() {
                let (roles, sub, branch): (&[Role], String, Option<&str>) = match scope {
                    "sales" => (&[Role::Sales], c.owner_id.clone(), Some(c.branch.as_str())),
                    "branch manager" => (&[Role::BranchManager], format!("bm-{w}"), Some(c.branch.as_str())),
                    _ => (&[Role::Admin], format!("admin-{w}"), None),
                };
                clients.push(client(&svc, roles, &sub, branch).await);
            }
            let found = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let (kinds2, samples2, found2) = (kinds.clone(), samples.clone(), found.clone());
            let stats = measure(&format!("{} | {scope}", kinds[k].0), 8, search_seconds, move |w, i| {
                let mut c = clients[w].clone();
                let (kinds, samples, found) = (kinds2.clone(), samples2.clone(), found2.clone());
                async move {
                    // Each worker asks for customers of its own scope: a
                    // salesperson's worker looks for its owner's customers.
                    let pick = &samples[(w + 8 * i) % samples.len()];
                    let target = if scope == "admin" { pick } else { &samples[w % samples.len()] };
                    let q = (kinds[k].1)(target, i);
                    match c
                        .search_customers(pb::SearchCustomersRequest { query: q, page_size: 20, ..Default::default() })
                        .await
                    {
                        Ok(r) => {
                            let r = r.into_inner();
                            let hit = r.hits.iter().take(5).any(|h| {
                                h.customer.as_ref().is_some_and(|x| {
                                    x.legal_name == target.legal_name
                                        && x.phone.ends_with(&target.phone[target.phone.len() - 4..])
                                })
                            });
                            if hit {
                                found.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            true
                        }
                        Err(_) => false,
                    }
                }
            })
            .await;
            let share = found.load(std::sync::atomic::Ordering::Relaxed) as f64 / stats.requests.max(1) as f64;
            println!(
                "| {} | {:.0} | {:.1} | {:.1} | {} | {:.0}% |",
                stats.name,
                stats.rate(),
                stats.p50_ms(),
                stats.p99_ms(),
                stats.errors,
                share * 100.0
            );
        }
    }
    let url = db.url.clone();
    println!();
    row_header("ceiling (pgbench, 8 clients)");
    let brand = core(&samples[0]).chars().take(2).collect::<String>();
    for (name, sql) in [
        (
            "name term lookup, admin (index-only, 400 holders)",
            format!(
                "SELECT count(*) FROM (SELECT customer_id FROM customers.search_terms \
                 WHERE term = hashtextextended('{brand}', 0) LIMIT 400) t;"
            ),
        ),
        (
            "name term lookup, branch (index-only, 400 holders)",
            format!(
                "SELECT count(*) FROM (SELECT customer_id FROM customers.search_terms \
                 WHERE term = hashtextextended('{brand}', 0) AND branch_h = hashtext('{}') LIMIT 400) t;",
                samples[0].branch
            ),
        ),
        (
            "pinyin term lookup, salesperson (index-only, 400 holders)",
            format!(
                "SELECT count(*) FROM (SELECT customer_id FROM customers.search_terms \
                 WHERE term = hashtextextended('{}', 0) AND owner_h = hashtext('{}') LIMIT 400) t;",
                // pgbench reads `:name` as a variable: spell the colon as chr(58).
                crm_domain::search::pinyin_terms(&brand)
                    .first()
                    .map(|t| t.replacen(':', "' || chr(58) || '", 1))
                    .unwrap_or_default(),
                samples[0].owner_id
            ),
        ),
        (
            "phone prefix lookup (btree)",
            format!(
                "SELECT count(*) FROM (SELECT customer_id FROM customers.contact_points WHERE value LIKE '+86{}%' \
                 LIMIT 2000) t;",
                &samples[0].contacts[0].phones[0][..7]
            ),
        ),
    ] {
        pgbench(&url, name, &sql, 8, seconds)?.print();
    }

    // The duplicate check: a registration whose name is an existing
    // company's in another form, in the same region: candidates come back,
    // nothing is created.
    println!();
    row_header("duplicate check (CreateCustomer, nothing created)");
    for callers in [1usize, 8] {
        let mut clients = Vec::new();
        for w in 0..callers {
            clients.push(client(&svc, &[Role::Admin], &format!("dup-{w}"), None).await);
        }
        let samples = samples.clone();
        measure(&format!("duplicate check, {callers} caller(s)"), callers, seconds, move |w, i| {
            let mut c = clients[w].clone();
            let target = samples[(w * 7919 + i) % samples.len()].clone();
            async move {
                let probe = pb::Customer {
                    kind: pb::PartyKind::Organization as i32,
                    display_name: format!("{}(分部)", core(&target)),
                    region: target.region.clone(),
                    branch: target.branch.clone(),
                    ..Default::default()
                };
                c.create_customer(pb::CreateCustomerRequest {
                    request_id: rid(),
                    customer: Some(probe),
                    confirm_not_duplicate: false,
                })
                .await
                .is_ok_and(|r| r.into_inner().customer.is_none())
            }
        })
        .await
        .print();
    }

    // CreateCustomer at a million, against the same writes in pgbench.
    println!();
    row_header("CreateCustomer (32 callers)");
    create_small.print();
    let create_big = create_load(&svc, &format!("CreateCustomer at {total} rows"), 32, seconds, 20_000_000).await;
    create_big.print();
    pgbench(&url, "same writes, one transaction (pgbench)", load::CREATE_SQL, 32, seconds)?.print();
    println!();
    println!(
        "CreateCustomer at {total} rows runs at {:.0}% of its rate at 10k rows.",
        100.0 * create_big.rate() / create_small.rate().max(1.0)
    );

    // GetCustomer against pgbench's primary-key select.
    let ids: Vec<uuid::Uuid> =
        // Rows of the book (ImportCustomers built their documents), not the
        // ceilings' rows, whose documents are placeholders.
        sqlx::query_scalar(
            "SELECT id FROM customers.customers TABLESAMPLE SYSTEM (2) WHERE created_by = 'bench-import' LIMIT 20000",
        )
            .fetch_all(&pool)
            .await?;
    let ids = std::sync::Arc::new(ids);
    println!();
    row_header("GetCustomer (32 callers)");
    let mut clients = Vec::new();
    for w in 0..32 {
        clients.push(client(&svc, &[Role::Admin], &format!("reader-{w}"), None).await);
    }
    measure("GetCustomer (read model + audited read)", 32, seconds, move |w, i| {
        let mut c = clients[w % clients.len()].clone();
        let id = ids[(w * 104_729 + i * 31) % ids.len()].to_string();
        async move { c.get_customer(pb::GetCustomerRequest { id }).await.map_err(report_error).is_ok() }
    })
    .await
    .print();
    load::pgbench_init(&url)?;
    load::pgbench_select_only(&url, 32, seconds)?.print();
    load::bare_check(32, seconds).await?.print();

    if std::env::var_os("BENCH_HOLD").is_some() {
        // Keep the book and the service up to look at from outside (psql,
        // grpcurl) until the process is stopped.
        eprintln!("holding: database {url}, service {}", svc.url());
        tokio::signal::ctrl_c().await?;
    }
    drop(svc);
    load::stop_cluster(&pg);
    Ok(())
}

/// Prints the first few errors of a run (an error row says what it was).
fn report_error(e: tonic::Status) {
    static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3 {
        eprintln!("  error: {:?} {}", e.code(), e.message());
    }
}

/// `callers` registering new customers for `seconds`.
async fn create_load(svc: &TestService, name: &str, callers: usize, seconds: u64, offset: usize) -> Stats {
    let mut clients = Vec::new();
    for w in 0..callers {
        clients.push(client(svc, &[Role::Admin], &format!("creator-{w}"), None).await);
    }
    measure(name, callers, seconds, move |w, i| {
        let mut c = clients[w].clone();
        let mut r = data::Rng::new((offset + w * 1_000_003 + i) as u64);
        let customer = data::customer(&mut r, offset + w * 100_000 + i);
        async move {
            c.create_customer(pb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(customer),
                confirm_not_duplicate: true,
            })
            .await
            .is_ok()
        }
    })
    .await
}

//! `make bench`: the dispatch service's throughput and latency, each next to
//! its ceiling measured in the same run on the same machine
//! (docs/benchmarks.md):
//!
//! - protocol ceiling: the gRPC health `Check` of a bare tonic server (no
//!   auth, no database) at the same concurrency;
//! - `GetWorkOrder` through the whole service (auth, tower layers, three
//!   queries), against pgbench running the same three queries;
//! - `AssignWorkOrder` (idempotency key, row locks, the capacity upsert,
//!   history), against pgbench running the same statements;
//! - `RecordReadings` bulk rows/s, against the bare `UNNEST` insert of the
//!   same rows through sqlx.
//!
//! Everything runs in-process against the test kit's ephemeral Postgres
//! (or `CRM_TEST_DATABASE_URL`). Settings: `BENCH_SECONDS` (default 5),
//! `BENCH_CONCURRENCY` (default 16), `BENCH_READINGS` (default 50000).

use std::{
    error::Error,
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use chrono::{Datelike, Days, Utc, Weekday};
use crm_proto::{
    common::v1 as common,
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    dispatch::v1::{self as pb, dispatch_service_client::DispatchServiceClient},
};
use crm_testkit::{Role, TestService};
use sqlx::PgPool;

type BoxError = Box<dyn Error + Send + Sync>;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Requests/s and latency percentiles of one measurement.
struct Stats {
    name: String,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Stats {
    fn print(&self) {
        println!(
            "| {:<34} | {:>9.0} | {:>8.2} | {:>8.2} | {:>6} |",
            self.name,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.errors
        );
    }
}

/// Runs `call(worker, i)` from `concurrency` workers for `seconds`.
async fn measure<F, Fut>(name: &str, concurrency: usize, seconds: u64, call: F) -> Stats
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
    all.sort();
    let pct = |p: usize| all.get((all.len() * p / 100).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    Stats { name: name.into(), requests: all.len(), errors, elapsed, p50: pct(50), p99: pct(99) }
}

/// pgbench with a custom script: (tps, average latency ms).
fn pgbench(url: &str, script: &str, clients: u64, seconds: u64) -> Result<(f64, f64), BoxError> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pgbench"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pgbench"));
    let file = std::env::temp_dir().join(format!("crm-bench-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(&file, script)?;
    let out = std::process::Command::new(bin)
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&file)
        .arg(url)
        .output()?;
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    let num = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split(['=', ' ']).filter_map(|w| w.parse::<f64>().ok()).next())
    };
    match (num("tps"), num("latency average")) {
        (Some(tps), Some(lat)) => Ok((tps, lat)),
        _ => Err(format!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr)).into()),
    }
}

fn working_day() -> common::Date {
    let mut d = Utc::now().date_naive() + Days::new(7);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d = d + Days::new(1);
    }
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds = setting("BENCH_SECONDS", 5);
    let concurrency = setting("BENCH_CONCURRENCY", 16) as usize;
    let readings = setting("BENCH_READINGS", 50_000) as usize;

    let db = crm_testkit::database(&[&crm_customers::SERVICE, &crm_dispatch::SERVICE]).await;
    let customers = TestService::spawn_on(&crm_customers::SERVICE, db.clone(), None).await;
    let dispatch = TestService::spawn_on(&crm_dispatch::SERVICE, db.clone(), Some(customers.url())).await;
    let pool: PgPool = db.pool().await;
    let client = |roles: &[Role], sub: &str| {
        let bearer = dispatch.bearer(roles, sub, None);
        let channel = dispatch.channel();
        async move { DispatchServiceClient::with_interceptor(channel.await, bearer) }
    };

    // Fixtures: a customer, technicians with room, approved maintenance orders.
    let mut cust = CustomerServiceClient::with_interceptor(
        customers.channel().await,
        customers.bearer(&[Role::Admin], "bench", None),
    );
    let customer_id = cust
        .create_customer(cpb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(cpb::Customer {
                kind: cpb::PartyKind::Organization as i32,
                display_name: "基准测试".into(),
                branch: "bj".into(),
                ..Default::default()
            }),
            confirm_not_duplicate: true,
        })
        .await?
        .into_inner()
        .customer
        .ok_or("no customer")?
        .id;
    let mut disp = client(&[Role::Dispatcher, Role::ServiceManager], "bench").await;
    let mut technicians = vec![];
    for n in 0..800 {
        let t = disp
            .create_technician(pb::CreateTechnicianRequest {
                request_id: rid(),
                technician: Some(pb::Technician {
                    user_sub: format!("bench-tech-{n}"),
                    display_name: format!("Tech {n}"),
                    skills: vec!["gps".into()],
                    territory: "north".into(),
                    daily_capacity: 50,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .technician
            .ok_or("no technician")?;
        technicians.push(t.id);
    }
    // Orders are inserted as approved copies of one created through the API,
    // so the fixture does not dominate the run.
    let template = disp
        .create_work_order(pb::CreateWorkOrderRequest {
            request_id: rid(),
            customer_id: customer_id.clone(),
            kind: pb::WorkOrderKind::Maintenance as i32,
            urgency: pb::Urgency::Normal as i32,
            site_address: "北京市朝阳区 1 号".into(),
            contact_name: "王".into(),
            contact_phone: "13800138000".into(),
            description: "年检".into(),
            required_skills: vec!["gps".into()],
            territory: "north".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .work_order
        .ok_or("no order")?;
    let copies = 40_000;
    sqlx::query(
        "INSERT INTO dispatch.work_orders (id, customer_id, customer_name, service_level, kind, state, urgency, \
         priority, site_address, contact_name, contact_phone, description, required_skills, territory, created_by, \
         created_at, updated_at) \
         SELECT gen_random_uuid(), customer_id, customer_name, service_level, kind, 'approved', urgency, priority, \
         site_address, contact_name, contact_phone, description, required_skills, territory, created_by, now(), now() \
         FROM dispatch.work_orders, generate_series(1, $2) WHERE id = $1::uuid",
    )
    .bind(&template.id)
    .bind(copies)
    .execute(&pool)
    .await?;
    let orders: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM dispatch.work_orders WHERE state = 'approved' ORDER BY id")
            .fetch_all(&pool)
            .await?;

    println!("\ndispatch benchmark: {concurrency} concurrent clients, {seconds} s per row\n");
    println!("| what                               |     req/s |  p50 ms |  p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|");

    // Protocol ceiling: a bare tonic server's health check.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            // TCP_NODELAY as the platform sets it, so the ceiling is not Nagle's.
            .serve_with_incoming(tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |c| {
                    let c = c?;
                    c.set_nodelay(true)?;
                    Ok::<_, std::io::Error>(c)
                },
            )),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;
    let bare = tonic_health::pb::health_client::HealthClient::new(channel);
    measure("bare tonic Check (protocol ceiling)", concurrency, seconds, move |_, _| {
        let mut c = bare.clone();
        async move { c.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok() }
    })
    .await
    .print();

    let reader = client(&[Role::Dispatcher], "bench-reader").await;
    let ids = orders.clone();
    measure("GetWorkOrder", concurrency, seconds, move |w, i| {
        let mut c = reader.clone();
        let id = ids[(w * 7919 + i) % ids.len()].clone();
        async move { c.get_work_order(pb::GetWorkOrderRequest { id }).await.is_ok() }
    })
    .await
    .print();

    // Each worker assigns its own slice of orders, so no call waits for an
    // order another holds; technicians are shared, as in the field.
    let assigner = client(&[Role::Dispatcher], "bench-assigner").await;
    let (ids, techs) = (orders.clone(), technicians.clone());
    let per = ids.len() / concurrency.max(1);
    let day = working_day();
    let assigned = measure("AssignWorkOrder", concurrency, seconds, move |w, i| {
        let mut c = assigner.clone();
        let id = ids.get(w * per + i % per.max(1)).cloned().unwrap_or_default();
        let technician_id = techs[(w + i) % techs.len()].clone();
        async move {
            c.assign_work_order(pb::AssignWorkOrderRequest {
                request_id: rid(),
                id,
                etag: String::new(),
                technician_id,
                day: Some(day),
            })
            .await
            .is_ok()
        }
    })
    .await;
    assigned.print();
    if assigned.requests >= per * concurrency {
        println!("(AssignWorkOrder ran out of approved orders: raise the fixture or lower BENCH_SECONDS)");
    }

    // Database ceilings: the same SQL through pgbench.
    // Random orders and technicians for pgbench, picked by primary-key
    // lookups in side tables of this throw-away database, so clients contend
    // like the service's calls do and the pick itself costs next to nothing.
    for (table, sql) in [
        ("bench_orders", "SELECT id FROM dispatch.work_orders WHERE kind = 'maintenance'"),
        ("bench_technicians", "SELECT id FROM dispatch.technicians"),
    ] {
        let create = format!(
            "CREATE TABLE public.{table} AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM ({sql}) s"
        );
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&pool).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE public.{table} ADD PRIMARY KEY (n)")))
            .execute(&pool)
            .await?;
    }
    let pick = format!(
        "\\set n random(0, {})\n\\set k random(0, {})\n",
        orders.len().saturating_sub(1),
        technicians.len().saturating_sub(1)
    );
    let order = "(SELECT id FROM public.bench_orders WHERE n = :n)";
    let technician = "(SELECT id FROM public.bench_technicians WHERE n = :k)";
    let get_sql = format!(
        "{pick}SELECT w.* FROM dispatch.work_orders w WHERE w.id = {order};\n\
         SELECT * FROM dispatch.work_order_history WHERE work_order_id = {order} ORDER BY id;\n\
         SELECT * FROM dispatch.work_order_lines WHERE work_order_id = {order} ORDER BY line_no;\n"
    );
    // The service books every order on one day, so pgbench does too: the
    // technician's day row is the contended lock in both.
    let booked_day = format!("{:04}-{:02}-{:02}", day.year, day.month, day.day);
    let assign_sql = format!(
        "{pick}BEGIN;\n\
         INSERT INTO dispatch.idempotency_keys (request_id, principal, method, request) \
         VALUES (gen_random_uuid(), 'p', 'AssignWorkOrder', '\\x00');\n\
         SELECT * FROM dispatch.work_orders WHERE id = {order} FOR UPDATE;\n\
         SELECT * FROM dispatch.technicians WHERE id = {technician};\n\
         INSERT INTO dispatch.technician_days AS d (technician_id, day, booked) \
         SELECT {technician}, '{booked_day}'::date, 1 \
         ON CONFLICT (technician_id, day) DO UPDATE SET booked = d.booked + 1 WHERE d.booked < 1000000 RETURNING booked;\n\
         UPDATE dispatch.work_orders SET updated_at = now(), version = version + 1 WHERE id = {order};\n\
         INSERT INTO dispatch.work_order_history (work_order_id, action, from_state, to_state, actor, at) \
         SELECT {order}, 'bench', 'approved', 'approved', 'b', now();\n\
         SELECT * FROM dispatch.work_order_history WHERE work_order_id = {order} ORDER BY id;\n\
         END;\n"
    );
    for (name, script) in [("GetWorkOrder SQL (pgbench)", get_sql), ("AssignWorkOrder SQL (pgbench)", assign_sql)] {
        match pgbench(&db.url, &script, concurrency as u64, seconds) {
            Ok((tps, avg)) => println!("| {name:<34} | {tps:>9.0} | avg {avg:>4.2} |       – |      – |"),
            Err(e) => println!("| {name:<34} | not measured: {e} |"),
        }
    }

    // Bulk: readings streamed through the service, then the bare UNNEST.
    let route = disp
        .create_route(pb::CreateRouteRequest {
            request_id: rid(),
            route: Some(pb::Route {
                name: "bench".into(),
                schedule: pb::RouteSchedule::ResidentialMonthly as i32,
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .route
        .ok_or("no route")?;
    let meters = 1_000usize;
    sqlx::query(
        "INSERT INTO dispatch.meters (id, customer_id, customer_name, service_level, number, kind, installed_on, \
         flow_direction, prepaid, route_id, site_address, created_by, created_at, meter_class) \
         SELECT gen_random_uuid(), $1::uuid, 'bench', 'general', 'BM-' || n, 'gas', '2020-01-01', 'forward', false, $2::uuid, \
         'a', 'bench', now(), CASE r.schedule WHEN 'commercial_monthly' THEN 'commercial' ELSE 'residential' END \
         FROM generate_series(1, $3) n, dispatch.routes r WHERE r.id = $2::uuid",
    )
    .bind(&customer_id)
    .bind(&route.id)
    .bind(i32::try_from(meters)?)
    .execute(&pool)
    .await?;
    // One reading per meter and month, going back month by month.
    let months = readings.div_ceil(meters);
    let mut batch = vec![];
    for m in 0..months {
        for n in 1..=meters {
            if batch.len() == readings {
                break;
            }
            let at = Utc::now() - chrono::Duration::days(35 * i64::try_from(months - m)?);
            batch.push(pb::MeterReading {
                reading_id: rid(),
                meter_number: format!("BM-{n}"),
                read_at: Some(crm_platform::proto_time::to_proto(at)),
                outcome: pb::ReadingOutcome::Read as i32,
                cumulative_volume: i64::try_from(m)? * 1_000,
                ..Default::default()
            });
        }
    }
    let total = batch.len();
    let messages: Vec<pb::RecordReadingsRequest> =
        batch.chunks(500).map(|c| pb::RecordReadingsRequest { readings: c.to_vec() }).collect();
    let mut meter_reader = client(&[Role::MeterReader], "bench-reader").await;
    let t = Instant::now();
    let resp = meter_reader.record_readings(tokio_stream::iter(messages)).await?.into_inner();
    let streamed = t.elapsed();
    println!(
        "\n| bulk                               |    rows/s | rows | accepted | seconds |\n|---|---:|---:|---:|---:|\n\
         | RecordReadings (stream)            | {:>9.0} | {total} | {} | {:.2} |",
        total as f64 / streamed.as_secs_f64(),
        resp.accepted,
        streamed.as_secs_f64()
    );
    // The service's own UNNEST statement with the same number of rows, built
    // client side: what the database alone takes to store them.
    let meter_ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM dispatch.meters WHERE route_id = $1::uuid ORDER BY id")
            .bind(&route.id)
            .fetch_all(&pool)
            .await?;
    let mut cols = crm_dispatch::store::ReadingColumns::default();
    for g in 0..months {
        for m in &meter_ids {
            if cols.id.len() == total {
                break;
            }
            cols.id.push(uuid::Uuid::now_v7());
            cols.meter_id.push(*m);
            cols.period.push(format!("bench-{g}"));
            cols.read_at.push(Utc::now());
            cols.outcome.push("read".into());
            cols.base_reading.push(Some(0));
            cols.cumulative_volume.push(Some(i64::try_from(g)?));
            cols.consumption.push(None);
            cols.days.push(None);
            cols.balance_minor.push(None);
            cols.currency.push(None);
            cols.missed_reason.push(String::new());
            cols.anomaly.push(None);
            cols.repair_work_order_id.push(None);
            cols.register_change.push(None);
            cols.outside_window.push(false);
        }
    }
    let t = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut inserted = 0;
    for chunk in 0..cols.id.len().div_ceil(1_000) {
        let r = chunk * 1_000..((chunk + 1) * 1_000).min(cols.id.len());
        let part = crm_dispatch::store::ReadingColumns {
            id: cols.id[r.clone()].to_vec(),
            meter_id: cols.meter_id[r.clone()].to_vec(),
            period: cols.period[r.clone()].to_vec(),
            read_at: cols.read_at[r.clone()].to_vec(),
            outcome: cols.outcome[r.clone()].to_vec(),
            base_reading: cols.base_reading[r.clone()].to_vec(),
            cumulative_volume: cols.cumulative_volume[r.clone()].to_vec(),
            consumption: cols.consumption[r.clone()].to_vec(),
            days: cols.days[r.clone()].to_vec(),
            balance_minor: cols.balance_minor[r.clone()].to_vec(),
            currency: cols.currency[r.clone()].to_vec(),
            missed_reason: cols.missed_reason[r.clone()].to_vec(),
            anomaly: cols.anomaly[r.clone()].to_vec(),
            repair_work_order_id: cols.repair_work_order_id[r.clone()].to_vec(),
            register_change: cols.register_change[r.clone()].to_vec(),
            outside_window: cols.outside_window[r].to_vec(),
        };
        inserted += crm_dispatch::store::insert_readings(&mut conn, &part, "bench", Utc::now()).await?.len();
    }
    let bare = t.elapsed();
    println!(
        "| same UNNEST insert, bare (ceiling) | {:>9.0} | {inserted} | – | {:.2} |",
        inserted as f64 / bare.as_secs_f64(),
        bare.as_secs_f64()
    );
    Ok(())
}

//! `make bench`: the BIL-3 billing run over 100 000 accounts, against a
//! fresh database of the test kit, with the database ceiling of the same
//! computation measured in the same run:
//!
//! 1. `run`: `bill_period` — one consumption query, charges in memory, bulk
//!    writes of invoices, lines, ledger entries and run records, commit.
//! 2. `ceiling`: one SQL statement computing the same consumption and tiered
//!    charges for every account (read-only: no invoices written).
//! 3. `ingest`: 100 000 readings streamed over gRPC to `RecordMeterReadings`.
//!
//! Prints one line per measurement; docs/benchmarks.md records a run.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

use chrono::NaiveDate;
use crm_proto::{billing::v1 as pb, common::v1 as common};
use crm_testkit::{Role, TestService};

const ACCOUNTS: i64 = 100_000;

#[tokio::main]
async fn main() {
    let accounts: i64 = std::env::var("BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(ACCOUNTS);
    let db = crm_testkit::database(&[&crm_customers::SERVICE, &crm_billing::SERVICE]).await;
    let pool = db.pool().await;
    let start = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    let end = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();

    let t = Instant::now();
    setup(&pool, accounts, start, end).await;
    println!("setup: {accounts} accounts, {} readings in {:.1} s", accounts * 2, t.elapsed().as_secs_f64());

    // The ceiling: consumption and tiered charges of every account in one statement.
    let t = Instant::now();
    let (n, net): (i64, i64) = sqlx::query_as(CEILING).bind(start).bind(end).fetch_one(&pool).await.expect("ceiling");
    let ceiling = t.elapsed().as_secs_f64();
    println!(
        "ceiling (one SQL statement, read-only): {n} accounts in {ceiling:.2} s = {:.0} accounts/s",
        n as f64 / ceiling
    );

    let calendar = crm_domain::WorkingCalendar::default();
    let t = Instant::now();
    let mut tx = pool.begin().await.expect("tx");
    let r = crm_billing::api::usage::bill_period(&mut tx, &calendar, start, end, "bench").await.expect("run");
    tx.commit().await.expect("commit");
    let run = t.elapsed().as_secs_f64();
    println!(
        "run (compute + write invoices, lines, ledger, records): {} accounts in {run:.2} s = {:.0} accounts/s",
        r.accounts_billed,
        r.accounts_billed as f64 / run
    );
    let billed_net: i64 =
        sqlx::query_scalar("SELECT sum(net_minor)::bigint FROM billing.invoices WHERE series = 'USG'")
            .fetch_one(&pool)
            .await
            .expect("sum");
    assert_eq!(billed_net, net, "the run and the ceiling statement agree on every fen");

    let t = Instant::now();
    let mut tx = pool.begin().await.expect("tx");
    let again = crm_billing::api::usage::bill_period(&mut tx, &calendar, start, end, "bench").await.expect("rerun");
    tx.commit().await.expect("commit");
    println!(
        "re-run of the same period: {} billed, {} skipped in {:.2} s",
        again.accounts_billed,
        again.accounts_skipped,
        t.elapsed().as_secs_f64()
    );

    // Ingestion over gRPC.
    let customers = TestService::spawn_on(&crm_customers::SERVICE, db.clone(), None).await;
    let billing = TestService::spawn_on(&crm_billing::SERVICE, db.clone(), Some(customers.url())).await;
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM billing.accounts ORDER BY id").fetch_all(&pool).await.expect("ids");
    // A later reading of every meter, a month after the period.
    let date = common::Date { year: 2026, month: 12, day: 30 };
    let msgs: Vec<pb::RecordMeterReadingsRequest> = ids
        .chunks(1000)
        .map(|chunk| pb::RecordMeterReadingsRequest {
            readings: chunk
                .iter()
                .map(|id| pb::MeterReading {
                    account_id: id.to_string(),
                    meter_id: format!("M-{id}"),
                    read_on: Some(date),
                    reading_litres: 90_000_000,
                    kind: pb::ReadingKind::Normal as i32,
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let mut client = pb::billing_service_client::BillingServiceClient::with_interceptor(
        billing.channel().await,
        billing.bearer(&[Role::MeterReader], "bench", None),
    )
    .max_decoding_message_size(64 << 20)
    .max_encoding_message_size(64 << 20);
    let t = Instant::now();
    let resp = client.record_meter_readings(tokio_stream::iter(msgs)).await.expect("stream").into_inner();
    let ingest = t.elapsed().as_secs_f64();
    println!(
        "ingest (gRPC stream, validated, UNNEST batches): {} readings in {ingest:.2} s = {:.0} rows/s",
        resp.accepted,
        resp.accepted as f64 / ingest
    );
}

/// 100k postpaid commercial accounts, one meter each read at the start and
/// the end of the period, and one tiered tariff in force.
async fn setup(pool: &sqlx::PgPool, n: i64, start: NaiveDate, end: NaiveDate) {
    sqlx::query(
        "INSERT INTO billing.tariffs (id, customer_class, effective_from, vat_rate_bp, currency, created_by) \
         VALUES ('00000000-0000-7000-8000-000000000001', 'commercial', '2026-01-01', 900, 'CNY', 'bench')",
    )
    .execute(pool)
    .await
    .expect("tariff");
    sqlx::query(
        "INSERT INTO billing.tariff_blocks VALUES ('00000000-0000-7000-8000-000000000001', 0, 300, 261), \
         ('00000000-0000-7000-8000-000000000001', 1, 600, 313), ('00000000-0000-7000-8000-000000000001', 2, NULL, 391)",
    )
    .execute(pool)
    .await
    .expect("blocks");
    sqlx::query(
        "INSERT INTO billing.accounts (id, customer_id, kind, status, customer_class, currency, created_by) \
         SELECT gen_random_uuid(), gen_random_uuid(), 'postpaid', 'active', 'commercial', 'CNY', 'bench' \
         FROM generate_series(1, $1)",
    )
    .bind(n)
    .execute(pool)
    .await
    .expect("accounts");
    sqlx::query(
        "INSERT INTO billing.meter_readings (meter_id, read_on, account_id, reading_litres, kind) \
         SELECT 'M-' || a.id, d.day, a.id, CASE WHEN d.day = $1 THEN 1000000 ELSE 1000000 + (abs(hashtext(a.id::text)) % 900000) END, 'normal' \
         FROM billing.accounts a CROSS JOIN (VALUES ($1::date), ($2::date)) AS d(day)",
    )
    .bind(start)
    .bind(end)
    .execute(pool)
    .await
    .expect("readings");
    sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
}

/// Consumption per account (the same deltas as the run) priced with the
/// tariff's blocks, half-up per block, summed — in one statement.
const CEILING: &str = "
WITH r AS (
  SELECT m.account_id, m.read_on, m.reading_litres, m.kind, m.old_meter_final_litres, m.meter_max_litres,
         lag(m.reading_litres) OVER (PARTITION BY m.meter_id ORDER BY m.read_on) AS prev
  FROM billing.meter_readings m WHERE m.read_on <= $2),
u AS (
  SELECT r.account_id, sum(CASE WHEN r.prev IS NULL THEN 0 WHEN r.kind = 'normal' THEN r.reading_litres - r.prev
         WHEN r.kind = 'replacement' THEN r.old_meter_final_litres - r.prev
         ELSE r.meter_max_litres - r.prev + r.reading_litres END) AS litres
  FROM r JOIN billing.accounts a ON a.id = r.account_id AND a.kind = 'postpaid' AND a.status = 'active'
  WHERE r.read_on > $1 GROUP BY r.account_id),
b AS (
  SELECT position, price_minor_per_m3 AS price, coalesce(lag(up_to_m3) OVER (ORDER BY position), 0) * 1000 AS lo,
         up_to_m3 * 1000 AS hi
  FROM billing.tariff_blocks WHERE tariff_id = '00000000-0000-7000-8000-000000000001'),
c AS (
  SELECT u.account_id, sum(round((least(u.litres, coalesce(b.hi, u.litres)) - b.lo)::numeric * b.price / 1000)) AS net
  FROM u JOIN b ON u.litres > b.lo GROUP BY u.account_id)
SELECT count(*)::bigint, coalesce(sum(net), 0)::bigint FROM c";

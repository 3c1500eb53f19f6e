//! `make bench`: the event path with all four services in-process on
//! the test kit's ephemeral Postgres, each number next to a ceiling measured
//! in the same run:
//!
//! 1. `feed`: a raw `Subscribe` client reading N `meter.read` events from
//!    dispatch's feed — against `outbox read, bare`, the feed's own query
//!    paged through the same rows straight through sqlx.
//! 2. `consumer`: billing applying the same N events as usage readings
//!    (batches of up to 50 events per transaction, a savepoint each: applied
//!    id, the reading's checks and insert; the cursor once per batch) —
//!    against `same writes, bare`: the applied id and the reading insert per
//!    event and the cursor update per transaction, on one connection, with one
//!    event per transaction and with 50.
//!
//! Prints one line per measurement; docs/benchmarks.md records a run.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crm_events::{Payload, emit_many, pb};
use crm_flows::System;
use tokio_stream::StreamExt;
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let n: i64 = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let sys = System::start().await;
    let customer = sys.customer("基准客户").await;
    let account = sys.account(&customer).await;

    // Billing must not consume while the feed is measured: stop it first.
    let mut sys = sys;
    sys.group.stop("billing").await;

    // N readings of N meters of one customer, written as dispatch would, in
    // chunks of 1 000 per transaction.
    let t = Instant::now();
    let read_at = crm_platform::proto_time::now() - chrono::Duration::days(1);
    for chunk in 0..(n + 999) / 1000 {
        let events: Vec<(Uuid, Payload)> = (chunk * 1000..((chunk + 1) * 1000).min(n))
            .map(|i| {
                let reading = Uuid::now_v7();
                let payload = Payload::MeterRead(pb::MeterRead {
                    reading_id: reading.to_string(),
                    meter_id: format!("BM-{i:08}"),
                    meter_number: format!("BM-{i:08}"),
                    customer_id: customer.clone(),
                    period: "2026-11".into(),
                    read_at: Some(crm_platform::proto_time::to_proto(read_at)),
                    reading_litres: 1_000 + i,
                    consumption_litres: 0,
                    ..Default::default()
                });
                (reading, payload)
            })
            .collect();
        let mut tx = sys.pool.begin().await.unwrap();
        emit_many(&mut tx, "dispatch", read_at, events).await.unwrap();
        tx.commit().await.unwrap();
    }
    // Billing's history: a year of monthly readings of 10 000 other meters,
    // so the consumer works against a table of realistic size and statistics.
    sqlx::query(
        "INSERT INTO billing.meter_readings (meter_id, read_on, account_id, reading_litres, kind) \
         SELECT 'H-' || m, current_date - 30 * k, $1, 1000 * (13 - k), 'normal' \
         FROM generate_series(1, 10000) m CROSS JOIN generate_series(1, 12) k",
    )
    .bind(Uuid::parse_str(&account.id).unwrap())
    .execute(&sys.pool)
    .await
    .unwrap();
    println!(
        "setup: {n} meter.read events in dispatch.outbox, 120 000 readings of history, in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    sqlx::query("ANALYZE").execute(&sys.pool).await.unwrap();

    // 1. The feed, as a subscriber sees it.
    let mut feed = sys.feed("dispatch").await;
    let t = Instant::now();
    let mut stream = feed
        .subscribe(pb::SubscribeRequest { after_seq: 0, types: vec!["meter.read".into()] })
        .await
        .unwrap()
        .into_inner();
    let mut got = 0;
    while got < n {
        stream.next().await.unwrap().unwrap();
        got += 1;
    }
    drop(stream);
    let feed_s = t.elapsed().as_secs_f64();
    println!("feed (Subscribe over gRPC): {got} events in {feed_s:.2} s = {:.0} events/s", got as f64 / feed_s);

    // Its ceiling: the feed's query paged through the same rows, bare.
    let t = Instant::now();
    let (mut tx_pos, mut seq_pos, mut read) = ("0".to_string(), 0_i64, 0_i64);
    loop {
        let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT o.seq, o.tx::text AS tx_pos, o.body FROM dispatch.outbox o \
             WHERE (o.tx, o.seq) > ($1::xid8, $2) AND o.tx < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY o.tx, o.seq LIMIT 256",
        )
        .bind(&tx_pos)
        .bind(seq_pos)
        .fetch_all(&sys.pool)
        .await
        .unwrap();
        let Some(last) = rows.last() else { break };
        (seq_pos, tx_pos) = (last.0, last.1.clone());
        read += rows.len() as i64;
    }
    let bare_s = t.elapsed().as_secs_f64();
    println!("outbox read, bare (ceiling): {read} rows in {bare_s:.2} s = {:.0} rows/s", read as f64 / bare_s);

    // 2. Billing consumes them: start it and time until its cursor is at the end.
    let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM dispatch.outbox").fetch_one(&sys.pool).await.unwrap();
    let t = Instant::now();
    sys.group.start("billing").await;
    loop {
        if sys.cursor("billing", "dispatch").await >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let consumer_s = t.elapsed().as_secs_f64();
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM billing.meter_readings WHERE meter_id LIKE 'BM-%'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(recorded, n, "every event applied once");
    println!(
        "consumer (billing applies meter.read, batched): {n} events in {consumer_s:.2} s = {:.0} events/s",
        n as f64 / consumer_s
    );

    // Its ceilings: the same writes, bare, on one connection — one
    // transaction per event, and 50 per transaction as the consumer batches.
    sys.group.stop("billing").await;
    let account_id = Uuid::parse_str(&account.id).unwrap();
    for per_tx in [1_i64, 50] {
        let t = Instant::now();
        let mut conn = sys.pool.acquire().await.unwrap();
        let mut i = 0;
        while i < n {
            let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
            for _ in 0..per_tx.min(n - i) {
                sqlx::query(
                    "INSERT INTO billing.events_applied (event_id, source, seq, event_type) \
                     VALUES ($1, 'bench', $2, 'meter.read')",
                )
                .bind(Uuid::now_v7())
                .bind(i)
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO billing.meter_readings (meter_id, read_on, account_id, reading_litres, kind) \
                     VALUES ($1, current_date, $2, $3, 'normal')",
                )
                .bind(format!("B{per_tx}-{i:08}"))
                .bind(account_id)
                .bind(1_000 + i)
                .execute(&mut *tx)
                .await
                .unwrap();
                i += 1;
            }
            sqlx::query(
                "INSERT INTO billing.event_cursors (source, after_seq) VALUES ('bench', $1) \
                 ON CONFLICT (source) DO UPDATE SET after_seq = EXCLUDED.after_seq, update_time = now()",
            )
            .bind(i)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "same writes, bare, {per_tx} event(s) per transaction (ceiling): {n} events in {s:.2} s = {:.0} events/s",
            n as f64 / s
        );
    }
}

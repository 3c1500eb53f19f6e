//! BIL-3 usage: bulk readings with rejects, the billing run, re-runs.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use crm_proto::{billing::v1 as pb, common::v1 as common};
use crm_testkit::Role;

use crate::helpers::{App, amount, assert_invalid, reason, rid};

fn today() -> NaiveDate {
    (Utc::now() + Duration::hours(8)).date_naive()
}

fn d(day: NaiveDate) -> Option<common::Date> {
    Some(common::Date { year: day.year(), month: day.month() as i32, day: day.day() as i32 })
}

fn reading(account: &str, meter: &str, days: i64, litres: i64) -> pb::MeterReading {
    pb::MeterReading {
        account_id: account.into(),
        meter_id: meter.into(),
        read_on: d(today() + Duration::days(days)),
        reading_litres: litres,
        kind: pb::ReadingKind::Normal as i32,
        ..Default::default()
    }
}

async fn send(app: &App, readings: Vec<pb::MeterReading>) -> pb::RecordMeterReadingsResponse {
    let mut c = app.client(Role::MeterReader, "mr1").await;
    // Split over several messages, as a handheld would send them.
    let msgs: Vec<pb::RecordMeterReadingsRequest> =
        readings.chunks(3).map(|c| pb::RecordMeterReadingsRequest { readings: c.to_vec() }).collect();
    c.record_meter_readings(tokio_stream::iter(msgs)).await.expect("stream").into_inner()
}

async fn tariff(app: &App, days_from_now: i64, price: i64) {
    app.admin()
        .await
        .create_tariff(pb::CreateTariffRequest {
            request_id: rid(),
            tariff: Some(pb::Tariff {
                customer_class: pb::CustomerClass::Commercial as i32,
                effective_from: d(today() + Duration::days(days_from_now)),
                vat_rate_bp: 900,
                blocks: vec![
                    pb::TariffBlock { up_to_m3: 100, price_minor_per_m3: price },
                    pb::TariffBlock { up_to_m3: 0, price_minor_per_m3: price * 2 },
                ],
                ..Default::default()
            }),
        })
        .await
        .expect("tariff");
}

#[tokio::test]
async fn readings_are_taken_in_bulk_and_impossible_ones_rejected_with_their_position() {
    let app = App::new().await;
    let a = app.account("甲").await;
    let r = send(
        &app,
        vec![
            reading(&a.id, "M1", 1, 1_000),
            reading(&a.id, "M1", 10, 5_000),
            reading(&a.id, "M1", 20, 4_000), // lower than the previous: rejected
            reading(&uuid::Uuid::now_v7().to_string(), "M9", 1, 1), // unknown account
            pb::MeterReading { kind: 0, ..reading(&a.id, "M2", 1, 1) }, // no kind
            reading(&a.id, "M1", 10, 5_000), // the same meter and day again: a duplicate
            pb::MeterReading {
                kind: pb::ReadingKind::Replacement as i32,
                old_meter_final_litres: 6_000,
                ..reading(&a.id, "M1", 25, 10)
            },
            pb::MeterReading {
                kind: pb::ReadingKind::Rollover as i32,
                meter_max_litres: 0,
                ..reading(&a.id, "M1", 26, 5)
            },
        ],
    )
    .await;
    assert_eq!((r.accepted, r.duplicates), (3, 1));
    let rejected: Vec<(i64, String)> = r.rejected.iter().map(|x| (x.index, x.reason.clone())).collect();
    assert_eq!(
        rejected,
        vec![
            (2, "READING_BELOW_PREVIOUS".to_string()),
            (3, "UNKNOWN_ACCOUNT".to_string()),
            (4, "INVALID".to_string()),
            (7, "INVALID".to_string()),
        ]
    );
    assert_eq!(app.count("meter_readings").await, 3);
    // Sending the same stream again records nothing new.
    let again = send(&app, vec![reading(&a.id, "M1", 1, 1_000), reading(&a.id, "M1", 10, 5_000)]).await;
    assert_eq!((again.accepted, again.duplicates), (0, 2));
    let old = send(&app, vec![reading(&a.id, "M1", 5, 2_000)]).await;
    assert_eq!(old.rejected.first().map(|x| x.reason.as_str()), Some("OUT_OF_ORDER"));
}

#[tokio::test]
async fn a_billing_run_bills_each_account_once_with_tiers_split_at_a_tariff_change() {
    let app = App::new().await;
    tariff(&app, 0, 300).await; // 3.00/m³ up to 100 m³, 6.00 above
    tariff(&app, 21, 400).await; // from day 21: 4.00, 8.00
    let a = app.account("甲").await;
    let b = app.account("乙").await;
    send(
        &app,
        vec![
            reading(&a.id, "MA", 0, 0),
            reading(&a.id, "MA", 30, 150_000), // 150 m³ over 30 days
            reading(&b.id, "MB", 0, 99_999_000),
            pb::MeterReading {
                kind: pb::ReadingKind::Rollover as i32,
                meter_max_litres: 100_000_000,
                ..reading(&b.id, "MB", 15, 29_000)
            },
            pb::MeterReading {
                kind: pb::ReadingKind::Replacement as i32,
                old_meter_final_litres: 30_000,
                ..reading(&b.id, "MB", 30, 0)
            },
        ],
    )
    .await;
    let run = pb::RunBillingRequest {
        request_id: rid(),
        period_start: d(today()),
        period_end: d(today() + Duration::days(30)),
    };
    let mut fin = app.finance().await;
    let r = fin.run_billing(run.clone()).await.expect("run").into_inner();
    assert_eq!((r.accounts_billed, r.accounts_skipped, r.invoices_issued), (2, 0, 2));

    let invoice_of = |account: String| {
        let mut fin = fin.clone();
        async move {
            fin.list_invoices(pb::ListInvoicesRequest { account_id: account, status: 0 })
                .await
                .expect("list")
                .into_inner()
                .invoices
                .remove(0)
        }
    };
    // Account a: 150 m³; days 1-20 at the old tariff (100 m³, first block up to
    // 100 × 20/30 ≈ 67 m³), days 21-30 at the new one (50 m³, bound ≈ 33 m³).
    let ia = invoice_of(a.id.clone()).await;
    assert!(ia.number.starts_with("USG-"));
    assert_eq!(ia.status, pb::InvoiceStatus::Issued as i32);
    // Prorated block bounds are whole m³: 67 m³ and 33 m³.
    assert_eq!(amount(&ia.net), 67 * 300 + 33 * 600 + 33 * 400 + 17 * 800);
    // Account b: roll-over 1 000 + 29 000 L, replacement 1 000 L: 31 m³, never negative.
    let ib = invoice_of(b.id.clone()).await;
    assert_eq!(amount(&ib.net), (20_667 * 300 + 500) / 1000 + (10_333 * 400 + 500) / 1000);
    assert!(amount(&ib.vat) > 0);

    // Running the period again bills nobody twice, even under a new key.
    let again =
        fin.run_billing(pb::RunBillingRequest { request_id: rid(), ..run.clone() }).await.expect("rerun").into_inner();
    assert_eq!((again.accounts_billed, again.accounts_skipped), (0, 2));
    assert_eq!(app.count("invoices").await, 2);
    assert_eq!(app.mismatches().await, 0);
    // The same key answers the first run's result.
    assert_eq!(fin.run_billing(run).await.expect("replay").into_inner(), r);
}

#[tokio::test]
async fn a_run_is_refused_without_a_tariff_and_for_a_bad_period() {
    let app = App::new().await;
    let a = app.account("丙").await;
    send(&app, vec![reading(&a.id, "MC", 0, 0), reading(&a.id, "MC", 5, 1_000)]).await;
    let mut fin = app.finance().await;
    let err = fin
        .run_billing(pb::RunBillingRequest {
            request_id: rid(),
            period_start: d(today()),
            period_end: d(today() + Duration::days(5)),
        })
        .await
        .expect_err("no tariff");
    assert_eq!(reason(&err), "NO_TARIFF");
    let err = fin
        .run_billing(pb::RunBillingRequest { request_id: rid(), period_start: d(today()), period_end: d(today()) })
        .await
        .expect_err("empty period");
    assert_invalid(&err, "period_end");
    assert_eq!(app.count("invoices").await, 0);
}

//! DSP-7 over gRPC: routes and schedules, meters, streamed bulk readings with
//! per-reading rejects and safe re-sends, anomalies raising repair orders,
//! readings in the outbox for billing, read rates against targets.

use chrono::{Duration, Utc};
use crm_events::Payload;
use crm_platform::proto_time;
use crm_proto::dispatch::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, Client, assert_invalid, date, rid};

pub(crate) async fn route(app: &App, name: &str, schedule: pb::RouteSchedule) -> pb::Route {
    app.manager()
        .await
        .create_route(pb::CreateRouteRequest {
            request_id: rid(),
            route: Some(pb::Route { name: name.into(), schedule: schedule as i32, ..Default::default() }),
        })
        .await
        .expect("route")
        .into_inner()
        .route
        .expect("route")
}

pub(crate) fn meter(customer_id: &str, route_id: &str, number: &str) -> pb::Meter {
    pb::Meter {
        customer_id: customer_id.into(),
        route_id: route_id.into(),
        number: number.into(),
        kind: pb::MeterKind::Gas as i32,
        installed_on: Some(date(chrono::NaiveDate::from_ymd_opt(2019, 5, 1).unwrap())),
        flow_direction: pb::FlowDirection::Forward as i32,
        site_address: "北京市海淀区 8 号".into(),
        meter_class: pb::MeterClass::Residential as i32,
        ..Default::default()
    }
}

pub(crate) async fn register(app: &App, m: pb::Meter) -> pb::Meter {
    app.dispatcher()
        .await
        .register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(m) })
        .await
        .expect("meter")
        .into_inner()
        .meter
        .expect("meter")
}

pub(crate) fn read(number: &str, days_ago: i64, volume: i64) -> pb::MeterReading {
    pb::MeterReading {
        reading_id: rid(),
        meter_number: number.into(),
        read_at: Some(proto_time::to_proto(Utc::now() - Duration::days(days_ago) - Duration::hours(1))),
        outcome: pb::ReadingOutcome::Read as i32,
        base_reading: 0,
        cumulative_volume: volume,
        ..Default::default()
    }
}

pub(crate) async fn send(client: &mut Client, batches: Vec<Vec<pb::MeterReading>>) -> pb::RecordReadingsResponse {
    let reqs: Vec<pb::RecordReadingsRequest> =
        batches.into_iter().map(|readings| pb::RecordReadingsRequest { readings }).collect();
    client.record_readings(tokio_stream::iter(reqs)).await.expect("stream").into_inner()
}

#[tokio::test]
async fn routes_plan_commercial_reads_on_the_22nd_and_23rd() {
    let app = App::new().await;
    let r = route(&app, "朝阳商业", pb::RouteSchedule::CommercialMonthly).await;
    let windows = app
        .client(&[Role::MeterReader], "mr")
        .await
        .get_route_schedule(pb::GetRouteScheduleRequest { route_id: r.id.clone(), year: 2026 })
        .await
        .unwrap()
        .into_inner()
        .windows;
    assert_eq!(windows.len(), 12);
    assert_eq!(windows[10].period, "2026-11");
    assert_eq!((windows[10].first_day.unwrap().day, windows[10].last_day.unwrap().day), (22, 23));
    let q = route(&app, "户内", pb::RouteSchedule::ResidentialIndoorQuarterly).await;
    let windows = app
        .dispatcher()
        .await
        .get_route_schedule(pb::GetRouteScheduleRequest { route_id: q.id, year: 2026 })
        .await
        .unwrap()
        .into_inner()
        .windows;
    assert_eq!(
        windows.iter().map(|w| w.period.as_str()).collect::<Vec<_>>(),
        ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    );
    let err = app
        .manager()
        .await
        .create_route(pb::CreateRouteRequest {
            request_id: rid(),
            route: Some(pb::Route { name: "x".into(), ..Default::default() }),
        })
        .await
        .expect_err("schedule");
    assert_invalid(&err, "route.schedule");
}

#[tokio::test]
async fn meters_are_registered_once_for_served_customers() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let r = route(&app, "r1", pb::RouteSchedule::ResidentialMonthly).await;
    let m = register(&app, meter(&cust, &r.id, "G-001")).await;
    assert_eq!(m.number, "G-001");
    let mut d = app.dispatcher().await;
    let dup =
        d.register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(meter(&cust, &r.id, "G-001")) });
    assert_eq!(dup.await.expect_err("dup").code(), Code::AlreadyExists);
    let mut bad = meter(&cust, &r.id, "G-002");
    bad.kind = 0;
    bad.site_address = String::new();
    let err =
        d.register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(bad) }).await.expect_err("bad");
    assert_invalid(&err, "meter.kind");
    assert_invalid(&err, "meter.site_address");
    let mut no_class = meter(&cust, &r.id, "G-004");
    no_class.meter_class = 0;
    let err = d.register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(no_class) }).await;
    assert_invalid(&err.expect_err("class"), "meter.meter_class");
    // Issue 14 (DSP-7): a route reads meters of its class only.
    let commercial = meter(&cust, &r.id, "G-005");
    let commercial = pb::Meter { meter_class: pb::MeterClass::Commercial as i32, ..commercial };
    let err = d.register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(commercial) }).await;
    let err = err.expect_err("class mismatch");
    assert_eq!((err.code(), crate::helpers::reason(&err).as_str()), (Code::FailedPrecondition, "METER_CLASS_MISMATCH"));
    let unknown_route = meter(&cust, &uuid::Uuid::now_v7().to_string(), "G-003");
    let err = d.register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(unknown_route) }).await;
    assert_eq!(err.expect_err("route").code(), Code::NotFound);
    assert_eq!(app.count("meters").await, 1);
    let listed = d
        .list_meters(pb::ListMetersRequest { route_id: r.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .meters;
    assert_eq!(listed, [m]);
}

#[tokio::test]
async fn bulk_readings_accept_or_reject_each_reading_and_resend_safely() {
    let app = App::new().await;
    let cust = app.customer("乙", None).await;
    let r = route(&app, "r2", pb::RouteSchedule::ResidentialMonthly).await;
    for n in ["M-1", "M-2", "M-3", "M-4"] {
        register(&app, meter(&cust, &r.id, n)).await;
    }
    let mut prepaid = meter(&cust, &r.id, "P-1");
    prepaid.prepaid = true;
    register(&app, prepaid).await;
    let mut reader = app.client(&[Role::MeterReader], "reader-1").await;
    let mut estimated = read("M-3", 0, 10);
    estimated.outcome = pb::ReadingOutcome::Estimated as i32;
    let mut missed = read("M-4", 0, 0);
    missed.outcome = pb::ReadingOutcome::Missed as i32;
    missed.missed_reason = "用户不在家".into();
    let mut no_reason = read("M-4", 0, 0);
    no_reason.outcome = pb::ReadingOutcome::Missed as i32;
    let mut balance = read("P-1", 0, 40);
    balance.balance = Some(crate::helpers::cny(12_345));
    let first = vec![read("M-1", 0, 1_000), read("M-2", 0, 2_000), read("NOPE", 0, 1), estimated, missed];
    let second = vec![read("M-1", 0, 1_100), no_reason, balance, read("P-1", 0, 50)];
    let batches = vec![first, second];
    let resp = send(&mut reader, batches.clone()).await;
    assert_eq!(resp.accepted, 4, "{resp:?}");
    let reasons: Vec<(i64, &str)> = resp.rejected.iter().map(|r| (r.index, r.reason.as_str())).collect();
    assert_eq!(
        reasons,
        [
            (2, "UNKNOWN_METER"),
            (3, "ESTIMATE_NOT_ALLOWED"),
            (5, "ALREADY_READ_IN_PERIOD"),
            (6, "ALREADY_READ_IN_PERIOD"),
            (8, "ALREADY_READ_IN_PERIOD"),
        ]
    );
    assert_eq!(app.count("meter_readings").await, 4);
    // Billing hears of the three read readings (not the miss).
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM dispatch.outbox ORDER BY seq").fetch_all(&app.pool).await.unwrap();
    assert_eq!(kinds, ["meter.read"; 3]);
    let billed: Vec<(String, i64, i64, String)> = app
        .outbox("meter.read")
        .await
        .into_iter()
        .map(|(_, p)| match p {
            Payload::MeterRead(m) => (m.meter_number, m.reading_litres, m.consumption_litres, m.customer_id),
            other => panic!("{other:?}"),
        })
        .collect();
    let c = || cust.clone();
    assert_eq!(billed, [("M-1".into(), 1_000, 0, c()), ("M-2".into(), 2_000, 0, c()), ("P-1".into(), 40, 0, c())]);
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT balance_minor FROM dispatch.meter_readings WHERE balance_minor IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, Some(12_345));
    // The same stream again: acknowledged, nothing written twice.
    let again = send(&mut reader, batches).await;
    assert_eq!(again.accepted, 4);
    assert_eq!(app.count("meter_readings").await, 4);
    assert_eq!(app.count("outbox").await, 3);
    // Missed without a reason, readings going backwards.
    let r2 = route(&app, "r3", pb::RouteSchedule::ResidentialMonthly).await;
    register(&app, meter(&cust, &r2.id, "B-1")).await;
    let mut no_reason = read("B-1", 0, 0);
    no_reason.outcome = pb::ReadingOutcome::Missed as i32;
    let resp = send(&mut reader, vec![vec![read("B-1", 40, 500), read("B-1", 0, 400), no_reason]]).await;
    let reasons: Vec<&str> = resp.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["BACKWARDS_READING", "INVALID"]);
    // Finance does not send readings.
    let mut fin = app.client(&[Role::Finance], "fin").await;
    let err = fin.record_readings(tokio_stream::iter(vec![pb::RecordReadingsRequest::default()])).await;
    assert_eq!(err.expect_err("finance").code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_dead_meter_raises_a_repair_order() {
    let app = App::new().await;
    let cust = app.customer("丙", None).await;
    let r = route(&app, "r4", pb::RouteSchedule::ResidentialMonthly).await;
    register(&app, meter(&cust, &r.id, "D-1")).await;
    register(&app, meter(&cust, &r.id, "OK-1")).await;
    let mut reader = app.client(&[Role::MeterReader], "reader-2").await;
    let resp = send(
        &mut reader,
        vec![vec![
            read("D-1", 80, 1_000),
            read("D-1", 40, 1_400),
            read("D-1", 0, 1_400),
            read("OK-1", 80, 1_000),
            read("OK-1", 40, 1_400),
            read("OK-1", 0, 1_800),
        ]],
    )
    .await;
    assert_eq!(resp.accepted, 6, "{resp:?}");
    assert_eq!(resp.repair_work_order_ids.len(), 1);
    let w = app.get(&resp.repair_work_order_ids[0]).await;
    assert_eq!(w.kind, pb::WorkOrderKind::Repair as i32);
    assert_eq!(w.state, pb::WorkOrderState::Draft as i32);
    assert_eq!(w.created_by, "system:meter-reading");
    assert_eq!(w.repair.as_ref().unwrap().device_serial, "D-1");
    assert!(w.repair.as_ref().unwrap().fault.contains("dead"), "{:?}", w.repair);
    let flagged: Vec<String> =
        sqlx::query_scalar("SELECT anomaly FROM dispatch.meter_readings WHERE anomaly IS NOT NULL")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(flagged, ["dead"]);
}

#[tokio::test]
async fn read_rates_are_reported_against_the_target() {
    let app = App::new().await;
    let cust = app.customer("丁", None).await;
    let r = route(&app, "r5", pb::RouteSchedule::ResidentialMonthly).await;
    for n in ["R-1", "R-2", "R-3"] {
        register(&app, meter(&cust, &r.id, n)).await;
    }
    let mut missed = read("R-3", 0, 0);
    missed.outcome = pb::ReadingOutcome::Missed as i32;
    missed.missed_reason = "门锁".into();
    let mut reader = app.client(&[Role::MeterReader], "reader-3").await;
    send(&mut reader, vec![vec![read("R-1", 0, 10), read("R-2", 0, 20), missed]]).await;
    let period: String =
        sqlx::query_scalar("SELECT period FROM dispatch.meter_readings LIMIT 1").fetch_one(&app.pool).await.unwrap();
    let mut m = app.manager().await;
    let rates = m
        .get_read_rate(pb::GetReadRateRequest { period: period.clone(), route_id: r.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert_eq!(rates.len(), 1);
    let x = &rates[0];
    assert_eq!((x.planned, x.read, x.missed), (3, 2, 1));
    assert_eq!((x.rate_bp, x.target_bp, x.target_met), (6_666, 9_800, false));
    let err = m.get_read_rate(pb::GetReadRateRequest { period: "2026-Q4".into(), route_id: r.id.clone() }).await;
    assert_invalid(&err.expect_err("quarter on a monthly route"), "period");
    let err = m.get_read_rate(pb::GetReadRateRequest { period: "last month".into(), route_id: String::new() }).await;
    assert_invalid(&err.expect_err("garbage"), "period");
}

#[tokio::test]
async fn a_replaced_or_rolled_over_register_may_go_down_and_never_consumes_negatively() {
    let app = App::new().await;
    let cust = app.customer("丁", None).await;
    let r = route(&app, "r9", pb::RouteSchedule::ResidentialMonthly).await;
    register(&app, meter(&cust, &r.id, "R-1")).await;
    register(&app, meter(&cust, &r.id, "W-1")).await;
    let mut reader = app.client(&[Role::MeterReader], "reader-9").await;
    send(&mut reader, vec![vec![read("R-1", 40, 5_000), read("W-1", 40, 99_000)]]).await;
    // R-1 was replaced: the old register read 5 600 when it came out; the new
    // one started at 20 and reads 320. W-1's 99 999 L register wrapped to 300.
    let mut replaced = read("R-1", 0, 320);
    replaced.base_reading = 20;
    replaced.register_change = pb::RegisterChange::MeterReplaced as i32;
    replaced.old_meter_final_volume = 5_600;
    let mut rolled = read("W-1", 0, 300);
    rolled.register_change = pb::RegisterChange::RolledOver as i32;
    rolled.register_max_volume = 99_999;
    let resp = send(&mut reader, vec![vec![replaced, rolled]]).await;
    assert_eq!((resp.accepted, resp.rejected.len()), (2, 0), "{resp:?}");
    let rows: Vec<(Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT r.consumption, r.register_change FROM dispatch.meter_readings r JOIN dispatch.meters m ON m.id = r.meter_id \
         WHERE r.register_change IS NOT NULL ORDER BY m.number",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(Some(600 + 300), Some("meter_replaced".into())), (Some(999 + 300), Some("rolled_over".into()))]
    );
}

/// Issue 14 (DSP-7): a commercial meter read off the 22nd–23rd is accepted
/// but flagged, and the read-rate report counts it.
#[tokio::test]
async fn commercial_readings_outside_their_window_are_flagged_and_counted() {
    use chrono::{Datelike, TimeZone};
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let r = route(&app, "商业一线", pb::RouteSchedule::CommercialMonthly).await;
    let commercial = |n: &str| pb::Meter { meter_class: pb::MeterClass::Commercial as i32, ..meter(&cust, &r.id, n) };
    register(&app, commercial("C-1")).await;
    register(&app, commercial("C-2")).await;
    // Last month, noon in Shanghai: the 10th (outside) and the 22nd (inside).
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let last_month = (today.with_day(1).unwrap() - Duration::days(1)).with_day(1).unwrap();
    let noon = |day: u32| {
        let local = last_month.with_day(day).unwrap().and_hms_opt(12, 0, 0).unwrap();
        chrono_tz::Asia::Shanghai.from_local_datetime(&local).single().unwrap().with_timezone(&Utc)
    };
    let at =
        |n: &str, day: u32| pb::MeterReading { read_at: Some(proto_time::to_proto(noon(day))), ..read(n, 0, 1_000) };
    let mut reader = app.client(&[Role::MeterReader], "reader-c").await;
    let resp = send(&mut reader, vec![vec![at("C-1", 10), at("C-2", 22)]]).await;
    assert_eq!((resp.accepted, resp.outside_window, resp.rejected_count), (2, 1, 0), "{resp:?}");
    let flagged: Vec<(String, bool)> = sqlx::query_as(
        "SELECT m.number, r.outside_window FROM dispatch.meter_readings r JOIN dispatch.meters m ON m.id = r.meter_id \
         ORDER BY m.number",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(flagged, vec![("C-1".to_string(), true), ("C-2".to_string(), false)]);
    let period = format!("{}-{:02}", last_month.year(), last_month.month());
    let rates = app
        .manager()
        .await
        .get_read_rate(pb::GetReadRateRequest { period, route_id: r.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert_eq!((rates[0].read, rates[0].outside_window), (2, 1));
}

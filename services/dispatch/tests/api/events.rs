//! over gRPC: what dispatch writes into its outbox (protobuf
//! payloads, in the transaction of the change) and its part of a customer's
//! termination (CUS-11) applied exactly once from the customers' feed.

use chrono::Utc;
use crm_events::{Outcome, Payload, pb as ev};
use crm_platform::proto_time;
use crm_proto::dispatch::v1 as pb;
use crm_testkit::HandFeed;
use uuid::Uuid;

use crate::helpers::{App, assert_rule, checklist, maintenance, rid};

/// The service's consumers over the test database, fed by hand.
fn feed(app: &App) -> HandFeed {
    let feed = HandFeed::new("dispatch", app.pool.clone(), crm_dispatch::events::subscriptions);
    assert_eq!(feed.subscription("customers").types, ["customer.termination_started", "customer.merged"]);
    feed
}

/// customer.termination_started as the customers' feed would carry it.
fn termination_started(seq: i64, saga: Uuid, customer_id: &str) -> ev::Event {
    let started = ev::TerminationStarted {
        saga_id: saga.to_string(),
        customer_id: customer_id.into(),
        reason: "stopped_buying".into(),
    };
    crm_testkit::event("customers", &saga.to_string(), seq, Payload::TerminationStarted(started))
}

#[tokio::test]
async fn approval_and_cancellation_are_published_with_the_change() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let repair = app.approved_repair(&cust).await;
    let upkeep = app.approved_maintenance(&cust).await;
    let approved: Vec<(Uuid, Payload)> = app.outbox("work_order.approved").await;
    let want = |w: &pb::WorkOrder, kind: &str, by: &str| {
        (
            Uuid::parse_str(&w.id).unwrap(),
            Payload::WorkOrderApproved(ev::WorkOrderApproved {
                work_order_id: w.id.clone(),
                customer_id: cust.clone(),
                kind: kind.into(),
                approved_by: by.into(),
            }),
        )
    };
    assert_eq!(approved, [want(&repair, "repair", "mgr-1"), want(&upkeep, "maintenance", "disp-1")]);

    let cancel = pb::CancelWorkOrderRequest {
        request_id: rid(),
        id: upkeep.id.clone(),
        etag: String::new(),
        reason: "客户取消".into(),
    };
    let mut m = app.manager().await;
    m.cancel_work_order(cancel.clone()).await.unwrap();
    m.cancel_work_order(cancel).await.unwrap();
    let cancelled = app.outbox("work_order.cancelled").await;
    assert_eq!(
        cancelled,
        [(
            Uuid::parse_str(&upkeep.id).unwrap(),
            Payload::WorkOrderCancelled(ev::WorkOrderCancelled {
                work_order_id: upkeep.id.clone(),
                customer_id: cust.clone(),
                reason: "客户取消".into(),
                saga_id: String::new(),
            })
        )],
        "a manual cancel carries no saga; its retry adds nothing"
    );
    // A refused cancellation publishes nothing.
    let err = m
        .cancel_work_order(pb::CancelWorkOrderRequest {
            request_id: rid(),
            id: upkeep.id.clone(),
            etag: String::new(),
            reason: "again".into(),
        })
        .await
        .expect_err("cancelled already");
    assert_rule(&err, "WORK_ORDER_CANCELLED");
    assert_eq!(app.outbox("work_order.cancelled").await.len(), 1);
}

#[tokio::test]
async fn meter_readings_are_published_with_register_changes_for_billing() {
    let app = App::new().await;
    let cust = app.customer("乙", None).await;
    let mut d = app.manager().await;
    let route = d
        .create_route(pb::CreateRouteRequest {
            request_id: rid(),
            route: Some(pb::Route {
                name: "r-ev".into(),
                schedule: pb::RouteSchedule::ResidentialMonthly as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .route
        .unwrap();
    let mut meters = vec![];
    for number in ["R-1", "W-1"] {
        let m = app
            .dispatcher()
            .await
            .register_meter(pb::RegisterMeterRequest {
                request_id: rid(),
                meter: Some(pb::Meter {
                    customer_id: cust.clone(),
                    route_id: route.id.clone(),
                    number: number.into(),
                    kind: pb::MeterKind::Water as i32,
                    installed_on: Some(crate::helpers::date(chrono::NaiveDate::from_ymd_opt(2019, 5, 1).unwrap())),
                    flow_direction: pb::FlowDirection::Forward as i32,
                    site_address: "北京市海淀区 8 号".into(),
                    meter_class: pb::MeterClass::Residential as i32,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .meter
            .unwrap();
        meters.push(m);
    }
    let read = |number: &str, days_ago: i64, volume: i64| pb::MeterReading {
        reading_id: rid(),
        meter_number: number.into(),
        read_at: Some(proto_time::to_proto(Utc::now() - chrono::Duration::days(days_ago) - chrono::Duration::hours(1))),
        outcome: pb::ReadingOutcome::Read as i32,
        cumulative_volume: volume,
        ..Default::default()
    };
    let mut missed = read("R-1", 0, 0);
    missed.outcome = pb::ReadingOutcome::Missed as i32;
    missed.missed_reason = "门锁".into();
    let mut replaced = read("R-1", 0, 320);
    replaced.base_reading = 20;
    replaced.register_change = pb::RegisterChange::MeterReplaced as i32;
    replaced.old_meter_final_volume = 5_600;
    let mut rolled = read("W-1", 0, 300);
    rolled.register_change = pb::RegisterChange::RolledOver as i32;
    rolled.register_max_volume = 99_999;
    let first = vec![read("R-1", 40, 5_000), read("W-1", 40, 99_000)];
    let reqs = vec![
        pb::RecordReadingsRequest { readings: first },
        pb::RecordReadingsRequest { readings: vec![replaced.clone(), rolled.clone()] },
    ];
    let mut reader = app.client(&[crm_testkit::Role::MeterReader], "reader-ev").await;
    let resp = reader.record_readings(tokio_stream::iter(reqs)).await.unwrap().into_inner();
    assert_eq!((resp.accepted, resp.rejected.len()), (4, 0), "{resp:?}");
    let events = app.outbox("meter.read").await;
    assert_eq!(events.len(), 4);
    let later: Vec<ev::MeterRead> = events
        .into_iter()
        .skip(2)
        .map(|(aggregate, p)| match p {
            Payload::MeterRead(m) => {
                assert_eq!(aggregate.to_string(), m.reading_id, "the event is about the reading");
                m
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let (r, w) = (&later[0], &later[1]);
    assert_eq!((r.reading_id.as_str(), r.meter_id.as_str()), (replaced.reading_id.as_str(), meters[0].id.as_str()));
    assert_eq!((r.meter_number.as_str(), r.customer_id.as_str()), ("R-1", cust.as_str()));
    assert_eq!((r.reading_litres, r.consumption_litres), (320, 600 + 300));
    assert_eq!(
        (r.meter_replaced, r.old_meter_final_litres, r.rolled_over, r.meter_max_litres),
        (true, 5_600, false, 0)
    );
    assert_eq!(r.period, Utc::now().format("%Y-%m").to_string());
    assert!(r.read_at.is_some() && r.anomaly.is_empty());
    assert_eq!((w.reading_litres, w.consumption_litres), (300, 999 + 300));
    assert_eq!((w.meter_replaced, w.rolled_over, w.meter_max_litres), (false, true, 99_999));
    // A missed reading bills nothing and is not published.
    let resp = reader
        .record_readings(tokio_stream::iter(vec![pb::RecordReadingsRequest { readings: vec![missed] }]))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.rejected.iter().all(|r| r.reason == "ALREADY_READ_IN_PERIOD"), "{resp:?}");
    assert_eq!(app.outbox("meter.read").await.len(), 4);
}

/// An order of `customer_id` in each open state, plus finished ones; returns
/// (open order ids, completed id, cancelled id).
async fn orders_in_every_state(app: &App, customer_id: &str, tech: &pb::Technician) -> (Vec<String>, String, String) {
    let draft = app.create(maintenance(customer_id)).await;
    let pending = app.create(crate::helpers::repair(customer_id)).await;
    let pending = app
        .dispatcher()
        .await
        .submit_work_order(pb::SubmitWorkOrderRequest { request_id: rid(), id: pending.id, etag: String::new() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    let approved = app.approved_repair(customer_id).await;
    let assigned = app.assign(&app.approved_maintenance(customer_id).await, &tech.id).await;
    let en_route = app.assign(&app.approved_maintenance(customer_id).await, &tech.id).await;
    let mut t = app.tech(&tech.user_sub).await;
    t.confirm_checklist(pb::ConfirmChecklistRequest {
        request_id: rid(),
        id: en_route.id.clone(),
        etag: String::new(),
        checklist: Some(checklist()),
    })
    .await
    .unwrap();
    t.start_travel(pb::StartTravelRequest { request_id: rid(), id: en_route.id.clone(), etag: String::new() })
        .await
        .unwrap();
    let on_site = app.on_site(&app.approved_maintenance(customer_id).await, &tech.id, &tech.user_sub).await;
    let done = app.on_site(&app.approved_maintenance(customer_id).await, &tech.id, &tech.user_sub).await;
    // Paid work: the termination report lists it for billing.
    app.part("FLT", 12_000).await;
    t.complete_work_order(pb::CompleteWorkOrderRequest {
        request_id: rid(),
        id: done.id.clone(),
        etag: String::new(),
        work_done: "保养完成".into(),
        signed_off_by: "王经理".into(),
        parts: vec![pb::PartUsed { part_code: "FLT".into(), quantity: 1 }],
        ..Default::default()
    })
    .await
    .unwrap();
    let gone = app.create(maintenance(customer_id)).await;
    app.manager()
        .await
        .cancel_work_order(pb::CancelWorkOrderRequest {
            request_id: rid(),
            id: gone.id.clone(),
            etag: String::new(),
            reason: "重复".into(),
        })
        .await
        .unwrap();
    let open = [draft, pending, approved, assigned, en_route, on_site].into_iter().map(|w| w.id).collect();
    (open, done.id, gone.id)
}

async fn booked(app: &App) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(sum(booked), 0)::bigint FROM dispatch.technician_days")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_started_termination_cancels_every_open_order_once_and_reports_done() {
    let app = App::new().await;
    let cust = app.customer("丙", None).await;
    let other = app.customer("丁", None).await;
    let tech = app.technician("t-ev", &["gps"], "north", 10).await;
    let (open, completed, cancelled) = orders_in_every_state(&app, &cust, &tech).await;
    let bystander = app.approved_maintenance(&other).await;
    // assigned, en route, on site (and the completed one) hold a slot each.
    assert_eq!(booked(&app).await, 4);
    let cancelled_before = app.outbox("work_order.cancelled").await.len();

    let feed = feed(&app);
    let saga = Uuid::now_v7();
    let event = termination_started(1, saga, &cust);
    assert_eq!(feed.deliver(&event).await, Outcome::Applied);

    for id in &open {
        let w = app.get(id).await;
        assert_eq!(w.state, pb::WorkOrderState::Cancelled as i32, "{id}");
        assert_eq!(w.cancel_reason, "customer terminated");
        let last = w.history.last().unwrap();
        assert_eq!((last.action.as_str(), last.actor.as_str()), ("cancelled", "system:customer-termination"));
        assert_eq!((last.to_state, last.note.as_str()), (pb::WorkOrderState::Cancelled as i32, "customer terminated"));
    }
    assert_eq!(app.get(&completed).await.state, pb::WorkOrderState::Completed as i32);
    assert_eq!(app.get(&cancelled).await.cancel_reason, "重复");
    assert_eq!(app.get(&bystander.id).await.state, pb::WorkOrderState::Approved as i32);
    // The technician's day got the three cancelled jobs' slots back.
    assert_eq!(booked(&app).await, 1);

    let published = app.outbox("work_order.cancelled").await;
    let by_saga: Vec<String> = published
        .iter()
        .skip(cancelled_before)
        .map(|(_, p)| match p {
            Payload::WorkOrderCancelled(c) => {
                assert_eq!((c.customer_id.as_str(), c.reason.as_str()), (cust.as_str(), "customer terminated"));
                assert_eq!(c.saga_id, saga.to_string());
                c.work_order_id.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let mut want = open.clone();
    want.sort();
    assert_eq!(by_saga, want);
    let reports = app.outbox("termination.step_reported").await;
    let done = ev::TerminationStepReported {
        saga_id: saga.to_string(),
        customer_id: cust.clone(),
        participant: "dispatch".into(),
        outcome: ev::TerminationStepOutcome::Done as i32,
        reason: String::new(),
        code: String::new(),
        // The completed order with an amount due, for billing to wait on.
        billable_work_order_ids: vec![completed.clone()],
    };
    assert_eq!(reports, [(saga, Payload::TerminationStepReported(done))]);

    // Delivered again (at least once): nothing changes.
    let history: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dispatch.work_order_history").fetch_one(&app.pool).await.unwrap();
    assert_eq!(feed.deliver(&event).await, Outcome::Duplicate);
    assert_eq!(app.outbox("work_order.cancelled").await.len(), published.len());
    assert_eq!(app.outbox("termination.step_reported").await.len(), 1);
    let again: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dispatch.work_order_history").fetch_one(&app.pool).await.unwrap();
    assert_eq!(again, history);

    // No new work is taken for the customer; the other customer is served.
    let err = app.dispatcher().await.create_work_order(maintenance(&cust)).await.expect_err("terminating");
    assert_rule(&err, "CUSTOMER_TERMINATED");
    app.create(maintenance(&other)).await;
}

#[tokio::test]
async fn a_customer_without_open_work_is_reported_done_and_a_bad_event_is_parked() {
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let feed = feed(&app);
    let saga = Uuid::now_v7();
    assert_eq!(feed.deliver(&termination_started(7, saga, &cust)).await, Outcome::Applied);
    let reports = app.outbox("termination.step_reported").await;
    assert_eq!(reports.len(), 1);
    assert!(app.outbox("work_order.cancelled").await.is_empty());

    // A payload naming no customer can never apply: parked, visible, and
    // nothing of it is kept.
    let bad = termination_started(8, Uuid::now_v7(), "not-a-uuid");
    assert_eq!(feed.deliver(&bad).await, Outcome::Parked);
    let parked = feed.consumers().parked(false, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].error.contains("customer_id"), "{}", parked[0].error);
    assert_eq!(app.outbox("termination.step_reported").await.len(), 1);
}

#[tokio::test]
async fn a_terminating_customer_gets_no_new_meter_and_no_repair_order() {
    use crate::metering::{meter, read, register, route, send};
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let r = route(&app, "r-term", pb::RouteSchedule::ResidentialMonthly).await;
    register(&app, meter(&cust, &r.id, "D-9")).await;
    let mut reader = app.client(&[crm_testkit::Role::MeterReader], "reader-9").await;
    send(&mut reader, vec![vec![read("D-9", 80, 1_000), read("D-9", 40, 1_400)]]).await;

    let feed = feed(&app);
    let event = termination_started(1, Uuid::now_v7(), &cust);
    assert_eq!(feed.deliver(&event).await, Outcome::Applied);

    // A dead meter's final reading still counts (billing needs it), but it
    // raises no repair order for a customer on the way out.
    let resp = send(&mut reader, vec![vec![read("D-9", 0, 1_400)]]).await;
    assert_eq!(resp.accepted, 1, "{resp:?}");
    assert!(resp.repair_work_order_ids.is_empty());
    let flagged: Vec<String> =
        sqlx::query_scalar("SELECT anomaly FROM dispatch.meter_readings WHERE anomaly IS NOT NULL")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(flagged, ["dead"]);
    // No new meter either.
    let meters = app.count("meters").await;
    let err = app
        .dispatcher()
        .await
        .register_meter(pb::RegisterMeterRequest { request_id: rid(), meter: Some(meter(&cust, &r.id, "N-1")) })
        .await
        .expect_err("terminating");
    assert_rule(&err, "CUSTOMER_TERMINATED");
    assert_eq!(app.count("meters").await, meters);
}

/// CUS-2: customer.merged moves the merged-away customer's work orders and
/// devices to the survivor, once; a work order created afterwards with the
/// merged id is the survivor's.
#[tokio::test]
async fn a_merge_moves_work_orders_and_devices_to_the_survivor_once() {
    let app = App::new().await;
    let feed = feed(&app);
    let survivor = app.customer("乙", None).await;
    let merged = app.customer("乙公司", None).await;
    let w = app.create(maintenance(&merged)).await;
    let d = app.device(&merged, "SN-MERGE-1", "SIM-MERGE-1", crate::helpers::working_day()).await;
    let event = feed.event(
        "customers",
        &merged,
        Payload::CustomersMerged(ev::CustomersMerged {
            survivor_id: survivor.clone(),
            merged_id: merged.clone(),
            merged_by: "mgr".into(),
            reason: "重复".into(),
        }),
    );
    assert_eq!(feed.deliver(&event).await, Outcome::Applied);
    let moved = app.get(&w.id).await;
    assert_eq!(moved.customer_id, survivor);
    assert_eq!(feed.deliver(&event).await, Outcome::Duplicate);
    assert_eq!(app.get(&w.id).await.etag, moved.etag, "applied once");
    let devices: Vec<String> = sqlx::query_scalar("SELECT customer_id::text FROM dispatch.devices WHERE id = $1::uuid")
        .bind(&d.id)
        .fetch_all(&app.pool)
        .await
        .expect("device");
    assert_eq!(devices, vec![survivor.clone()]);
    // An id that arrives after the merge lands on the survivor.
    let late = app.create(maintenance(&merged)).await;
    assert_eq!(late.customer_id, survivor);
}

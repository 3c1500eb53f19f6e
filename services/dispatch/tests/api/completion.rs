//! DSP-5/DSP-6 over gRPC: completion with parts priced from the catalogue,
//! warranty deciding what is due, terminal and SIM swaps updating the
//! registry with history in the same transaction, the outbox event, cash
//! collected on site and its hand-over to finance.

use chrono::{Days, NaiveDate, Utc};
use crm_events::{Outcome, Payload};
use crm_proto::dispatch::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, assert_invalid, assert_rule, catalogue_item, cny, reason, rid};

fn completion(w: &pb::WorkOrder) -> pb::CompleteWorkOrderRequest {
    pb::CompleteWorkOrderRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: w.etag.clone(),
        work_done: "更换终端和 SIM 卡".into(),
        signed_off_by: "王经理".into(),
        ..Default::default()
    }
}

fn swap(old: &str, new: &str) -> Option<pb::NumberSwap> {
    Some(pb::NumberSwap { old_number: old.into(), new_number: new.into() })
}

fn used(code: &str, quantity: i32) -> pb::PartUsed {
    pb::PartUsed { part_code: code.into(), quantity }
}

#[tokio::test]
async fn out_of_warranty_the_customer_pays_parts_only_and_swaps_are_recorded() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let tech = app.technician("t-a", &["gps"], "north", 3).await;
    let expired = Utc::now().date_naive() - Days::new(30);
    let dev = app.device(&cust, "T-OLD", "SIM-OLD", expired).await;
    app.part("GT06", 35_000).await;
    app.part("SIM", 2_050).await;
    let w = app.approved_repair(&cust).await;
    let w = app.on_site(&w, &tech.id, "t-a").await;
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.parts = vec![used("gt06", 1), used("SIM", 2)];
    req.terminal_swap = swap("T-OLD", "T-NEW");
    req.sim_swap = swap("SIM-OLD", "SIM-NEW");
    req.swap_reason = "终端损坏".into();
    req.payment_collected = Some(cny(39_100));
    let mut t = app.tech("t-a").await;
    let done = t.complete_work_order(req.clone()).await.unwrap().into_inner().work_order.unwrap();
    assert_eq!(done.state, pb::WorkOrderState::Completed as i32);
    assert!(!done.in_warranty);
    assert_eq!(done.device_id, dev.id);
    // 1 × 350.00 + 2 × 20.50, no labour.
    assert_eq!(done.amount_due, Some(cny(39_100)));
    assert_eq!(done.payment_collected, Some(cny(39_100)));
    let lines: Vec<(&str, i32, i64)> = done
        .parts
        .iter()
        .map(|l| (l.part_code.as_str(), l.quantity, l.line_total.as_ref().unwrap().amount_minor))
        .collect();
    assert_eq!(lines, [("GT06", 1, 35_000), ("SIM", 2, 4_100)]);
    // The registry moved with the order, and kept both swaps.
    let d = app
        .dispatcher()
        .await
        .get_device(pb::GetDeviceRequest { id: dev.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .device
        .unwrap();
    assert_eq!((d.serial_number.as_str(), d.sim_number.as_str()), ("T-NEW", "SIM-NEW"));
    let swaps: Vec<(i32, &str, &str, &str, &str)> = d
        .swaps
        .iter()
        .map(|s| {
            (s.kind, s.old_number.as_str(), s.new_number.as_str(), s.swapped_by.as_str(), s.work_order_id.as_str())
        })
        .collect();
    assert_eq!(
        swaps,
        [
            (pb::SwapKind::Terminal as i32, "T-OLD", "T-NEW", "t-a", w.id.as_str()),
            (pb::SwapKind::Sim as i32, "SIM-OLD", "SIM-NEW", "t-a", w.id.as_str()),
        ]
    );
    assert!(d.swaps.iter().all(|s| s.reason == "终端损坏" && s.swapped_at.is_some()));
    // one event for billing, written with the change; a retry adds none.
    let again = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
    assert_eq!(again, done);
    let events = app.outbox("work_order.completed").await;
    assert_eq!(events.len(), 1);
    let (aggregate, Payload::WorkOrderCompleted(e)) = &events[0] else { panic!("{events:?}") };
    assert_eq!(aggregate.to_string(), w.id);
    assert_eq!((e.work_order_id.as_str(), e.customer_id.as_str()), (w.id.as_str(), cust.as_str()));
    assert_eq!((e.technician_id.as_str(), e.device_id.as_str()), (tech.id.as_str(), dev.id.as_str()));
    assert_eq!((e.kind.as_str(), e.completed_by.as_str(), e.in_warranty), ("repair", "t-a", false));
    assert_eq!(e.amount_due, Some(cny(39_100)));
    assert_eq!(e.collected_on_site, Some(cny(39_100)));
    let parts: Vec<(&str, i32, Option<_>)> =
        e.parts.iter().map(|p| (p.part_code.as_str(), p.quantity, p.unit_price.clone())).collect();
    assert_eq!(parts, [("GT06", 1, Some(cny(35_000))), ("SIM", 2, Some(cny(2_050)))]);
    assert_eq!(app.count("device_swaps").await, 2);
    assert_eq!(app.count("cash_collections").await, 1);
}

#[tokio::test]
async fn in_warranty_work_is_free_and_nothing_may_be_collected() {
    let app = App::new().await;
    let cust = app.customer("乙", None).await;
    let tech = app.technician("t-b", &["gps"], "north", 3).await;
    let covered = Utc::now().date_naive() + Days::new(30);
    let dev = app.device(&cust, "T-1", "", covered).await;
    app.part("GT06", 35_000).await;
    let w = app.on_site(&app.approved_repair(&cust).await, &tech.id, "t-b").await;
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.parts = vec![used("GT06", 1)];
    req.payment_collected = Some(cny(100));
    let mut t = app.tech("t-b").await;
    assert_invalid(&t.complete_work_order(req.clone()).await.expect_err("charged"), "payment_collected");
    req.payment_collected = None;
    let done = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
    assert!(done.in_warranty);
    assert_eq!(done.amount_due, Some(cny(0)));
    assert_eq!(done.parts.len(), 1);
    assert_eq!(app.count("cash_collections").await, 0);
}

#[tokio::test]
async fn a_bad_completion_changes_nothing() {
    let app = App::new().await;
    let cust = app.customer("丙", None).await;
    let other = app.customer("丁", None).await;
    let tech = app.technician("t-c", &["gps"], "north", 3).await;
    let dev = app.device(&cust, "T-1", "S-1", NaiveDate::from_ymd_opt(2025, 1, 10).unwrap()).await;
    let foreign = app.device(&other, "T-2", "S-2", NaiveDate::from_ymd_opt(2030, 1, 1).unwrap()).await;
    app.part("GT06", 35_000).await;
    let w = app.on_site(&app.approved_repair(&cust).await, &tech.id, "t-c").await;
    let mut t = app.tech("t-c").await;
    // Wrong old number: the registry is the truth.
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.terminal_swap = swap("T-9", "T-NEW");
    req.swap_reason = "坏了".into();
    assert_rule(&t.complete_work_order(req).await.expect_err("mismatch"), "DEVICE_NUMBER_MISMATCH");
    // A new terminal number already in use elsewhere.
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.terminal_swap = swap("T-1", "T-2");
    req.swap_reason = "坏了".into();
    assert_eq!(t.complete_work_order(req).await.expect_err("taken").code(), Code::AlreadyExists);
    // Another customer's device.
    let mut req = completion(&w);
    req.device_id = foreign.id.clone();
    assert_rule(&t.complete_work_order(req).await.expect_err("foreign"), "DEVICE_OF_ANOTHER_CUSTOMER");
    // Field errors: unknown part, swap without reason or device, overpayment.
    let mut req = completion(&w);
    req.parts = vec![used("NOPE", 1)];
    assert_invalid(&t.complete_work_order(req).await.expect_err("part"), "parts[0].part_code");
    let mut req = completion(&w);
    req.sim_swap = swap("S-1", "S-9");
    let err = t.complete_work_order(req).await.expect_err("swap");
    assert_invalid(&err, "device_id");
    assert_invalid(&err, "swap_reason");
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.parts = vec![used("GT06", 1)];
    req.payment_collected = Some(cny(35_001));
    assert_invalid(&t.complete_work_order(req).await.expect_err("over"), "payment_collected");
    let mut req = completion(&w);
    req.parts = vec![used("GT06", 0)];
    assert_invalid(&t.complete_work_order(req).await.expect_err("qty"), "parts[0].quantity");
    for minutes in [-1, 14_401] {
        let mut req = completion(&w);
        req.labour_minutes = minutes;
        assert_invalid(&t.complete_work_order(req).await.expect_err("labour"), "labour_minutes");
    }
    // Nothing moved.
    assert_eq!(app.get(&w.id).await.state, pb::WorkOrderState::OnSite as i32);
    for table in ["device_swaps", "work_order_parts", "cash_collections"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    assert!(app.outbox("work_order.completed").await.is_empty());
    let d = app.dispatcher().await.get_device(pb::GetDeviceRequest { id: dev.id.clone() }).await.unwrap();
    assert_eq!(d.into_inner().device.unwrap().serial_number, "T-1");
}

#[tokio::test]
async fn cash_is_handed_over_and_reconciled() {
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let tech = app.technician("t-d", &["gps"], "north", 5).await;
    app.part("GT06", 10_000).await;
    let mut t = app.tech("t-d").await;
    for collected in [10_000, 6_000] {
        let w = app.on_site(&app.approved_maintenance(&cust).await, &tech.id, "t-d").await;
        let mut req = completion(&w);
        req.parts = vec![used("GT06", 1)];
        req.payment_collected = Some(cny(collected));
        let done = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
        // Maintenance of no registered device: parts charged, no labour.
        assert_eq!(done.amount_due, Some(cny(10_000)));
    }
    let mut fin = app.client(&[Role::Finance], "fin-1").await;
    let open = fin
        .list_unreconciled_collections(pb::ListUnreconciledCollectionsRequest {
            technician_id: tech.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .collections;
    assert_eq!(open.iter().map(|c| c.amount.as_ref().unwrap().amount_minor).collect::<Vec<_>>(), [10_000, 6_000]);
    // Technicians do not see or settle the cash desk's side.
    let err = t
        .record_cash_handover(pb::RecordCashHandoverRequest {
            request_id: rid(),
            technician_id: tech.id.clone(),
            counted: Some(cny(16_000)),
            note: String::new(),
        })
        .await
        .expect_err("technician");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Short by 10.00 without a word: refused; with a note: kept as a difference.
    let short = |note: &str| pb::RecordCashHandoverRequest {
        request_id: rid(),
        technician_id: tech.id.clone(),
        counted: Some(cny(15_000)),
        note: note.into(),
    };
    assert_rule(&fin.record_cash_handover(short("")).await.expect_err("unexplained"), "DIFFERENCE_NEEDS_NOTE");
    let req = short("少 10 元，已登记");
    let h = fin.record_cash_handover(req.clone()).await.unwrap().into_inner().handover.unwrap();
    assert_eq!(h.expected, Some(cny(16_000)));
    assert_eq!(h.difference, Some(cny(-1_000)));
    assert!(!h.reconciled);
    assert_eq!(h.received_by, "fin-1");
    assert_eq!(h.collection_ids.len(), 2);
    // A retry is the same hand-over; nothing is left to hand over afterwards.
    assert_eq!(fin.record_cash_handover(req).await.unwrap().into_inner().handover.unwrap(), h);
    assert_eq!(app.count("cash_handovers").await, 1);
    let left = fin
        .list_unreconciled_collections(pb::ListUnreconciledCollectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .collections;
    assert!(left.is_empty());
    let err = fin
        .record_cash_handover(pb::RecordCashHandoverRequest {
            request_id: rid(),
            technician_id: tech.id.clone(),
            counted: Some(cny(0)),
            note: String::new(),
        })
        .await
        .expect_err("nothing");
    assert_eq!(reason(&err), "NOTHING_TO_HAND_OVER");
}

/// Issue 14 (one parts catalogue, DSP-5/BIL-2): dispatch has no catalogue of
/// its own; billing's catalogue_item.changed keeps a copy, newer revisions
/// win, and a malformed change is parked without touching the copy.
#[tokio::test]
async fn the_parts_are_a_copy_of_billings_catalogue() {
    let app = App::new().await;
    let p = app.part("gt06", 35_000).await;
    assert_eq!((p.code.as_str(), p.name.as_str(), p.active, p.vat_rate_bp), ("GT06", "part gt06", true, 0));
    assert_eq!(p.unit_price, Some(cny(35_000)));
    assert!(p.changed_at.is_some());

    // A newer revision changes price and VAT in place (same id).
    assert_eq!(app.catalogue("GT06", 36_000, 1_300, true).await, Outcome::Applied);
    let newer = app.listed_part("GT06").await.expect("listed");
    assert_eq!(
        (newer.id.as_str(), newer.unit_price.clone(), newer.vat_rate_bp),
        (p.id.as_str(), Some(cny(36_000)), 1_300)
    );
    // An older revision arriving late (redelivered, retried) changes nothing.
    assert_eq!(app.catalogue_change(catalogue_item("GT06", 1, 0, true, 1)).await, Outcome::Applied);
    assert_eq!(app.listed_part("GT06").await, Some(newer.clone()));

    // Malformed changes are parked; the copy is untouched.
    let highest = i64::MAX;
    let mut negative = catalogue_item("GT06", -5, 0, true, highest);
    assert_eq!(app.catalogue_change(negative.clone()).await, Outcome::Parked);
    negative.unit_price = Some(cny(5));
    negative.kind = "gift".into();
    assert_eq!(app.catalogue_change(negative.clone()).await, Outcome::Parked);
    negative.kind = "part".into();
    negative.vat_rate_bp = 10_001;
    assert_eq!(app.catalogue_change(negative).await, Outcome::Parked);
    let mut lower = catalogue_item("GT06", 5, 0, true, highest);
    lower.code = "gt06".into();
    assert_eq!(app.catalogue_change(lower).await, Outcome::Parked);
    assert_eq!(app.listed_part("GT06").await, Some(newer));
    assert_eq!(app.count("parts").await, 1);

    // Services are not parts: not listed.
    let mut visit = catalogue_item("VISIT", 8_000, 600, true, 5);
    visit.kind = "service".into();
    assert_eq!(app.catalogue_change(visit).await, Outcome::Applied);
    assert_eq!(app.listed_part("VISIT").await, None);
    // Withdrawn parts are listed only when asked for.
    app.catalogue("OLD", 100, 0, false).await;
    let mut m = app.manager().await;
    let active = m.list_parts(pb::ListPartsRequest::default()).await.unwrap().into_inner().parts;
    assert_eq!(active.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(), ["GT06"]);
    assert!(app.listed_part("OLD").await.is_some_and(|p| !p.active));
    let err = m.list_parts(pb::ListPartsRequest { page_size: -1, ..Default::default() }).await.expect_err("size");
    assert_invalid(&err, "page_size");
}

/// Issue 14 (one catalogue): completion prices a part at billing's net
/// price plus its VAT, per line as billing invoices it; withdrawn parts and
/// services are refused and nothing changes.
#[tokio::test]
async fn completion_prices_parts_at_the_catalogue_net_plus_vat_and_refuses_withdrawn_ones() {
    let app = App::new().await;
    let cust = app.customer("己", None).await;
    let tech = app.technician("t-v", &["gps"], "north", 9).await;
    let expired = Utc::now().date_naive() - Days::new(30);
    app.catalogue("GT06", 3_333, 1_300, true).await;
    app.catalogue("OLD", 100, 0, false).await;
    let mut visit = catalogue_item("VISIT", 8_000, 600, true, 1);
    visit.kind = "service".into();
    app.catalogue_change(visit).await;
    let dev = app.device(&cust, "T-V1", "", expired).await;
    let w = app.on_site(&app.approved_repair(&cust).await, &tech.id, "t-v").await;
    let mut t = app.tech("t-v").await;
    for (code, why) in [("OLD", "withdrawn"), ("VISIT", "service")] {
        let mut req = completion(&w);
        req.device_id = dev.id.clone();
        req.parts = vec![used("GT06", 1), used(code, 1)];
        let err = t.complete_work_order(req).await.expect_err(why);
        assert_invalid(&err, "parts[1].part_code");
    }
    let still = app.dispatcher().await.get_work_order(pb::GetWorkOrderRequest { id: w.id.clone() }).await;
    assert_eq!(still.unwrap().into_inner().work_order.unwrap().state, pb::WorkOrderState::OnSite as i32);
    assert!(app.outbox("work_order.completed").await.is_empty());

    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.parts = vec![used("GT06", 3)];
    let done = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
    // 3 × 33.33 = 99.99 net; 13 % of it = 12.9987 → 13.00.
    assert_eq!(done.amount_due, Some(cny(11_299)));
    let l = &done.parts[0];
    assert_eq!((l.vat_rate_bp, l.line_net.clone(), l.line_vat.clone()), (1_300, Some(cny(9_999)), Some(cny(1_300))));
    assert_eq!((l.unit_price.clone(), l.line_total.clone()), (Some(cny(3_333)), Some(cny(11_299))));
    // Billing gets the net price and the rate it was priced at.
    let events = app.outbox("work_order.completed").await;
    let (_, Payload::WorkOrderCompleted(e)) = &events[0] else { panic!("{events:?}") };
    assert_eq!((e.parts[0].unit_price.clone(), e.parts[0].vat_rate_bp), (Some(cny(3_333)), 1_300));
    // A later price change does not touch a completed order.
    app.catalogue("GT06", 9_999, 1_300, true).await;
    let later = app.dispatcher().await.get_work_order(pb::GetWorkOrderRequest { id: w.id.clone() }).await;
    assert_eq!(later.unwrap().into_inner().work_order.unwrap().amount_due, Some(cny(11_299)));
}

fn local_today() -> NaiveDate {
    Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive()
}

fn rate(hourly_fen: i64, from: NaiveDate) -> pb::SetLabourRateRequest {
    pb::SetLabourRateRequest {
        request_id: rid(),
        rate: Some(pb::LabourRate {
            hourly_rate: Some(cny(hourly_fen)),
            effective_from: Some(crate::helpers::date(from)),
            ..Default::default()
        }),
    }
}

/// Issue 14 (DSP-5/DSP-6): labour is recorded on completion; out of
/// warranty it is free (parts only) until a labour rate is set, then charged
/// per minute at the rate; in warranty it is always free.
#[tokio::test]
async fn labour_is_recorded_and_charged_out_of_warranty_only_at_a_set_rate() {
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let tech = app.technician("t-l", &["gps"], "north", 9).await;
    let expired = Utc::now().date_naive() - Days::new(30);
    app.part("GT06", 35_000).await;
    let mut mgr = app.manager().await;
    let err = mgr.get_labour_rate(pb::GetLabourRateRequest::default()).await.expect_err("none yet");
    assert_eq!(err.code(), Code::NotFound);

    // No rate: 90 minutes recorded, parts only.
    let dev = app.device(&cust, "T-L1", "", expired).await;
    let w = app.on_site(&app.approved_repair(&cust).await, &tech.id, "t-l").await;
    let mut t = app.tech("t-l").await;
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.parts = vec![used("GT06", 1)];
    req.labour_minutes = 90;
    let done = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
    assert_eq!((done.labour_minutes, done.labour_charge.clone(), done.amount_due), (90, None, Some(cny(35_000))));

    // Bad rates are refused and nothing is set; a technician may not set one.
    let err = mgr.set_labour_rate(rate(-1, local_today())).await.expect_err("negative");
    assert_invalid(&err, "rate.hourly_rate");
    let err = mgr.set_labour_rate(rate(12_000, local_today() - Days::new(1))).await.expect_err("past");
    assert_invalid(&err, "rate.effective_from");
    let err = t.set_labour_rate(rate(12_000, local_today())).await.expect_err("technician");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(mgr.get_labour_rate(pb::GetLabourRateRequest::default()).await.is_err(), "still none");

    // 120.00 an hour from today: 45 minutes cost 90.00 on top of the part.
    let set = mgr.set_labour_rate(rate(12_000, local_today())).await.unwrap().into_inner().rate.unwrap();
    assert_eq!((set.hourly_rate, set.set_by.as_str()), (Some(cny(12_000)), "mgr-1"));
    let dev = app.device(&cust, "T-L2", "", expired).await;
    let w = app.on_site(&app.approved_repair(&cust).await, &tech.id, "t-l").await;
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.parts = vec![used("GT06", 1)];
    req.labour_minutes = 45;
    let done = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
    assert_eq!((done.labour_minutes, done.labour_charge.clone()), (45, Some(cny(9_000))));
    assert_eq!(done.amount_due, Some(cny(44_000)));
    let event = app.outbox("work_order.completed").await.into_iter().find(|(id, _)| id.to_string() == done.id);
    match event.map(|(_, p)| p) {
        Some(Payload::WorkOrderCompleted(e)) => {
            assert_eq!((e.labour_minutes, e.labour_charge.map(|m| m.amount_minor)), (45, Some(9_000)));
        }
        other => panic!("{other:?}"),
    }

    // In warranty the labour stays free.
    let covered = Utc::now().date_naive() + Days::new(30);
    let dev = app.device(&cust, "T-L3", "", covered).await;
    let w = app.on_site(&app.approved_repair(&cust).await, &tech.id, "t-l").await;
    let mut req = completion(&w);
    req.device_id = dev.id.clone();
    req.labour_minutes = 120;
    let done = t.complete_work_order(req).await.unwrap().into_inner().work_order.unwrap();
    assert_eq!((done.labour_minutes, done.labour_charge, done.amount_due), (120, None, Some(cny(0))));
}

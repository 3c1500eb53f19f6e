//! over gRPC: what complaints writes into its outbox (protobuf
//! payloads, in the transaction of the change) and its part of a customer's
//! termination (CUS-11): DONE at once, or HELD until the open complaints are
//! closed — reported by the background re-check.

use std::time::Duration;

use chrono::Utc;
use crm_events::{Outcome, Payload, pb as ev};
use crm_proto::complaints::v1 as pb;
use crm_testkit::HandFeed;
use uuid::Uuid;

use crate::helpers::{App, Client, date, registration, rid};

/// The service's consumers over the test database, fed by hand.
fn feed(app: &App) -> HandFeed {
    let feed = HandFeed::new("complaints", app.pool.clone(), crm_complaints::events::subscriptions);
    assert_eq!(feed.subscription("customers").types, ["customer.termination_started", "customer.merged"]);
    feed
}

/// customer.termination_started as the customers' feed would carry it.
fn termination_started(seq: i64, saga: Uuid, customer_id: &str) -> ev::Event {
    let started = ev::TerminationStarted {
        saga_id: saga.to_string(),
        customer_id: customer_id.into(),
        reason: "relationship_broken".into(),
    };
    crm_testkit::event("customers", &saga.to_string(), seq, Payload::TerminationStarted(started))
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// The termination step reports in the outbox, in order.
async fn reports(app: &App) -> Vec<ev::TerminationStepReported> {
    app.outbox("termination.step_reported")
        .await
        .into_iter()
        .map(|(_, p)| match p {
            Payload::TerminationStepReported(r) => r,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Waits (up to 10 s) until there are `n` reports.
async fn wait_for_reports(app: &App, n: usize) -> Vec<ev::TerminationStepReported> {
    for _ in 0..100 {
        let r = reports(app).await;
        if r.len() >= n {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} reports, have {:?}", reports(app).await)
}

fn report(
    saga: Uuid,
    customer: &str,
    outcome: ev::TerminationStepOutcome,
    reason: &str,
) -> ev::TerminationStepReported {
    let held = outcome == ev::TerminationStepOutcome::Held;
    ev::TerminationStepReported {
        saga_id: saga.to_string(),
        customer_id: customer.into(),
        participant: "complaints".into(),
        outcome: outcome as i32,
        reason: reason.into(),
        code: if held { "OPEN_COMPLAINTS".into() } else { String::new() },
        billable_work_order_ids: vec![],
    }
}

async fn reject(desk: &mut Client, id: &str) {
    desk.reject_complaint(pb::RejectComplaintRequest {
        request_id: rid(),
        id: id.into(),
        etag: String::new(),
        reason: pb::RejectionReason::Duplicate as i32,
        note: "重复投诉".into(),
    })
    .await
    .expect("reject");
}

async fn close_satisfied(desk: &mut Client, id: &str) {
    desk.record_feedback(pb::RecordFeedbackRequest {
        request_id: rid(),
        id: id.into(),
        etag: String::new(),
        satisfied: true,
        feedback: "满意".into(),
    })
    .await
    .expect("close");
}

#[tokio::test]
async fn each_step_of_a_complaint_is_published_with_its_change() {
    let app = App::new().await;
    let cust = app.customer("甲", None, None).await;
    let c = app.answered(&cust).await;
    let id = uuid(&c.id);
    let filed = app.outbox("complaint.filed").await;
    let want = Payload::ComplaintFiled(ev::ComplaintFiled {
        complaint_id: c.id.clone(),
        number: c.number.clone(),
        customer_id: cust.clone(),
        category: "billing".into(),
        filed_by: "desk-1".into(),
    });
    assert_eq!(filed, [(id, want)]);
    let accepted = Payload::ComplaintAccepted(ev::ComplaintAccepted {
        complaint_id: c.id.clone(),
        customer_id: cust.clone(),
        accepted_by: "desk-1".into(),
    });
    assert_eq!(app.outbox("complaint.accepted").await, [(id, accepted)]);
    let resolved = Payload::ComplaintResolved(ev::ComplaintResolved {
        complaint_id: c.id.clone(),
        customer_id: cust.clone(),
        verdict: "justified".into(),
        resolved_by: "head-lab".into(),
    });
    assert_eq!(app.outbox("complaint.resolved").await, [(id, resolved)]);
    assert!(app.outbox("complaint.closed").await.is_empty(), "answered is not closed");

    let mut desk = app.desk().await;
    close_satisfied(&mut desk, &c.id).await;
    let closed = |complaint: &str, by: &str| {
        (
            uuid(complaint),
            Payload::ComplaintClosed(ev::ComplaintClosed {
                complaint_id: complaint.into(),
                customer_id: cust.clone(),
                closed_by: by.into(),
            }),
        )
    };
    assert_eq!(app.outbox("complaint.closed").await, [closed(&c.id, "desk-1")]);

    // A rejection is final too: the complaint is closed for everyone
    // counting open complaints, whether the desk rejects it or intake does
    // (CMP-2: a late appeal).
    let dup = app.register(&cust, pb::Category::ServiceAttitude).await;
    reject(&mut desk, &dup.id).await;
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let mut late = registration(&cust, pb::Category::TestResult);
    late.report_received_on = Some(date(today - chrono::Days::new(11)));
    let late = desk.register_complaint(late).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!(late.state, pb::ComplaintState::Rejected as i32);
    assert_eq!(
        app.outbox("complaint.closed").await,
        [closed(&c.id, "desk-1"), closed(&dup.id, "desk-1"), closed(&late.id, "desk-1")]
    );
    let types = app.outbox_types().await;
    let last: Vec<&str> = types.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(last, ["complaint.filed", "complaint.closed"], "filed and rejected at intake: {types:?}");
}

#[tokio::test]
async fn a_customer_without_open_complaints_is_reported_done_once() {
    let app = App::new().await;
    let cust = app.customer("乙", None, None).await;
    let other = app.customer("丙", None, None).await;
    // Only finished complaints of this customer; another customer's is open.
    let c = app.register(&cust, pb::Category::Billing).await;
    reject(&mut app.desk().await, &c.id).await;
    app.register(&other, pb::Category::Billing).await;

    let feed = feed(&app);
    let saga = Uuid::now_v7();
    let event = termination_started(1, saga, &cust);
    assert_eq!(feed.deliver(&event).await, Outcome::Applied);
    let done = report(saga, &cust, ev::TerminationStepOutcome::Done, "");
    assert_eq!(reports(&app).await.len(), 1);
    assert_eq!(reports(&app).await[0], done);
    let pending: (Uuid, bool) = sqlx::query_as(
        "SELECT customer_id, done_at IS NOT NULL FROM complaints.pending_terminations WHERE saga_id = $1",
    )
    .bind(saga)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, (uuid(&cust), true));

    // Delivered again: nothing changes, and the re-check has nothing to say.
    assert_eq!(feed.deliver(&event).await, Outcome::Duplicate);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(reports(&app).await, [done]);
}

#[tokio::test]
async fn open_complaints_hold_the_step_until_they_are_closed() {
    let app = App::new().await;
    let cust = app.customer("丁", None, None).await;
    let registered = app.register(&cust, pb::Category::Billing).await;
    let answered = app.answered(&cust).await;
    let feed = feed(&app);
    let saga = Uuid::now_v7();
    let event = termination_started(3, saga, &cust);
    assert_eq!(feed.deliver(&event).await, Outcome::Applied);
    let held = |reason: &str| report(saga, &cust, ev::TerminationStepOutcome::Held, reason);
    let two = format!("2 complaints are still open: {}, {}", registered.number, answered.number);
    assert_eq!(reports(&app).await, [held(&two)]);

    // The re-check runs every 200 ms in tests; nothing changed, nothing is said.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(reports(&app).await.len(), 1);
    assert_eq!(feed.deliver(&event).await, Outcome::Duplicate);
    assert_eq!(reports(&app).await.len(), 1);

    // One closed: held again, naming the other.
    let mut desk = app.desk().await;
    reject(&mut desk, &registered.id).await;
    let one = format!("1 complaint is still open: {}", answered.number);
    assert_eq!(wait_for_reports(&app, 2).await, [held(&two), held(&one)]);

    // The last closed: done, and the termination is no longer pending.
    close_satisfied(&mut desk, &answered.id).await;
    let done = report(saga, &cust, ev::TerminationStepOutcome::Done, "");
    assert_eq!(wait_for_reports(&app, 3).await, [held(&two), held(&one), done]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(reports(&app).await.len(), 3);
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM complaints.pending_terminations WHERE done_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    // Every report is about the saga.
    let aggregates: Vec<Uuid> = app.outbox("termination.step_reported").await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(aggregates, [saga; 3]);
}

#[tokio::test]
async fn a_termination_naming_no_customer_is_parked() {
    let app = App::new().await;
    let feed = feed(&app);
    let bad = termination_started(9, Uuid::now_v7(), "nobody");
    assert_eq!(feed.deliver(&bad).await, Outcome::Parked);
    let parked = feed.consumers().parked(false, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].error.contains("customer_id"), "{}", parked[0].error);
    assert!(reports(&app).await.is_empty());
    assert_eq!(app.count("pending_terminations").await, 0);
}

#[tokio::test]
async fn a_complaint_filed_while_the_termination_clears_takes_back_done() {
    let app = App::new().await;
    let cust = app.customer("戊", None, None).await;
    let feed = feed(&app);
    let saga = Uuid::now_v7();
    assert_eq!(feed.deliver(&termination_started(5, saga, &cust)).await, Outcome::Applied);
    assert_eq!(reports(&app).await, [report(saga, &cust, ev::TerminationStepOutcome::Done, "")]);

    // The customer complains before the saga has finished: HELD again.
    let late = app.register(&cust, pb::Category::Billing).await;
    let held = wait_for_reports(&app, 2).await;
    assert_eq!(held[1].outcome, ev::TerminationStepOutcome::Held as i32);
    assert!(held[1].reason.contains(&late.number), "{}", held[1].reason);

    // Closed: DONE again.
    reject(&mut app.desk().await, &late.id).await;
    let done = wait_for_reports(&app, 3).await;
    assert_eq!(done[2], report(saga, &cust, ev::TerminationStepOutcome::Done, ""));
}

/// CUS-2: customer.merged moves the merged-away customer's complaints to the
/// survivor, once: the same event again is a duplicate and changes nothing,
/// and a malformed one is parked with nothing moved.
#[tokio::test]
async fn a_merge_moves_complaints_to_the_survivor_once() {
    let app = App::new().await;
    let feed = feed(&app);
    let survivor = app.customer("甲", None, None).await;
    let merged = app.customer("甲公司", None, None).await;
    let c = app.register(&merged, pb::Category::Billing).await;
    let bad = feed.event(
        "customers",
        &merged,
        Payload::CustomersMerged(ev::CustomersMerged {
            survivor_id: "x".into(),
            merged_id: merged.clone(),
            merged_by: "mgr".into(),
            reason: "重复".into(),
        }),
    );
    assert_eq!(feed.deliver(&bad).await, Outcome::Parked);
    assert_eq!(app.get(&c.id).await.customer_id, merged, "nothing moved");

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
    let moved = app.get(&c.id).await;
    assert_eq!(moved.customer_id, survivor);
    assert_eq!(feed.deliver(&event).await, Outcome::Duplicate);
    assert_eq!(app.get(&c.id).await.etag, moved.etag, "applied once");
}

//! CUS-11 billing's step of the termination saga: HELD while money is owed
//! either way, DONE (account closed) once it is clear — found by the
//! background re-check after a payment.

use std::time::Duration;

use crm_events::{Outcome, Payload, pb as ev};
use crm_proto::billing::v1 as pb;
use uuid::Uuid;

use crate::{
    events::{Feed, feed, published},
    helpers::{App, cny, rid},
};

fn started(customer: &str, saga: &str) -> Payload {
    Payload::TerminationStarted(ev::TerminationStarted {
        saga_id: saga.into(),
        customer_id: customer.into(),
        reason: "stopped buying".into(),
    })
}

/// Dispatch's DONE for `saga`, listing the customer's billable work orders.
fn dispatch_done(customer: &str, saga: &str, billable: &[&str]) -> Payload {
    Payload::TerminationStepReported(ev::TerminationStepReported {
        saga_id: saga.into(),
        customer_id: customer.into(),
        participant: "dispatch".into(),
        outcome: ev::TerminationStepOutcome::Done as i32,
        reason: String::new(),
        code: String::new(),
        billable_work_order_ids: billable.iter().map(|w| (*w).to_string()).collect(),
    })
}

/// Dispatch has cleared the customer with no billable work, then customers
/// asks billing.
async fn start(feed: &Feed, customer: &str, saga: &str) -> Outcome {
    assert_eq!(feed.deliver(&feed.event("dispatch", saga, dispatch_done(customer, saga, &[]))).await, Outcome::Applied);
    feed.deliver(&feed.event("customers", saga, started(customer, saga))).await
}

/// billing's reports on `saga`, oldest first.
async fn reports(app: &App, saga: &str) -> Vec<ev::TerminationStepReported> {
    published(app, "termination.step_reported")
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::TerminationStepReported(r)) if r.saga_id == saga => Some(r),
            _ => None,
        })
        .collect()
}

/// The reports on `saga` once there are `n` (the re-check runs every 200 ms).
async fn wait_for(app: &App, saga: &str, n: usize) -> Vec<ev::TerminationStepReported> {
    for _ in 0..50 {
        let r = reports(app, saga).await;
        if r.len() >= n {
            assert_eq!(r.len(), n, "{r:?}");
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no report {n} on saga {saga}: {:?}", reports(app, saga).await);
}

async fn status(app: &App, account: &str) -> i32 {
    app.finance()
        .await
        .get_account(pb::GetAccountRequest { account_id: account.into(), customer_id: String::new() })
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account")
        .status
}

#[tokio::test]
async fn a_balance_holds_the_termination_until_it_is_paid() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("要终止").await;
    app.invoice(&a.id, 12_000).await;
    let saga = Uuid::now_v7().to_string();
    let report = feed.event("dispatch", &saga, dispatch_done(&a.customer_id, &saga, &[]));
    assert_eq!(feed.deliver(&report).await, Outcome::Applied);
    assert!(reports(&app, &saga).await.is_empty(), "nothing to answer before customers asks");
    let e = feed.event("customers", &saga, started(&a.customer_id, &saga));
    assert_eq!(feed.deliver(&e).await, Outcome::Applied);
    assert_eq!(feed.deliver(&e).await, Outcome::Duplicate);

    let r = reports(&app, &saga).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, ev::TerminationStepOutcome::Held as i32);
    assert_eq!((r[0].participant.as_str(), r[0].code.as_str()), ("billing", "BALANCE_NOT_ZERO"));
    assert_eq!(r[0].reason, format!("120.00 CNY is owed on account {}", a.id));
    assert_eq!(status(&app, &a.id).await, pb::AccountStatus::Active as i32);

    // The re-check (every 200 ms in tests) does not repeat an unchanged hold.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(reports(&app, &saga).await.len(), 1);

    let pay = |amount_minor: i64| pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        method: pb::PaymentMethod::Transfer as i32,
        amount: cny(amount_minor),
        reference: String::new(),
    };
    // A part payment changes the reason: reported HELD again, with the new amount.
    app.finance().await.record_payment(pay(2_000)).await.expect("part");
    let held = wait_for(&app, &saga, 2).await;
    assert_eq!(held[1].outcome, ev::TerminationStepOutcome::Held as i32);
    assert_eq!(held[1].reason, format!("100.00 CNY is owed on account {}", a.id));

    app.finance().await.record_payment(pay(10_000)).await.expect("rest");
    let done = wait_for(&app, &saga, 3).await;
    assert_eq!(done[2].outcome, ev::TerminationStepOutcome::Done as i32);
    assert!(done[2].code.is_empty() && done[2].reason.is_empty());
    assert_eq!(status(&app, &a.id).await, pb::AccountStatus::Closed as i32);
    let closed = published(&app, "account.closed").await;
    assert_eq!(closed.len(), 1);
    let Some(Payload::AccountClosed(c)) = &closed[0].payload else { panic!("payload") };
    assert_eq!((c.account_id.as_str(), c.saga_id.as_str()), (a.id.as_str(), saga.as_str()));

    // Done stays done: nothing more is reported.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reports(&app, &saga).await.len(), 3);
}

#[tokio::test]
async fn a_clear_or_missing_account_is_done_at_once_and_credit_is_held() {
    let app = App::new().await;
    let feed = feed(&app);

    // No account at all: nothing for billing to clear.
    let nobody = app.customer("无账户").await;
    let saga = Uuid::now_v7().to_string();
    assert_eq!(start(&feed, &nobody, &saga).await, Outcome::Applied);
    let r = reports(&app, &saga).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, ev::TerminationStepOutcome::Done as i32);

    // A clear account is closed in the same transaction.
    let clear = app.account("干净").await;
    let saga = Uuid::now_v7().to_string();
    assert_eq!(start(&feed, &clear.customer_id, &saga).await, Outcome::Applied);
    assert_eq!(reports(&app, &saga).await[0].outcome, ev::TerminationStepOutcome::Done as i32);
    assert_eq!(status(&app, &clear.id).await, pb::AccountStatus::Closed as i32);

    // Credit the customer is owed holds it with its own code.
    let owed = app.account("有余额").await;
    app.finance()
        .await
        .record_payment(pb::RecordPaymentRequest {
            request_id: rid(),
            account_id: owed.id.clone(),
            method: pb::PaymentMethod::Cash as i32,
            amount: cny(550),
            reference: String::new(),
        })
        .await
        .expect("prepay");
    let saga = Uuid::now_v7().to_string();
    assert_eq!(start(&feed, &owed.customer_id, &saga).await, Outcome::Applied);
    let r = reports(&app, &saga).await;
    assert_eq!((r[0].outcome, r[0].code.as_str()), (ev::TerminationStepOutcome::Held as i32, "CREDIT_HELD"));
    assert!(r[0].reason.contains("5.50 CNY"), "{}", r[0].reason);
    assert_eq!(status(&app, &owed.id).await, pb::AccountStatus::Active as i32);
}

#[tokio::test]
async fn the_account_stays_open_until_dispatch_reports_and_its_billable_work_is_invoiced() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("收尾客户").await;
    let saga = Uuid::now_v7().to_string();
    // Customers asks first: billing waits for dispatch's report.
    assert_eq!(feed.deliver(&feed.event("customers", &saga, started(&a.customer_id, &saga))).await, Outcome::Applied);
    let r = reports(&app, &saga).await;
    assert_eq!((r[0].outcome, r[0].code.as_str()), (ev::TerminationStepOutcome::Held as i32, "AWAITING_DISPATCH"));

    // Dispatch lists a job finished while the termination ran, whose
    // work_order.completed has not reached billing yet (another feed).
    let job = Uuid::now_v7().to_string();
    let report = feed.event("dispatch", &saga, dispatch_done(&a.customer_id, &saga, &[job.as_str()]));
    assert_eq!(feed.deliver(&report).await, Outcome::Applied);
    let r = reports(&app, &saga).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!((r[1].outcome, r[1].code.as_str()), (ev::TerminationStepOutcome::Held as i32, "WORK_NOT_INVOICED"));
    assert!(r[1].reason.contains(&job), "{}", r[1].reason);
    assert_eq!(status(&app, &a.id).await, pb::AccountStatus::Active as i32);

    // The job arrives and is invoiced: now the balance holds it…
    let done = feed.event("dispatch", &job, crate::events::completed(&a.customer_id, &job, vec![], 5_000, 0));
    assert_eq!(feed.deliver(&done).await, Outcome::Applied);
    let r = wait_for(&app, &saga, 3).await;
    assert_eq!(
        (r[2].code.as_str(), r[2].reason.as_str()),
        ("BALANCE_NOT_ZERO", format!("50.00 CNY is owed on account {}", a.id).as_str())
    );
    // …until it is paid; then the account closes and billing is done.
    app.finance()
        .await
        .record_payment(pb::RecordPaymentRequest {
            request_id: rid(),
            account_id: a.id.clone(),
            method: pb::PaymentMethod::Transfer as i32,
            amount: cny(5_000),
            reference: String::new(),
        })
        .await
        .expect("pay");
    let r = wait_for(&app, &saga, 4).await;
    assert_eq!(r[3].outcome, ev::TerminationStepOutcome::Done as i32);
    assert_eq!(status(&app, &a.id).await, pb::AccountStatus::Closed as i32);
}

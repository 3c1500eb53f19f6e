//! CUS-11 termination as a saga across the four services: request → senior
//! manager approval → notice → dispatch cancels open work, complaints
//! confirms none open, billing closes the cleared account → terminated,
//! do-not-contact and do-not-market, no new work. Held steps show why; the
//! saga survives any service restarting at any step.

use std::time::Duration;

use crm_flows::{System, billing_complaint, cny, cpb, dpb, eventually, kpb, maintenance, rid};
use crm_testkit::Role;
use tonic::Code;

async fn request(sys: &System, customer: &str) -> cpb::Termination {
    let t = sys
        .customers(&[Role::Sales], "s1")
        .await
        .request_termination(cpb::RequestTerminationRequest {
            customer_id: customer.into(),
            reason: cpb::TerminationReason::StoppedBuying as i32,
            note: "no orders since 2024; the customer asked to end the contract".into(),
            notice_days: 0,
            request_id: rid(),
        })
        .await
        .expect("request termination")
        .into_inner()
        .termination
        .unwrap();
    assert_eq!(t.state, cpb::TerminationState::Requested as i32);
    t
}

async fn approve(sys: &System, t: &cpb::Termination) {
    sys.customers(&[Role::SeniorManager], "sm-1")
        .await
        .approve_termination(cpb::ApproveTerminationRequest {
            termination_id: t.id.clone(),
            etag: t.etag.clone(),
            request_id: rid(),
        })
        .await
        .expect("approve termination");
}

async fn get(sys: &System, id: &str) -> cpb::Termination {
    sys.customers(&[Role::Admin], "admin")
        .await
        .get_termination(cpb::GetTerminationRequest { termination_id: id.into() })
        .await
        .expect("termination")
        .into_inner()
        .termination
        .unwrap()
}

fn step(t: &cpb::Termination, participant: &str) -> (i32, String) {
    let s = t.steps.iter().find(|s| s.participant == participant).unwrap();
    (s.outcome, s.code.clone())
}

const DONE: i32 = cpb::StepOutcome::Done as i32;
const HELD: i32 = cpb::StepOutcome::Held as i32;

/// Waits until the termination satisfies `ok`.
async fn until(sys: &System, id: &str, what: &str, ok: impl Fn(&cpb::Termination) -> bool) -> cpb::Termination {
    eventually(what, Duration::from_secs(30), || async {
        let t = get(sys, id).await;
        ok(&t).then_some(t)
    })
    .await
}

/// A customer with an account owing 350.00 for finished work, another work
/// order still open, and a complaint still open.
async fn busy_customer(sys: &System) -> (String, String, dpb::WorkOrder, kpb::Complaint) {
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-1", &[("GT06", 35_000)]).await;
    let done = sys.approved_order(&customer).await;
    sys.complete(&done, &tech, &[("GT06", 1)], 0).await;
    let open = sys.approved_order(&customer).await;
    let complaint = sys.complaint(&customer).await;
    eventually("the work invoiced", Duration::from_secs(20), || async {
        (sys.get_account(&account.id).await.balance == cny(35_000)).then_some(())
    })
    .await;
    (customer, account.id, open, complaint)
}

async fn refuses_new_work(sys: &System, customer: &str) {
    let err = sys
        .dispatch(&[Role::Dispatcher], "disp-1")
        .await
        .create_work_order(maintenance(customer))
        .await
        .expect_err("no new work for a terminated customer");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = sys
        .complaints(&[Role::ServiceDesk], "desk-1")
        .await
        .register_complaint(billing_complaint(customer))
        .await
        .expect_err("no new complaint");
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn termination_waits_for_every_part_and_says_what_holds_it() {
    let sys = System::start().await;
    let (customer, account, open, complaint) = busy_customer(&sys).await;
    let t = request(&sys, &customer).await;
    approve(&sys, &t).await;

    // Dispatch cancels the open order at once; complaints and billing hold.
    let held = until(&sys, &t.id, "every participant to report", |t| {
        t.state == cpb::TerminationState::Clearing as i32
            && step(t, "dispatch").0 == DONE
            && step(t, "complaints").0 == HELD
            // Billing first waits for dispatch's report (AWAITING_DISPATCH),
            // then holds for the balance.
            && step(t, "billing") == (HELD, "BALANCE_NOT_ZERO".to_string())
    })
    .await;
    assert_eq!(step(&held, "complaints").1, "OPEN_COMPLAINTS");
    assert_eq!(step(&held, "billing").1, "BALANCE_NOT_ZERO");
    assert!(held.held_reason.contains("complaints:") && held.held_reason.contains("billing:"), "{}", held.held_reason);
    let order = sys
        .dispatch(&[Role::Dispatcher], "disp-1")
        .await
        .get_work_order(dpb::GetWorkOrderRequest { id: open.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(order.state, dpb::WorkOrderState::Cancelled as i32);
    // Still a customer while the saga is held.
    assert_eq!(sys.get_customer(&customer).await.stage, cpb::LifecycleStage::Prospect as i32);

    // Resolving the holds lets the saga finish.
    let closed = sys.close(sys.resolve(complaint).await).await;
    assert_eq!(closed.state, kpb::ComplaintState::Closed as i32);
    until(&sys, &t.id, "complaints to confirm", |t| step(t, "complaints").0 == DONE).await;
    sys.pay(&account, 35_000).await;
    let done =
        until(&sys, &t.id, "the customer terminated", |t| t.state == cpb::TerminationState::Terminated as i32).await;
    assert!(done.held_reason.is_empty());
    assert!(done.terminate_time.is_some());
    let c = sys.get_customer(&customer).await;
    assert_eq!(c.stage, cpb::LifecycleStage::Terminated as i32);
    assert!(c.do_not_contact && c.do_not_market);
    assert_eq!(sys.get_account(&account).await.status, crm_flows::bpb::AccountStatus::Closed as i32);
    refuses_new_work(&sys, &customer).await;
}

#[tokio::test]
async fn the_saga_survives_each_service_restarting_in_turn() {
    let mut sys = System::start().await;
    let (customer, account, _open, complaint) = busy_customer(&sys).await;
    let t = request(&sys, &customer).await;
    sys.group.restart("customers").await;
    approve(&sys, &t).await;
    // Dispatch goes down right as clearing starts, and comes back.
    sys.group.restart("dispatch").await;
    until(&sys, &t.id, "dispatch's part", |t| step(t, "dispatch").0 == DONE).await;
    until(&sys, &t.id, "the holds", |t| step(t, "complaints").0 == HELD && step(t, "billing").0 == HELD).await;

    // The complaint closes while complaints restarts before re-checking.
    let closed = sys.close(sys.resolve(complaint).await).await;
    assert_eq!(closed.state, kpb::ComplaintState::Closed as i32);
    sys.group.restart("complaints").await;
    until(&sys, &t.id, "complaints to confirm", |t| step(t, "complaints").0 == DONE).await;

    // Billing is paid, then restarts before (or after) its re-check.
    sys.pay(&account, 35_000).await;
    sys.group.restart("billing").await;
    // Customers is down when billing reports; it catches up on return.
    sys.group.stop("customers").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sys.group.start("customers").await;
    let done =
        until(&sys, &t.id, "the customer terminated", |t| t.state == cpb::TerminationState::Terminated as i32).await;
    assert!(done.steps.iter().all(|s| s.outcome == DONE));
    let c = sys.get_customer(&customer).await;
    assert!(c.do_not_contact && c.do_not_market);
    let terminated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers.outbox WHERE event_type = 'customer.terminated'")
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert_eq!(terminated, 1, "terminated once, whatever restarted");
    refuses_new_work(&sys, &customer).await;
}

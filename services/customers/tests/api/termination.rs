//! CUS-11 termination saga and CUS-8 behaviour over gRPC, with the other
//! services' events delivered to the customers consumer by hand (the full
//! flows across services are in tests/flows).

use std::time::Duration;

use crm_events::{Outcome, Payload, pb as ev};
use crm_proto::{common::v1::Money, customers::v1 as pb};
use crm_testkit::{HandFeed, Role};
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{App, Client, assert_invalid, org, reason, rid};

fn feed(app: &App) -> HandFeed {
    HandFeed::new("customers", app.pool.clone(), crm_customers::events::subscriptions)
}

/// An event of `source`'s feed.
fn event(source: &str, payload: Payload) -> ev::Event {
    crm_testkit::event(source, &Uuid::now_v7().to_string(), 1, payload)
}

async fn deliver(app: &App, e: &ev::Event) -> Outcome {
    feed(app).deliver(e).await
}

fn report(saga: &str, customer: &str, participant: &str, done: bool, why: &str) -> ev::Event {
    let outcome = if done { ev::TerminationStepOutcome::Done } else { ev::TerminationStepOutcome::Held };
    event(
        participant,
        Payload::TerminationStepReported(ev::TerminationStepReported {
            saga_id: saga.into(),
            customer_id: customer.into(),
            participant: participant.into(),
            outcome: outcome as i32,
            reason: why.into(),
            code: if done { String::new() } else { "BALANCE_NOT_ZERO".into() },
            billable_work_order_ids: vec![],
        }),
    )
}

async fn senior(app: &App, sub: &str) -> Client {
    app.client(&[Role::SeniorManager], sub, None).await
}

fn request(customer: &str, notice_days: i32) -> pb::RequestTerminationRequest {
    pb::RequestTerminationRequest {
        customer_id: customer.into(),
        reason: pb::TerminationReason::StoppedBuying as i32,
        note: "no orders since 2024".into(),
        notice_days,
        request_id: rid(),
    }
}

async fn termination(client: &mut Client, id: &str) -> pb::Termination {
    client
        .get_termination(pb::GetTerminationRequest { termination_id: id.into() })
        .await
        .expect("get termination")
        .into_inner()
        .termination
        .expect("termination")
}

#[tokio::test]
async fn bad_termination_requests_change_nothing() {
    let app = App::new().await;
    let mut owner = app.sales("s1").await;
    let c = app.create(&mut owner, org("北京燃气", "CN-BJ")).await;
    let cases = [
        (pb::RequestTerminationRequest { reason: 0, ..request(&c.id, 30) }, "reason"),
        (pb::RequestTerminationRequest { note: " ".into(), ..request(&c.id, 30) }, "note"),
        (request(&c.id, -1), "notice_days"),
        (request(&c.id, 366), "notice_days"),
        (request("not-a-uuid", 30), "customer_id"),
    ];
    for (req, field) in cases {
        let err = owner.request_termination(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let err = owner.request_termination(request(&Uuid::now_v7().to_string(), 30)).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    // Another salesperson cannot see, so cannot terminate, s1's customer.
    let err = app.sales("s2").await.request_termination(request(&c.id, 30)).await.expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.count("terminations").await, 0);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers.outbox WHERE event_type LIKE 'customer.termination%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, 0);
}

#[tokio::test]
async fn only_another_senior_manager_decides_and_one_runs_at_a_time() {
    let app = App::new().await;
    let mut owner = app.sales("s1").await;
    let c = app.create(&mut owner, org("北京燃气", "CN-BJ")).await;
    let t = owner.request_termination(request(&c.id, 30)).await.unwrap().into_inner().termination.unwrap();
    assert_eq!(t.state, pb::TerminationState::Requested as i32);
    assert!(t.steps.iter().all(|s| s.outcome == pb::StepOutcome::Pending as i32));

    let err = owner.request_termination(request(&c.id, 30)).await.expect_err("second");
    assert_eq!(reason(&err), "TERMINATION_UNDER_WAY");

    let approve = |etag: &str| pb::ApproveTerminationRequest {
        termination_id: t.id.clone(),
        etag: etag.into(),
        request_id: rid(),
    };
    let err = app.manager().await.approve_termination(approve("")).await.expect_err("sales manager");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = senior(&app, "sm1").await.approve_termination(approve("\"v0\"")).await.expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);

    // A senior manager who requested cannot approve their own request.
    let mut sm1 = senior(&app, "sm1").await;
    let c2 = app.create(&mut app.sales("s1").await, org("上海水务", "CN-SH")).await;
    let own = sm1.request_termination(request(&c2.id, 0)).await.unwrap().into_inner().termination.unwrap();
    let err = sm1
        .approve_termination(pb::ApproveTerminationRequest {
            termination_id: own.id.clone(),
            request_id: rid(),
            ..Default::default()
        })
        .await
        .expect_err("self approval");
    assert_eq!(reason(&err), "SELF_APPROVAL");

    let err = sm1
        .reject_termination(pb::RejectTerminationRequest {
            termination_id: t.id.clone(),
            request_id: rid(),
            ..Default::default()
        })
        .await
        .expect_err("no reason");
    assert_invalid(&err, "reason");
    let rejected = sm1
        .reject_termination(pb::RejectTerminationRequest {
            termination_id: t.id.clone(),
            reason: "they signed a new contract".into(),
            etag: t.etag.clone(),
            request_id: rid(),
        })
        .await
        .unwrap()
        .into_inner()
        .termination
        .unwrap();
    assert_eq!(rejected.state, pb::TerminationState::Rejected as i32);
    assert_eq!(rejected.decided_by, "sm1");
    // A refused termination leaves room for a new request.
    owner.request_termination(request(&c.id, 30)).await.expect("new request after rejection");
    assert_eq!(app.get(&c.id).await.stage, pb::LifecycleStage::Prospect as i32);
}

#[tokio::test]
async fn the_saga_terminates_the_customer_once_every_part_is_cleared() {
    let app = App::new().await;
    let mut owner = app.sales("s1").await;
    let c = app.create(&mut owner, org("北京燃气", "CN-BJ")).await;
    let t = owner.request_termination(request(&c.id, 0)).await.unwrap().into_inner().termination.unwrap();
    let mut sm = senior(&app, "sm1").await;
    let approved = sm
        .approve_termination(pb::ApproveTerminationRequest {
            termination_id: t.id.clone(),
            etag: t.etag.clone(),
            request_id: rid(),
        })
        .await
        .unwrap()
        .into_inner()
        .termination
        .unwrap();
    assert_eq!(approved.state, pb::TerminationState::Notice as i32);

    // The saga job notices the (zero-day) notice has ended.
    let mut clearing = None;
    for _ in 0..100 {
        let now = termination(&mut sm, &t.id).await;
        if now.state == pb::TerminationState::Clearing as i32 {
            clearing = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(clearing.is_some(), "clearing started");
    let started: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers.outbox WHERE event_type = 'customer.termination_started'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(started, 1);

    assert_eq!(deliver(&app, &report(&t.id, &c.id, "dispatch", true, "")).await, Outcome::Applied);
    let held = report(&t.id, &c.id, "billing", false, "120.00 CNY is owed");
    assert_eq!(deliver(&app, &held).await, Outcome::Applied);
    assert_eq!(deliver(&app, &held).await, Outcome::Duplicate, "redelivery changes nothing");
    assert_eq!(deliver(&app, &report(&t.id, &c.id, "complaints", true, "")).await, Outcome::Applied);
    let now = termination(&mut sm, &t.id).await;
    assert_eq!(now.state, pb::TerminationState::Clearing as i32);
    assert_eq!(now.held_reason, "billing: 120.00 CNY is owed");
    assert!(!app.get(&c.id).await.do_not_contact);

    // A participant cannot report for another one: parked, not applied.
    let mut forged = report(&t.id, &c.id, "billing", true, "");
    forged.source = "dispatch".into();
    assert_eq!(deliver(&app, &forged).await, Outcome::Parked);

    assert_eq!(deliver(&app, &report(&t.id, &c.id, "billing", true, "")).await, Outcome::Applied);
    let done = termination(&mut sm, &t.id).await;
    assert_eq!(done.state, pb::TerminationState::Terminated as i32);
    assert_eq!(done.held_reason, "");
    let customer = app.get(&c.id).await;
    assert_eq!(customer.stage, pb::LifecycleStage::Terminated as i32);
    assert!(customer.do_not_contact && customer.do_not_market);
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM customers.outbox WHERE event_type IN ('customer.terminated', 'customer.stage_changed') \
         ORDER BY seq",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["customer.stage_changed", "customer.terminated"]);

    // Afterwards: do-not-contact, and the record is kept read-only.
    let err = owner
        .log_interaction(pb::LogInteractionRequest {
            request_id: rid(),
            interaction: Some(pb::Interaction {
                customer_id: c.id.clone(),
                channel: pb::InteractionChannel::Phone as i32,
                summary: "call".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("do not contact");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = owner.request_termination(request(&c.id, 0)).await.expect_err("already terminated");
    assert_eq!(reason(&err), "CUSTOMER_TERMINATED");
}

fn cny(minor: i64) -> Option<Money> {
    Some(Money { amount_minor: minor, currency_code: "CNY".into() })
}

async fn behaviour(app: &App, id: &str) -> pb::CustomerBehaviour {
    app.admin()
        .await
        .get_customer_behaviour(pb::GetCustomerBehaviourRequest { customer_id: id.into() })
        .await
        .expect("behaviour")
        .into_inner()
        .behaviour
        .expect("figures")
}

#[tokio::test]
async fn behaviour_counts_each_event_once_and_can_drive_the_tier() {
    let app = App::new().await;
    let mut owner = app.sales("s1").await;
    let c = app.create(&mut owner, org("北京燃气", "CN-BJ")).await;
    let invoice = |minor| {
        event(
            "billing",
            Payload::InvoiceIssued(ev::InvoiceIssued {
                invoice_id: Uuid::now_v7().to_string(),
                customer_id: c.id.clone(),
                total: cny(minor),
                ..Default::default()
            }),
        )
    };
    let big = invoice(12_000_000);
    assert_eq!(deliver(&app, &big).await, Outcome::Applied);
    assert_eq!(deliver(&app, &big).await, Outcome::Duplicate);
    let paid = event(
        "billing",
        Payload::PaymentReceived(ev::PaymentReceived {
            customer_id: c.id.clone(),
            amount: cny(10_000_000),
            ..Default::default()
        }),
    );
    assert_eq!(deliver(&app, &paid).await, Outcome::Applied);
    let credit = event(
        "billing",
        Payload::CreditNoteIssued(ev::CreditNoteIssued {
            customer_id: c.id.clone(),
            amount: cny(500),
            ..Default::default()
        }),
    );
    assert_eq!(deliver(&app, &credit).await, Outcome::Applied);
    let complaint = event(
        "complaints",
        Payload::ComplaintFiled(ev::ComplaintFiled { customer_id: c.id.clone(), ..Default::default() }),
    );
    assert_eq!(deliver(&app, &complaint).await, Outcome::Applied);

    let b = behaviour(&app, &c.id).await;
    assert_eq!(b.purchases_last_year, 1);
    assert_eq!(b.purchase_amount_last_year, cny(12_000_000));
    assert_eq!(b.lifetime_value, cny(9_999_500));
    assert_eq!(b.complaints_last_year, 1);
    assert_eq!(b.suggested_tier, pb::ValueTier::Key as i32);
    // The policy is not automatic by default: the tier is only suggested.
    assert_eq!(b.current_tier, pb::ValueTier::Potential as i32);

    // An event about a customer nobody knows is parked, not retried for ever.
    let stray = event(
        "complaints",
        Payload::ComplaintFiled(ev::ComplaintFiled { customer_id: Uuid::now_v7().to_string(), ..Default::default() }),
    );
    assert_eq!(deliver(&app, &stray).await, Outcome::Parked);
    assert_eq!(app.count("events_parked").await, 1);

    // Automatic tiers: the next behaviour event applies the policy's tier.
    let mut admin = app.admin().await;
    admin
        .set_tier_policy(pb::SetTierPolicyRequest {
            policy: Some(pb::TierPolicy {
                automatic: true,
                key_min_amount: cny(10_000_000),
                vip_min_amount: cny(20_000_000),
                max_complaints_for_upgrade: 1,
                ..Default::default()
            }),
            request_id: rid(),
        })
        .await
        .expect("set policy");
    assert_eq!(deliver(&app, &invoice(9_000_000)).await, Outcome::Applied);
    let after = app.get(&c.id).await;
    assert_eq!(after.value_tier, pb::ValueTier::Vip as i32, "21m bought, one complaint");
    let changed: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM customers.outbox WHERE event_type = 'customer.tier_changed'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(changed.len(), 1);
    let e = <ev::Event as prost::Message>::decode(changed[0].as_slice()).unwrap();
    match e.payload {
        Some(Payload::CustomerTierChanged(t)) => {
            assert!(t.automatic);
            assert_eq!((t.from_tier.as_str(), t.to_tier.as_str()), ("potential", "vip"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn tier_policy_is_admins_and_checked() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let before = admin.get_tier_policy(pb::GetTierPolicyRequest {}).await.unwrap().into_inner().policy.unwrap();
    assert!(!before.automatic);
    let set = |key: Option<Money>, vip: Option<Money>, complaints| pb::SetTierPolicyRequest {
        policy: Some(pb::TierPolicy {
            automatic: true,
            key_min_amount: key,
            vip_min_amount: vip,
            max_complaints_for_upgrade: complaints,
            ..Default::default()
        }),
        request_id: rid(),
    };
    let usd = Some(Money { amount_minor: 9_000_000, currency_code: "USD".into() });
    for (req, field) in [
        (set(cny(100), cny(100), 1), "policy.vip_min_amount"),
        (set(cny(0), cny(100), 1), "policy.key_min_amount"),
        (set(cny(100), cny(200), -1), "policy.max_complaints_for_upgrade"),
        (set(None, cny(200), 1), "policy.key_min_amount"),
        (set(cny(100), usd, 1), "policy.vip_min_amount"),
        (set(Some(Money { amount_minor: 1, currency_code: "XX".into() }), cny(200), 1), "policy.key_min_amount"),
    ] {
        let err = admin.set_tier_policy(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let err = app.manager().await.set_tier_policy(set(cny(100), cny(200), 1)).await.expect_err("manager");
    assert_eq!(err.code(), Code::PermissionDenied);
    let after = admin.get_tier_policy(pb::GetTierPolicyRequest {}).await.unwrap().into_inner().policy.unwrap();
    assert_eq!(after, before, "nothing changed");
}

#[tokio::test]
async fn a_batch_applies_its_good_events_and_parks_the_poison_one_in_the_same_transaction() {
    let app = App::new().await;
    let mut owner = app.sales("s1").await;
    let c = app.create(&mut owner, org("北京燃气", "CN-BJ")).await;
    let complaint = |customer: &str, seq: i64| {
        let mut e = event(
            "complaints",
            Payload::ComplaintFiled(ev::ComplaintFiled { customer_id: customer.into(), ..Default::default() }),
        );
        e.seq = seq;
        e
    };
    let batch = [complaint(&c.id, 10), complaint(&Uuid::now_v7().to_string(), 11), complaint(&c.id, 12)];
    let feed = feed(&app);
    feed.deliver_batch(&batch).await;
    assert_eq!(behaviour(&app, &c.id).await.complaints_total, 2);
    let parked: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM customers.events_parked").fetch_all(&app.pool).await.unwrap();
    assert_eq!(parked, [11]);
    let cursor: i64 = sqlx::query_scalar("SELECT after_seq FROM customers.event_cursors WHERE source = 'complaints'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(cursor, 12);
    // The same batch again: nothing applied twice, nothing parked twice.
    feed.deliver_batch(&batch).await;
    assert_eq!(behaviour(&app, &c.id).await.complaints_total, 2);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM customers.events_parked").fetch_one(&app.pool).await.unwrap();
    assert_eq!(attempts, 2, "re-parked, one row");
}

#[tokio::test]
async fn bad_reads_of_terminations_and_behaviour_are_refused() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let err =
        admin.get_termination(pb::GetTerminationRequest { termination_id: "x".into() }).await.expect_err("bad id");
    assert_invalid(&err, "termination_id");
    let err = admin
        .get_termination(pb::GetTerminationRequest { termination_id: Uuid::now_v7().to_string() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    for (req, field) in [
        (pb::ListTerminationsRequest { page_size: 201, ..Default::default() }, "page_size"),
        (pb::ListTerminationsRequest { page_size: -1, ..Default::default() }, "page_size"),
        (pb::ListTerminationsRequest { state: 99, ..Default::default() }, "state"),
        (pb::ListTerminationsRequest { customer_id: "x".into(), ..Default::default() }, "customer_id"),
    ] {
        let err = admin.list_terminations(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let err = admin
        .list_terminations(pb::ListTerminationsRequest {
            customer_id: Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("unknown customer");
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .get_customer_behaviour(pb::GetCustomerBehaviourRequest { customer_id: "x".into() })
        .await
        .expect_err("bad id");
    assert_invalid(&err, "customer_id");
    let err = admin
        .get_customer_behaviour(pb::GetCustomerBehaviourRequest { customer_id: Uuid::now_v7().to_string() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    // Another salesperson's customer is not visible: its terminations and
    // behaviour are NOT_FOUND too (CUS-13).
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("北京燃气", "CN-BJ")).await;
    let t = s1.request_termination(request(&c.id, 30)).await.unwrap().into_inner().termination.unwrap();
    let mut s2 = app.sales("s2").await;
    let err = s2.get_termination(pb::GetTerminationRequest { termination_id: t.id.clone() }).await.expect_err("s2");
    assert_eq!(err.code(), Code::NotFound);
    let listed = s2.list_terminations(pb::ListTerminationsRequest::default()).await.unwrap().into_inner();
    assert!(listed.terminations.is_empty());
    let mine = s1.list_terminations(pb::ListTerminationsRequest::default()).await.unwrap().into_inner();
    assert_eq!(mine.terminations.len(), 1);
    let err = s2
        .get_customer_behaviour(pb::GetCustomerBehaviourRequest { customer_id: c.id.clone() })
        .await
        .expect_err("s2 behaviour");
    assert_eq!(err.code(), Code::NotFound);
}

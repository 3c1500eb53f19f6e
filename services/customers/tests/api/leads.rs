//! CUS-3 lead distribution and CUS-4 first contact over gRPC.

use crm_proto::customers::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, assert_invalid, org, reason, rid};

fn sp(owner: &str, weight: i32) -> pb::Salesperson {
    pb::Salesperson { owner_id: owner.into(), capacity_weight: weight }
}

#[tokio::test]
async fn campaign_leads_are_balanced_by_capacity_and_start_the_first_contact_clock() {
    let app = App::new().await;
    let mut mgr = app.manager().await;
    // s1 already owns 2 customers; s2 and s3 none.
    let mut s1 = app.sales("s1").await;
    app.create(&mut s1, org("老客户甲", "R1")).await;
    app.create(&mut s1, org("老客户乙", "R2")).await;
    let mut pool = Vec::new();
    for i in 0..10 {
        pool.push(
            app.create(&mut mgr, pb::Customer { source_channel: 7, ..org(&format!("展会线索{i}"), "EXPO") }).await.id,
        );
    }
    let req = pb::DistributeLeadsRequest {
        request_id: rid(),
        campaign: "2026 燃气展".into(),
        customer_ids: pool.clone(),
        salespeople: vec![sp("s1", 1), sp("s2", 1), sp("s3", 2)],
    };
    let resp = mgr.distribute_leads(req.clone()).await.expect("distribute").into_inner();
    assert_eq!(resp.assignments.len(), 10);
    // 12 customers in all, shares 3 / 3 / 6: s1 gets 1, s2 3, s3 6.
    let after: Vec<(String, i64, i64)> =
        resp.loads.iter().map(|l| (l.owner_id.clone(), l.owned_before, l.owned_after)).collect();
    assert_eq!(after, vec![("s1".into(), 2, 3), ("s2".into(), 0, 3), ("s3".into(), 0, 6)]);
    for l in &resp.loads {
        assert!((l.owned_after as f64 - l.fair_share).abs() < 1.0, "{l:?}");
    }
    // The clock runs for each new owner, and the campaign is in the history.
    let one = app.get(&resp.assignments[0].customer_id).await;
    assert!(one.first_contact_due_time.is_some() && one.first_contact_time.is_none());
    let history = mgr
        .list_ownership_history(pb::ListOwnershipHistoryRequest { customer_id: one.id.clone() })
        .await
        .expect("history")
        .into_inner()
        .records;
    assert_eq!(history.last().map(|r| r.reason.as_str()), Some("campaign 2026 燃气展"));
    assert_eq!(history.len(), 2, "registered, then distributed");

    // A retry returns the same answer and moves nothing again.
    let again = mgr.distribute_leads(req).await.expect("retry").into_inner();
    assert_eq!(again, resp);
    assert_eq!(app.count("ownership_history").await, 2 + 10 + 10);
}

#[tokio::test]
async fn distribution_input_is_checked_and_only_managers_distribute() {
    let app = App::new().await;
    let mut mgr = app.manager().await;
    let c = app.create(&mut mgr, org("线索", "EXPO")).await;
    let err = mgr
        .distribute_leads(pb::DistributeLeadsRequest {
            request_id: rid(),
            campaign: " ".into(),
            customer_ids: vec![c.id.clone(), c.id.clone(), "x".into()],
            salespeople: vec![sp("s1", 0), sp("s1", 1)],
        })
        .await
        .expect_err("bad");
    for f in
        ["campaign", "customer_ids[1]", "customer_ids[2]", "salespeople[0].capacity_weight", "salespeople[1].owner_id"]
    {
        assert_invalid(&err, f);
    }
    let mut s1 = app.sales("s1").await;
    let err = s1
        .distribute_leads(pb::DistributeLeadsRequest {
            request_id: rid(),
            campaign: "x".into(),
            customer_ids: vec![c.id.clone()],
            salespeople: vec![sp("s1", 1)],
        })
        .await
        .expect_err("sales");
    assert_eq!(err.code(), Code::PermissionDenied);
    // A customer of another branch is not found for a branch manager.
    let mut sh = app.client(&[Role::SalesManager], "mgr-sh", Some("sh")).await;
    let err = sh
        .distribute_leads(pb::DistributeLeadsRequest {
            request_id: rid(),
            campaign: "x".into(),
            customer_ids: vec![c.id.clone()],
            salespeople: vec![sp("s9", 1)],
        })
        .await
        .expect_err("other branch");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.get(&c.id).await.owner_id, "mgr-bj", "nothing moved");
}

#[tokio::test]
async fn first_contact_is_due_within_seven_days_and_an_interaction_stops_the_clock() {
    let app = App::new().await;
    let mut mgr = app.manager().await;
    let a = app.create(&mut mgr, pb::Customer { owner_id: "s1".into(), ..org("甲", "R") }).await;
    let b = app.create(&mut mgr, pb::Customer { owner_id: "s1".into(), ..org("乙", "R") }).await;
    let due = a.first_contact_due_time.expect("clock started");
    let assigned = a.assign_time.expect("assigned");
    assert_eq!(due.seconds - assigned.seconds, 7 * 24 * 3600);
    // Nothing is overdue yet.
    let overdue =
        |r: pb::ListOverdueFirstContactsResponse| r.overdue.into_iter().map(|o| o.customer_id).collect::<Vec<_>>();
    let list = || pb::ListOverdueFirstContactsRequest::default();
    assert!(overdue(mgr.list_overdue_first_contacts(list()).await.expect("list").into_inner()).is_empty());

    // s1 calls customer a; eight days pass for both.
    let mut s1 = app.sales("s1").await;
    s1.log_interaction(pb::LogInteractionRequest {
        request_id: rid(),
        interaction: Some(pb::Interaction {
            customer_id: a.id.clone(),
            channel: pb::InteractionChannel::Phone as i32,
            summary: "介绍燃气表更换方案".into(),
            ..Default::default()
        }),
        follow_up_id: String::new(),
    })
    .await
    .expect("call");
    assert!(app.get(&a.id).await.first_contact_time.is_some(), "the owner's call stops the clock");
    sqlx::query("UPDATE customers.customers SET first_contact_due = now() - interval '1 day'")
        .execute(&app.pool)
        .await
        .expect("time passes");
    assert_eq!(overdue(mgr.list_overdue_first_contacts(list()).await.expect("list").into_inner()), vec![b.id.clone()]);
    assert_eq!(overdue(s1.list_overdue_first_contacts(list()).await.expect("own").into_inner()), vec![b.id.clone()]);
    let mut s2 = app.sales("s2").await;
    assert!(overdue(s2.list_overdue_first_contacts(list()).await.expect("none").into_inner()).is_empty());

    // Issue 14 (CUS-4): s1 made contact with a, so a is not freed by the
    // deadline passing; a plain reassignment is refused and nothing moves.
    let plain = |id: &str| pb::AssignOwnerRequest {
        request_id: rid(),
        customer_id: id.into(),
        owner_id: "s2".into(),
        branch: String::new(),
        reason: String::new(),
        etag: String::new(),
        override_first_contact_window: false,
    };
    let err = mgr.assign_owner(plain(&a.id)).await.expect_err("owner in contact");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "OWNER_IN_CONTACT"));
    assert_eq!(app.get(&a.id).await.owner_id, "s1");

    // After the deadline a manager may reassign b without an override or a reason.
    mgr.assign_owner(plain(&b.id)).await.expect("reassign after the deadline");
    assert!(overdue(mgr.list_overdue_first_contacts(list()).await.expect("list").into_inner()).is_empty());
    let fresh = app.get(&b.id).await;
    assert!(fresh.first_contact_time.is_none() && fresh.first_contact_due_time.is_some(), "s2's clock starts");
    let history = mgr
        .list_ownership_history(pb::ListOwnershipHistoryRequest { customer_id: b.id.clone() })
        .await
        .expect("history")
        .into_inner()
        .records;
    let last = history.last().expect("the reassignment");
    assert!(last.reason.starts_with("first contact overdue since"), "{}", last.reason);
    assert!(!last.first_contact_override);
}

#[tokio::test]
async fn reassigning_inside_the_window_needs_the_override() {
    let app = App::new().await;
    let mut mgr = app.manager().await;
    let c = app.create(&mut mgr, pb::Customer { owner_id: "s1".into(), ..org("甲", "R") }).await;
    let req = |over: bool| pb::AssignOwnerRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        owner_id: "s2".into(),
        branch: String::new(),
        reason: "s1 on leave".into(),
        etag: String::new(),
        override_first_contact_window: over,
    };
    let err = mgr.assign_owner(req(false)).await.expect_err("window open");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "FIRST_CONTACT_WINDOW_OPEN");
    assert_eq!(app.get(&c.id).await.owner_id, "s1");
    mgr.assign_owner(req(true)).await.expect("override");
    assert_eq!(app.get(&c.id).await.owner_id, "s2");
    let history = mgr
        .list_ownership_history(pb::ListOwnershipHistoryRequest { customer_id: c.id.clone() })
        .await
        .expect("history")
        .into_inner()
        .records;
    let last = history.last().expect("the reassignment");
    assert_eq!((last.reason.as_str(), last.first_contact_override), ("s1 on leave", true), "recorded with the change");
}

#[tokio::test]
async fn a_lead_already_held_by_a_participant_is_handed_out_afresh() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    app.create(&mut s1, org("老客户", "R")).await;
    let held = app.create(&mut s1, org("展会线索甲", "EXPO")).await;
    let mut mgr = app.manager().await;
    let fresh = app.create(&mut mgr, org("展会线索乙", "EXPO")).await;
    let resp = mgr
        .distribute_leads(pb::DistributeLeadsRequest {
            request_id: rid(),
            campaign: "expo".into(),
            customer_ids: vec![held.id.clone(), fresh.id.clone()],
            salespeople: vec![sp("s1", 1), sp("s2", 1)],
        })
        .await
        .expect("distribute")
        .into_inner();
    let loads: Vec<(i64, i64)> = resp.loads.iter().map(|l| (l.owned_before, l.owned_after)).collect();
    assert_eq!(loads, vec![(1, 2), (0, 1)], "the held lead is not counted twice");
    let owned: Vec<(String, i64)> = sqlx::query_as(
        "SELECT owner_id, count(*) FROM customers.customers WHERE owner_id IN ('s1', 's2') GROUP BY owner_id ORDER BY owner_id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("counts");
    assert_eq!(owned, vec![("s1".into(), 2), ("s2".into(), 1)], "the response matches what is stored");
}

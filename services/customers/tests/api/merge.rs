//! CUS-2 merge: everything moves to the survivor, the merged id keeps resolving.

use crm_proto::customers::v1 as pb;
use tonic::Code;

use crate::helpers::{App, assert_invalid, merge, org, reason, rid};

#[tokio::test]
async fn a_merge_moves_everything_and_the_old_id_resolves_to_the_survivor() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let survivor =
        app.create(&mut s1, pb::Customer { tags: vec!["燃气".into()], ..org("北京燃气集团", "CN-BJ") }).await;
    let dup = app
        .create(
            &mut s1,
            pb::Customer {
                registration_number: "91110000MERGE0001X".into(),
                phone: "13800138000".into(),
                tags: vec!["国企".into()],
                contacts: vec![pb::Contact { name: "王经理".into(), ..Default::default() }],
                addresses: vec![pb::Address { kind: 1, street: "建国路 88 号".into(), ..Default::default() }],
                ..org("北京燃气集团公司", "CN-BJ")
            },
        )
        .await;
    s1.log_interaction(pb::LogInteractionRequest {
        request_id: rid(),
        interaction: Some(pb::Interaction {
            customer_id: dup.id.clone(),
            channel: 1,
            summary: "电话".into(),
            ..Default::default()
        }),
        follow_up_id: String::new(),
    })
    .await
    .expect("interaction");
    s1.plan_visit(pb::PlanVisitRequest {
        request_id: rid(),
        visit: Some(pb::Visit {
            customer_id: dup.id.clone(),
            purpose: "拜访".into(),
            plan_time: Some(crm_platform::proto_time::to_proto(chrono::Utc::now())),
            ..Default::default()
        }),
    })
    .await
    .expect("visit");

    let mut mgr = app.manager().await;
    let merged = mgr
        .merge_customers(merge(&survivor.id, &dup.id))
        .await
        .expect("merge")
        .into_inner()
        .survivor
        .expect("survivor");
    assert_eq!(merged.id, survivor.id);
    assert_eq!(merged.merged_from, vec![dup.id.clone()]);
    assert_eq!(merged.contacts.len(), 1);
    assert_eq!(merged.addresses.len(), 1);
    assert_eq!(merged.registration_number, "91110000MERGE0001X", "the survivor takes what it lacked");
    assert_eq!(merged.phone, "+8613800138000");
    assert_eq!(merged.tags, vec!["燃气".to_string(), "国企".to_string()]);

    // The old id resolves to the survivor, for reads and for changes.
    assert_eq!(app.get(&dup.id).await, merged);
    let listed = mgr.list_customers(pb::ListCustomersRequest::default()).await.expect("list").into_inner();
    assert_eq!(listed.customers.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![survivor.id.clone()]);
    let inter = mgr
        .list_interactions(pb::ListInteractionsRequest { customer_id: dup.id.clone(), ..Default::default() })
        .await
        .expect("interactions")
        .into_inner();
    assert_eq!(inter.interactions.len(), 1);
    assert_eq!(inter.interactions[0].customer_id, survivor.id);
    let visits =
        mgr.list_visits(pb::ListVisitsRequest { customer_id: survivor.id.clone() }).await.expect("visits").into_inner();
    assert_eq!(visits.visits.len(), 1);
    let added = s1
        .add_contact(pb::AddContactRequest {
            request_id: rid(),
            customer_id: dup.id.clone(),
            contact: Some(pb::Contact { name: "李四".into(), ..Default::default() }),
            etag: String::new(),
        })
        .await
        .expect("add through the old id")
        .into_inner();
    assert_eq!(added.customer.expect("customer").id, survivor.id);

    // The event the other services consume is recorded with the change.
    let bodies: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM customers.outbox WHERE event_type = 'customer.merged'")
            .fetch_all(&app.pool)
            .await
            .expect("outbox");
    assert_eq!(bodies.len(), 1);
    let event = <crm_events::pb::Event as prost::Message>::decode(bodies[0].as_slice()).expect("protobuf body");
    match event.payload {
        Some(crm_events::Payload::CustomersMerged(m)) => {
            assert_eq!((m.survivor_id.as_str(), m.merged_id.as_str()), (survivor.id.as_str(), dup.id.as_str()));
        }
        other => panic!("unexpected payload {other:?}"),
    }

    let err = mgr.merge_customers(merge(&survivor.id, &dup.id)).await.expect_err("twice");
    assert_eq!(reason(&err), "ALREADY_MERGED");
}

#[tokio::test]
async fn chains_resolve_to_the_last_survivor() {
    let app = App::new().await;
    let mut mgr = app.manager().await;
    let a = app.create(&mut mgr, org("甲", "R")).await;
    let b = app.create(&mut mgr, org("乙", "R")).await;
    let c = app.create(&mut mgr, org("丙", "R")).await;
    mgr.merge_customers(merge(&b.id, &a.id)).await.expect("a into b");
    let last = mgr.merge_customers(merge(&c.id, &b.id)).await.expect("b into c").into_inner().survivor.expect("c");
    let mut from = last.merged_from.clone();
    from.sort();
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    assert_eq!(from, want);
    assert_eq!(app.get(&a.id).await.id, c.id);
}

#[tokio::test]
async fn merges_are_for_managers_and_refuse_bad_pairs() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let a = app.create(&mut s1, org("甲", "R")).await;
    let b = app.create(&mut s1, org("乙", "R")).await;
    assert_eq!(s1.merge_customers(merge(&a.id, &b.id)).await.expect_err("sales").code(), Code::PermissionDenied);
    let mut mgr = app.manager().await;
    let err = mgr.merge_customers(merge(&a.id, &a.id)).await.expect_err("self");
    assert_invalid(&err, "merged_id");
    let err = mgr
        .merge_customers(pb::MergeCustomersRequest { reason: " ".into(), ..merge("x", &b.id) })
        .await
        .expect_err("bad");
    assert_invalid(&err, "survivor_id");
    assert_invalid(&err, "reason");
    let err = mgr.merge_customers(merge(&a.id, &uuid::Uuid::now_v7().to_string())).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    // Plans of the same year would collide.
    for id in [&a.id, &b.id] {
        mgr.set_classification(pb::SetClassificationRequest {
            request_id: rid(),
            customer_id: id.clone(),
            grade: None,
            value_tier: Some(pb::ValueTier::Key as i32),
            service_level: None,
            reason: "key".into(),
            etag: String::new(),
        })
        .await
        .expect("key");
        s1.create_account_plan(pb::CreateAccountPlanRequest {
            request_id: rid(),
            plan: Some(pb::AccountPlan {
                customer_id: id.clone(),
                year: 2027,
                strategy: "x".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("plan");
    }
    let err = mgr.merge_customers(merge(&a.id, &b.id)).await.expect_err("plans");
    assert_eq!(reason(&err), "PLAN_CONFLICT");
    assert_eq!(app.get(&b.id).await.id, b.id, "nothing merged");
}

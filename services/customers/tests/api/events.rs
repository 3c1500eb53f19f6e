//! what the customers service publishes, written with each change.

use crm_events::{Payload, pb as ev};
use crm_proto::customers::v1 as pb;
use crm_testkit::Role;

use crate::helpers::{App, mask, org, rid};

async fn outbox(app: &App) -> Vec<(String, Payload)> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT event_type, body FROM customers.outbox ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .expect("outbox");
    rows.into_iter()
        .map(|(kind, body)| {
            let e = <ev::Event as prost::Message>::decode(body.as_slice()).expect("protobuf body");
            (kind, e.payload.expect("payload"))
        })
        .collect()
}

#[tokio::test]
async fn registration_updates_stage_and_tier_changes_are_published_with_the_change() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("北京燃气", "CN-BJ")).await;
    let c = s1
        .update_customer(pb::UpdateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer { id: c.id.clone(), phone: "13800138000".into(), ..Default::default() }),
            update_mask: mask(&["phone"]),
            etag: c.etag.clone(),
        })
        .await
        .expect("update")
        .into_inner()
        .customer
        .unwrap();
    s1.change_stage(pb::ChangeStageRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        stage: pb::LifecycleStage::Active as i32,
        reason: "first order".into(),
        etag: String::new(),
    })
    .await
    .expect("stage");
    app.client(&[Role::SalesManager], "mgr-bj", Some("bj"))
        .await
        .set_classification(pb::SetClassificationRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            value_tier: Some(pb::ValueTier::Key as i32),
            reason: "annual contract".into(),
            ..Default::default()
        })
        .await
        .expect("classify");

    let events = outbox(&app).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["customer.registered", "customer.updated", "customer.stage_changed", "customer.tier_changed"]);
    match &events[0].1 {
        Payload::CustomerRegistered(r) => {
            assert_eq!((r.customer_id.as_str(), r.branch.as_str(), r.owner_id.as_str()), (c.id.as_str(), "bj", "s1"));
        }
        other => panic!("{other:?}"),
    }
    // Field names only: the new phone number itself is not in the event (CUS-13).
    match &events[1].1 {
        Payload::CustomerUpdated(u) => assert_eq!(u.fields, ["phone"]),
        other => panic!("{other:?}"),
    }
    match &events[2].1 {
        Payload::CustomerStageChanged(s) => {
            assert_eq!((s.from_stage.as_str(), s.to_stage.as_str()), ("prospect", "active"))
        }
        other => panic!("{other:?}"),
    }
    match &events[3].1 {
        Payload::CustomerTierChanged(t) => {
            assert_eq!((t.from_tier.as_str(), t.to_tier.as_str(), t.automatic), ("potential", "key", false));
            assert_eq!(t.changed_by, "mgr-bj");
        }
        other => panic!("{other:?}"),
    }

    // A refused change publishes nothing.
    let err = s1
        .change_stage(pb::ChangeStageRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            stage: pb::LifecycleStage::Prospect as i32,
            reason: "back".into(),
            etag: String::new(),
        })
        .await
        .expect_err("illegal");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(outbox(&app).await.len(), 4);
}

//! request_id: retries return the first result and change nothing.

use crm_proto::customers::v1 as pb;
use tonic::Code;

use crate::helpers::{App, mask, org, reason, rid};

#[tokio::test]
async fn a_retried_create_returns_the_first_result_and_one_row() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let req = pb::CreateCustomerRequest {
        request_id: rid(),
        customer: Some(org("甲公司", "CN-BJ")),
        confirm_not_duplicate: false,
    };
    let first = s1.create_customer(req.clone()).await.expect("first").into_inner();
    let again = s1.create_customer(req.clone()).await.expect("retry").into_inner();
    assert_eq!(first, again);
    assert!(first.customer.is_some());
    assert_eq!(app.count("customers").await, 1);
    assert_eq!(app.count("idempotency_keys").await, 1);

    // The same key with another body is refused.
    let err = s1
        .create_customer(pb::CreateCustomerRequest { customer: Some(org("乙公司", "CN-BJ")), ..req.clone() })
        .await
        .expect_err("reused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
    // ... and by someone else.
    let mut s2 = app.sales("s2").await;
    let err = s2.create_customer(req).await.expect_err("other caller");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn concurrent_retries_create_one_customer() {
    let app = App::new().await;
    let req = pb::CreateCustomerRequest {
        request_id: rid(),
        customer: Some(org("并发公司", "CN-BJ")),
        confirm_not_duplicate: true,
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = app.sales("s1").await;
        let r = req.clone();
        tasks.push(tokio::spawn(async move { c.create_customer(r).await.map(|r| r.into_inner()) }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task").expect("every retry succeeds").customer.expect("customer").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all retries see the same customer");
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn retried_changes_apply_once() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "CN-BJ")).await;

    let add = pb::AddContactRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        contact: Some(pb::Contact { name: "王五".into(), ..Default::default() }),
        etag: c.etag.clone(),
    };
    let first = s1.add_contact(add.clone()).await.expect("first").into_inner();
    // The retry carries the old etag, yet succeeds: it is the same call.
    let again = s1.add_contact(add).await.expect("retry").into_inner();
    assert_eq!(first, again);
    assert_eq!(app.count("contacts").await, 1);

    let upd = pb::UpdateCustomerRequest {
        request_id: rid(),
        customer: Some(pb::Customer { id: c.id.clone(), summary: "一次".into(), ..Default::default() }),
        update_mask: mask(&["summary"]),
        etag: String::new(),
    };
    let u1 = s1.update_customer(upd.clone()).await.expect("update").into_inner();
    let u2 = s1.update_customer(upd).await.expect("retry").into_inner();
    assert_eq!(u1, u2);
    assert_eq!(app.get(&c.id).await.etag, u1.customer.expect("customer").etag, "applied once");

    let stage = pb::ChangeStageRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        stage: pb::LifecycleStage::Active as i32,
        reason: String::new(),
        etag: String::new(),
    };
    s1.change_stage(stage.clone()).await.expect("stage");
    s1.change_stage(stage).await.expect("a retry is not STAGE_UNCHANGED");
    assert_eq!(app.count("stage_history").await, 2);
}

#[tokio::test]
async fn keys_are_kept_for_the_ttl_then_purged() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    app.create(&mut s1, org("甲公司", "CN-BJ")).await;
    app.create(&mut s1, org("乙公司", "CN-BJ")).await;
    sqlx::query(
        "UPDATE customers.idempotency_keys SET created_at = now() - interval '73 hours' \
         WHERE request_id = (SELECT request_id FROM customers.idempotency_keys ORDER BY created_at LIMIT 1)",
    )
    .execute(&app.pool)
    .await
    .expect("age a key");
    let ttl = std::time::Duration::from_secs(72 * 3600);
    let purged =
        crm_platform::idempotency::purge_once(&app.pool, "customers.idempotency_keys", ttl).await.expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(app.count("idempotency_keys").await, 1, "the recent key stays");
    assert_eq!(app.count("customers").await, 2, "purging keys never touches data");
}

#[tokio::test]
async fn the_schema_keeps_its_own_migration_history() {
    let app = App::new().await;
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM customers._sqlx_migrations")
        .fetch_one(&app.pool)
        .await
        .expect("customers._sqlx_migrations");
    assert!(own >= 1);
    let public: Option<String> = sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text")
        .fetch_one(&app.pool)
        .await
        .expect("lookup");
    assert_eq!(public, None, "nothing is written outside the service's schema");
}

//! CUS-13 audit trail: every change and every read of contact details, with
//! who, what and when; personal values never copied into it.

use crm_proto::customers::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, mask, org, rid};

#[tokio::test]
async fn changes_and_reads_are_on_the_trail_with_who_and_what() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app
        .create(
            &mut s1,
            pb::Customer {
                phone: "13800138000".into(),
                contacts: vec![pb::Contact { name: "王经理".into(), ..Default::default() }],
                ..org("甲公司", "R")
            },
        )
        .await;
    let mut req = tonic::Request::new(pb::UpdateCustomerRequest {
        request_id: rid(),
        customer: Some(pb::Customer { id: c.id.clone(), phone: "13900139000".into(), ..Default::default() }),
        update_mask: mask(&["phone"]),
        etag: String::new(),
    });
    req.metadata_mut().insert("x-request-id", "audit-me-1".parse().expect("ascii"));
    s1.update_customer(req).await.expect("update");
    let mut mgr = app.manager().await;
    mgr.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect("read");
    mgr.list_customers(pb::ListCustomersRequest::default()).await.expect("list");

    let mut auditor = app.client(&[Role::Auditor], "audit", None).await;
    let events = auditor
        .list_audit_events(pb::ListAuditEventsRequest {
            customer_id: c.id.clone(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("trail")
        .into_inner()
        .events;
    let seen: Vec<(String, String, String, String)> = events
        .iter()
        .rev()
        .map(|e| (e.actor.clone(), e.action.clone(), e.operation.clone(), e.table_name.clone()))
        .collect();
    let t = |a: &str, b: &str, c: &str, d: &str| (a.to_string(), b.to_string(), c.to_string(), d.to_string());
    assert_eq!(
        seen,
        vec![
            t("s1", "CreateCustomer", "insert", "customers"),
            t("s1", "CreateCustomer", "insert", "contacts"),
            t("s1", "UpdateCustomer", "update", "customers"),
            t("mgr-bj", "GetCustomer", "read", "customers"),
            t("mgr-bj", "ListCustomers", "read", "customers"),
        ]
    );
    let update = events.iter().find(|e| e.action == "UpdateCustomer").expect("update event");
    assert!(update.changed_columns.contains(&"phone".to_string()), "{:?}", update.changed_columns);
    assert_eq!(update.request_id, "audit-me-1");
    // Which columns changed, never their contents.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT coalesce(array_to_string(changed, ','), '') FROM customers.audit_log")
            .fetch_all(&app.pool)
            .await
            .expect("raw");
    assert!(stored.iter().all(|s| !s.contains("139")), "no phone numbers in the trail");

    // Paging, newest first.
    let first = auditor
        .list_audit_events(pb::ListAuditEventsRequest {
            customer_id: c.id.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(
        first.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        events.iter().take(2).map(|e| e.id).collect::<Vec<_>>()
    );
    let rest = auditor
        .list_audit_events(pb::ListAuditEventsRequest {
            customer_id: c.id.clone(),
            page_size: 10,
            page_token: first.next_page_token,
        })
        .await
        .expect("rest")
        .into_inner();
    assert_eq!(rest.events.len(), 3);

    // Changes made around the service are on the trail too.
    sqlx::query("UPDATE customers.customers SET summary = 'fixed by hand' WHERE id = $1::uuid")
        .bind(&c.id)
        .execute(&app.pool)
        .await
        .expect("direct");
    let direct: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customers.audit_log WHERE action = 'direct' AND 'summary' = ANY(changed)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("direct event");
    assert_eq!(direct, 1);
}

#[tokio::test]
async fn only_auditors_and_senior_staff_read_the_trail() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "R")).await;
    for role in [Role::Sales, Role::SalesManager, Role::ServiceDesk] {
        let mut client = app.client(&[role], "x", Some("bj")).await;
        let err = client
            .list_audit_events(pb::ListAuditEventsRequest { customer_id: c.id.clone(), ..Default::default() })
            .await
            .expect_err("denied");
        assert_eq!(err.code(), Code::PermissionDenied, "{role}");
    }
    let mut admin = app.admin().await;
    let err = admin
        .list_audit_events(pb::ListAuditEventsRequest { customer_id: "x".into(), ..Default::default() })
        .await
        .expect_err("bad id");
    crate::helpers::assert_invalid(&err, "customer_id");
}

//! Authentication and CUS-13 visibility over real gRPC.

use crm_proto::customers::v1 as pb;
use crm_testkit::{Bearer, Role};
use tonic::Code;

use crate::helpers::{App, org, reason, rid};

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = App::new().await;
    let req = || pb::ListCustomersRequest::default();
    let mut none = app.client_with(Bearer::none()).await;
    let err = none.list_customers(req()).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut garbage = app.client_with(Bearer::new("not.a.jwt")).await;
    assert_eq!(garbage.list_customers(req()).await.expect_err("garbage").code(), Code::Unauthenticated);

    let foreign = crm_platform::TokenKeys::hs256(b"some-other-key-of-32-bytes-or-more!!")
        .expect("keys")
        .mint("x", &[Role::Admin], None, std::time::Duration::from_secs(60))
        .expect("token");
    let mut forged = app.client_with(Bearer::new(&foreign)).await;
    assert_eq!(forged.list_customers(req()).await.expect_err("forged").code(), Code::Unauthenticated);

    // Nothing is written by an unauthenticated create.
    let err = none
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("甲", "R")),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(app.count("customers").await, 0);
}

#[tokio::test]
async fn roles_without_a_need_are_denied() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲", "CN-BJ")).await;
    for role in [Role::Technician, Role::MeterReader, Role::Finance, Role::QualityManager] {
        let mut client = app.client(&[role], "x", Some("bj")).await;
        let err = client.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect_err("denied");
        assert_eq!(err.code(), Code::PermissionDenied, "{role}");
        assert_eq!(reason(&err), "ROLE_NOT_ALLOWED");
    }
    // The auditor reads everything and changes nothing.
    let mut auditor = app.client(&[Role::Auditor], "audit", None).await;
    auditor.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect("auditor reads");
    let err = auditor
        .update_customer(pb::UpdateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer { id: c.id.clone(), summary: "x".into(), ..Default::default() }),
            update_mask: crate::helpers::mask(&["summary"]),
            etag: String::new(),
        })
        .await
        .expect_err("auditor writes");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = auditor
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("乙", "R")),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("auditor creates");
    assert_eq!(err.code(), Code::PermissionDenied);
    // The service desk reads its branch but does not edit.
    let mut desk = app.client(&[Role::ServiceDesk], "desk", Some("bj")).await;
    desk.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect("desk reads");
    let err = desk
        .change_stage(pb::ChangeStageRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            stage: 2,
            reason: String::new(),
            etag: String::new(),
        })
        .await
        .expect_err("desk edits");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(app.get(&c.id).await, c);
}

#[tokio::test]
async fn a_salesperson_cannot_see_or_touch_another_salespersons_customer() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    let c = app.create(&mut s1, org("甲", "CN-BJ")).await;
    let mine = app.create(&mut s2, org("乙", "CN-BJ")).await;

    let err = s2.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect_err("hidden");
    assert_eq!(err.code(), Code::NotFound, "existence is not revealed");
    let listed = s2.list_customers(pb::ListCustomersRequest::default()).await.expect("list").into_inner();
    assert_eq!(listed.customers.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![mine.id.clone()]);
    let listed = s2
        .list_customers(pb::ListCustomersRequest { owner_id: "s1".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.customers.is_empty(), "filtering by another owner shows nothing");
    let err = s2
        .add_contact(pb::AddContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: Some(pb::Contact { name: "x".into(), ..Default::default() }),
            etag: String::new(),
        })
        .await
        .expect_err("hidden");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.count("contacts").await, 0);

    // Managers see their branch only; a branch role without a branch is refused.
    let mut bj = app.manager().await;
    assert_eq!(
        bj.list_customers(pb::ListCustomersRequest::default()).await.expect("bj").into_inner().customers.len(),
        2
    );
    let mut sh = app.client(&[Role::BranchManager], "mgr-sh", Some("sh")).await;
    assert!(
        sh.list_customers(pb::ListCustomersRequest::default()).await.expect("sh").into_inner().customers.is_empty()
    );
    let err = sh.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect_err("other branch");
    assert_eq!(err.code(), Code::NotFound);
    let mut nobranch = app.client(&[Role::BranchManager], "mgr-x", None).await;
    let err = nobranch.list_customers(pb::ListCustomersRequest::default()).await.expect_err("no branch");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "BRANCH_REQUIRED");
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let app = App::new().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.svc.channel().await);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest { service: "crm.customers.v1.CustomerService".into() })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(resp.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
}

#[tokio::test]
async fn the_request_id_is_taken_from_the_caller_or_minted_and_returned() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let mut req = tonic::Request::new(pb::ListCustomersRequest::default());
    req.metadata_mut().insert("x-request-id", "trace-me-123".parse().expect("ascii"));
    let resp = admin.list_customers(req).await.expect("list");
    assert_eq!(resp.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-me-123"));
    let resp = admin.list_customers(pb::ListCustomersRequest::default()).await.expect("list");
    let minted = resp.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(uuid::Uuid::try_parse(&minted).is_ok(), "a request id is minted: {minted:?}");
}

//! Who may call what (policy table) and what a refusal looks like.

use crm_proto::dispatch::v1 as pb;
use crm_testkit::{Bearer, Role};
use tonic::Code;

use crate::helpers::{App, maintenance, rid};

#[tokio::test]
async fn roles_are_checked_per_rpc() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let w = app.create(maintenance(&cust)).await;
    let get = || pb::GetWorkOrderRequest { id: w.id.clone() };

    // Sales and cashiers do not see dispatch; auditors read but never write.
    for roles in [&[Role::Sales][..], &[Role::Cashier]] {
        let err = app.client(roles, "x").await.get_work_order(get()).await.expect_err("no read");
        assert_eq!(err.code(), Code::PermissionDenied, "{roles:?}");
    }
    let mut auditor = app.client(&[Role::Auditor], "aud").await;
    assert!(auditor.get_work_order(get()).await.is_ok());
    let err = auditor.create_work_order(maintenance(&cust)).await.expect_err("auditor writes");
    assert_eq!(err.code(), Code::PermissionDenied);

    let approve = || pb::ApproveWorkOrderRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: String::new(),
        note: String::new(),
    };
    for roles in [&[Role::Technician][..], &[Role::ServiceDesk], &[Role::Auditor], &[Role::Admin]] {
        let err = app.client(roles, "x").await.approve_work_order(approve()).await.expect_err("approve");
        assert_eq!(err.code(), Code::PermissionDenied, "{roles:?}");
    }
    let tech = pb::CreateTechnicianRequest {
        request_id: rid(),
        technician: Some(pb::Technician {
            user_sub: "t".into(),
            display_name: "T".into(),
            territory: "north".into(),
            daily_capacity: 1,
            ..Default::default()
        }),
    };
    for roles in [&[Role::Dispatcher][..], &[Role::Technician]] {
        let err = app.client(roles, "x").await.create_technician(tech.clone()).await.expect_err("technician");
        assert_eq!(err.code(), Code::PermissionDenied, "{roles:?}");
    }
    let err = app
        .client(&[Role::Technician], "t")
        .await
        .list_at_risk(pb::ListAtRiskRequest::default())
        .await
        .expect_err("technician plans");
    assert_eq!(err.code(), Code::PermissionDenied);
    let anon = crm_proto::dispatch::v1::dispatch_service_client::DispatchServiceClient::with_interceptor(
        app.dispatch.channel().await,
        Bearer::none(),
    )
    .get_work_order(get())
    .await;
    assert_eq!(anon.expect_err("anonymous").code(), Code::Unauthenticated);
    // Refused calls wrote nothing.
    assert_eq!(app.get(&w.id).await.state, pb::WorkOrderState::Draft as i32);
    assert_eq!(app.count("technicians").await, 0);
    assert_eq!(app.count("work_orders").await, 1);
    assert_eq!(app.count("idempotency_keys").await, 1);
}

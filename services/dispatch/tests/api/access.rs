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

/// Issue 14 (CUS-13, need to know): a technician sees only the work orders
/// assigned to them, with the customers' names, phones and addresses; a
/// dispatcher whose token names a branch sees that branch's customers'
/// orders; the office without a branch sees all.
#[tokio::test]
async fn technicians_see_their_own_orders_and_dispatchers_their_branch() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let t1 = app.technician("t1", &["gps"], "north", 4).await;
    app.technician("t2", &["gps"], "north", 4).await;
    let mine = app.approved_maintenance(&cust).await;
    let mine = app.assign(&mine, &t1.id).await;
    let other = app.create(maintenance(&cust)).await;
    let shanghai = app.customer_in("上海乙", "sh").await;
    let south = app.create(maintenance(&shanghai)).await;
    assert_eq!((mine.branch.as_str(), south.branch.as_str()), ("bj", "sh"));

    let ids = |r: pb::ListWorkOrdersResponse| r.work_orders.into_iter().map(|w| w.id).collect::<Vec<_>>();
    let list = || pb::ListWorkOrdersRequest::default();
    let mut tech1 = app.tech("t1").await;
    assert_eq!(ids(tech1.list_work_orders(list()).await.expect("own").into_inner()), vec![mine.id.clone()]);
    tech1.get_work_order(pb::GetWorkOrderRequest { id: mine.id.clone() }).await.expect("own order");
    let err = tech1.get_work_order(pb::GetWorkOrderRequest { id: other.id.clone() }).await.expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);
    let mut tech2 = app.tech("t2").await;
    assert!(ids(tech2.list_work_orders(list()).await.expect("none").into_inner()).is_empty());
    let err = tech2.get_work_order(pb::GetWorkOrderRequest { id: mine.id.clone() }).await.expect_err("t1's");
    assert_eq!(err.code(), Code::NotFound);

    let mut north = app.client_in(&[Role::Dispatcher], "disp-n", "bj").await;
    let seen = ids(north.list_work_orders(list()).await.expect("branch").into_inner());
    assert_eq!(seen, vec![mine.id.clone(), other.id.clone()]);
    let err = north.get_work_order(pb::GetWorkOrderRequest { id: south.id.clone() }).await.expect_err("south");
    assert_eq!(err.code(), Code::NotFound);
    let all = ids(app.dispatcher().await.list_work_orders(list()).await.expect("office").into_inner());
    assert_eq!(all, vec![mine.id.clone(), other.id.clone(), south.id.clone()]);
}

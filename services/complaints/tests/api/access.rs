//! Who may call what (policy table) and what a refusal looks like.

use crm_proto::complaints::v1 as pb;
use crm_testkit::{Bearer, Role};
use tonic::Code;

use crate::helpers::{App, registration, rid};

#[tokio::test]
async fn roles_are_checked_per_rpc() {
    let app = App::new().await;
    let cust = app.customer("甲", None, None).await;
    let c = app.register(&cust, pb::Category::Billing).await;
    let get = || pb::GetComplaintRequest { id: c.id.clone(), number: String::new() };

    // Sales do not read complaints here; auditors read but never write.
    let mut sales = app.client(&[Role::Sales], "s1").await;
    assert_eq!(sales.get_complaint(get()).await.expect_err("sales").code(), Code::PermissionDenied);
    let mut auditor = app.client(&[Role::Auditor], "aud").await;
    assert!(auditor.get_complaint(get()).await.is_ok());
    assert!(
        auditor
            .get_complaint_stats(pb::GetComplaintStatsRequest {
                from: Some(crm_platform::proto_time::to_proto(chrono::Utc::now() - chrono::Duration::days(30))),
                to: Some(crm_platform::proto_time::to_proto(chrono::Utc::now())),
                period: 0,
            })
            .await
            .is_ok()
    );
    let err = auditor.register_complaint(registration(&cust, pb::Category::Billing)).await.expect_err("auditor");
    assert_eq!(err.code(), Code::PermissionDenied);

    let accept =
        || pb::AcceptComplaintRequest { request_id: rid(), id: c.id.clone(), etag: String::new(), note: String::new() };
    for roles in [&[Role::DeptHead][..], &[Role::Admin], &[Role::QualityManager], &[Role::Auditor]] {
        let err = app.client(roles, "x").await.accept_complaint(accept()).await.expect_err("not the desk");
        assert_eq!(err.code(), Code::PermissionDenied, "{roles:?}");
    }
    let err =
        app.desk().await.get_complaint_stats(pb::GetComplaintStatsRequest::default()).await.expect_err("desk reports");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app.client_with(Bearer::none()).await.get_complaint(get()).await.expect_err("anonymous");
    assert_eq!(err.code(), Code::Unauthenticated);
    // A refused call wrote nothing.
    assert_eq!(app.get(&c.id).await.state, pb::ComplaintState::Registered as i32);
    assert_eq!(app.count("idempotency_keys").await, 1);
}

//! ChangeStage (CUS-9), SetClassification (CUS-8), AssignOwner (CUS-3).

use crm_proto::customers::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, assert_invalid, org, reason, rid};

fn stage(id: &str, s: pb::LifecycleStage) -> pb::ChangeStageRequest {
    pb::ChangeStageRequest {
        request_id: rid(),
        customer_id: id.into(),
        stage: s as i32,
        reason: "test".into(),
        etag: String::new(),
    }
}

#[tokio::test]
async fn the_lifecycle_moves_prospect_active_dormant_and_back() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲", "CN-BJ")).await;

    let err = s1.change_stage(stage(&c.id, pb::LifecycleStage::Dormant)).await.expect_err("never served");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ILLEGAL_STAGE_CHANGE");

    for to in [pb::LifecycleStage::Active, pb::LifecycleStage::Dormant, pb::LifecycleStage::Active] {
        let got = s1.change_stage(stage(&c.id, to)).await.expect("move").into_inner().customer.expect("customer");
        assert_eq!(got.stage, to as i32);
    }
    assert_eq!(app.count("stage_history").await, 4);

    let err = s1.change_stage(stage(&c.id, pb::LifecycleStage::Terminated)).await.expect_err("not by stage change");
    assert_eq!(reason(&err), "TERMINATION_REQUIRES_PROCESS");
    let err = s1.change_stage(stage(&c.id, pb::LifecycleStage::Active)).await.expect_err("same");
    assert_eq!(reason(&err), "STAGE_UNCHANGED");
    let err = s1.change_stage(stage(&c.id, pb::LifecycleStage::Unspecified)).await.expect_err("unspecified");
    assert_invalid(&err, "stage");
    let err = s1.change_stage(stage("nope", pb::LifecycleStage::Active)).await.expect_err("bad id");
    assert_invalid(&err, "customer_id");
    assert_eq!(app.get(&c.id).await.stage, pb::LifecycleStage::Active as i32);
    assert_eq!(app.count("stage_history").await, 4);
}

#[tokio::test]
async fn managers_classify_and_the_history_is_kept() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲", "CN-BJ")).await;
    let req = |grade, tier, level, why: &str| pb::SetClassificationRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        grade,
        value_tier: tier,
        service_level: level,
        reason: why.into(),
        etag: String::new(),
    };

    // A salesperson may not classify (CUS-8: set by a manager).
    let err =
        s1.set_classification(req(Some(pb::DemandGrade::A as i32), None, None, "I think so")).await.expect_err("sales");
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut mgr = app.manager().await;
    let got = mgr
        .set_classification(req(
            None,
            Some(pb::ValueTier::Vip as i32),
            Some(pb::ServiceLevel::Key as i32),
            "annual revenue > 5M",
        ))
        .await
        .expect("classify")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(got.value_tier, pb::ValueTier::Vip as i32);
    assert_eq!(got.service_level, pb::ServiceLevel::Key as i32);
    assert_eq!(got.grade, pb::DemandGrade::C as i32, "unset fields keep their value");

    for (bad, field) in [
        (req(None, None, None, "nothing"), "grade"),
        (req(Some(0), None, None, "unspecified"), "grade"),
        (req(None, Some(9), None, "unknown"), "value_tier"),
        (req(Some(pb::DemandGrade::A as i32), None, None, " "), "reason"),
    ] {
        let err = mgr.set_classification(bad).await.expect_err("invalid");
        assert_invalid(&err, field);
    }
    let err =
        mgr.set_classification(req(None, Some(pb::ValueTier::Vip as i32), None, "again")).await.expect_err("no change");
    assert_eq!(reason(&err), "CLASSIFICATION_UNCHANGED");
    assert_eq!(app.count("classification_history").await, 1);
    let history: (String, String, String) =
        sqlx::query_as("SELECT value_tier, changed_by, reason FROM customers.classification_history")
            .fetch_one(&app.pool)
            .await
            .expect("history");
    assert_eq!(history, ("vip".into(), "mgr-bj".into(), "annual revenue > 5M".into()));
}

#[tokio::test]
async fn a_manager_reassigns_and_visibility_follows_the_owner() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    let c = app.create(&mut s1, org("甲", "CN-BJ")).await;
    let assign = |owner: &str, branch: &str| pb::AssignOwnerRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        owner_id: owner.into(),
        branch: branch.into(),
        reason: "territory change".into(),
        etag: String::new(),
        override_first_contact_window: false,
    };

    // Only a manager has the final word (CUS-3).
    let err = s2.assign_owner(assign("s2", "")).await.expect_err("sales");
    assert_eq!(err.code(), Code::PermissionDenied);

    // s1 registered the customer and so is in contact with it (CUS-4): only
    // an override with a reason moves it.
    let mut mgr = app.manager().await;
    let err = mgr.assign_owner(assign("s2", "")).await.expect_err("owner in contact");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "OWNER_IN_CONTACT"));
    let err = mgr
        .assign_owner(pb::AssignOwnerRequest {
            reason: " ".into(),
            override_first_contact_window: true,
            ..assign("s2", "")
        })
        .await
        .expect_err("override without a reason");
    assert_invalid(&err, "reason");
    assert_eq!(app.get(&c.id).await.owner_id, "s1", "nothing moved");
    let got = mgr
        .assign_owner(pb::AssignOwnerRequest { override_first_contact_window: true, ..assign("s2", "") })
        .await
        .expect("assign")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(got.owner_id, "s2");
    assert_eq!(got.branch, "bj");
    s2.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect("new owner sees it");
    let err = s1.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect_err("old owner");
    assert_eq!(err.code(), Code::NotFound);

    let err = mgr.assign_owner(assign("s2", "")).await.expect_err("same owner");
    assert_eq!(reason(&err), "OWNER_UNCHANGED");
    let err = mgr.assign_owner(assign("s3", "sh")).await.expect_err("other branch");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "OTHER_BRANCH");
    let err = mgr
        .assign_owner(pb::AssignOwnerRequest { owner_id: " ".into(), reason: "理".repeat(1001), ..assign("", "") })
        .await
        .expect_err("bad");
    assert_invalid(&err, "owner_id");
    assert_invalid(&err, "reason");

    // A senior manager moves it across branches; the bj manager then no longer sees it.
    // s2's first-contact window is open (CUS-4): reassigning now needs the override.
    let mut senior = app.client(&[Role::SeniorManager], "boss", None).await;
    let err = senior.assign_owner(assign("s9", "sh")).await.expect_err("window open");
    assert_eq!(reason(&err), "FIRST_CONTACT_WINDOW_OPEN");
    senior
        .assign_owner(pb::AssignOwnerRequest { override_first_contact_window: true, ..assign("s9", "sh") })
        .await
        .expect("cross-branch with override");
    let err = mgr.get_customer(pb::GetCustomerRequest { id: c.id.clone() }).await.expect_err("left the branch");
    assert_eq!(err.code(), Code::NotFound);

    let owners: Vec<(String, String, String)> =
        sqlx::query_as("SELECT owner_id, branch, assigned_by FROM customers.ownership_history ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .expect("history");
    assert_eq!(
        owners,
        vec![
            ("s1".into(), "bj".into(), "s1".into()),
            ("s2".into(), "bj".into(), "mgr-bj".into()),
            ("s9".into(), "sh".into(), "boss".into()),
        ]
    );
}

#[tokio::test]
async fn a_manager_registers_for_a_salesperson_of_the_branch() {
    let app = App::new().await;
    let mut mgr = app.manager().await;
    let c = app.create(&mut mgr, pb::Customer { owner_id: "s5".into(), ..org("甲", "CN-BJ") }).await;
    assert_eq!((c.owner_id.as_str(), c.branch.as_str(), c.created_by.as_str()), ("s5", "bj", "mgr-bj"));
    let err = mgr
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer { branch: "sh".into(), ..org("乙", "CN-SH") }),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("other branch");
    assert_eq!(reason(&err), "OTHER_BRANCH");
    let mut s1 = app.sales("s1").await;
    let err = s1
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer { owner_id: "s2".into(), ..org("丙", "CN-BJ") }),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("sales registers for themselves");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "OWNER_IS_REGISTRAR");
    assert_eq!(app.count("customers").await, 1);
}

//! CUS-7 visits: every step its own RPC, the right role, in order.

use chrono::{Duration, Utc};
use crm_platform::proto_time::to_proto;
use crm_proto::customers::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, assert_invalid, org, reason, rid};

async fn planned(app: &App, sales: &mut crate::helpers::Client) -> (pb::Customer, pb::Visit) {
    let c = app.create(sales, org("甲公司", "R")).await;
    let v = sales
        .plan_visit(pb::PlanVisitRequest {
            request_id: rid(),
            visit: Some(pb::Visit {
                customer_id: c.id.clone(),
                purpose: "年度合同续签".into(),
                goals: "确认明年用气量".into(),
                attendees: vec!["王经理".into(), "李总".into()],
                plan_time: Some(to_proto(Utc::now() + Duration::days(3))),
                ..Default::default()
            }),
        })
        .await
        .expect("plan")
        .into_inner()
        .visit
        .expect("visit");
    (c, v)
}

#[tokio::test]
async fn a_visit_walks_from_plan_to_confirmed_receipt() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let (_, v) = planned(&app, &mut s1).await;
    assert_eq!(v.state, pb::VisitState::Planned as i32);
    assert_eq!(v.planned_by, "s1");

    let mut branch = app.client(&[Role::BranchManager], "bm-bj", Some("bj")).await;
    let v = branch
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: v.etag.clone() })
        .await
        .expect("approve")
        .into_inner()
        .visit
        .expect("visit");
    assert_eq!((v.state, v.approved_by.as_str()), (pb::VisitState::Approved as i32, "bm-bj"));

    let v = s1
        .record_visit_done(pb::RecordVisitDoneRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            visit_time: None,
            etag: String::new(),
        })
        .await
        .expect("done")
        .into_inner()
        .visit
        .expect("visit");
    assert!(v.minutes_due_time.is_some());
    let v = s1
        .submit_visit_minutes(pb::SubmitVisitMinutesRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            minutes: "双方同意续签，年用气量 120 万方。".into(),
            etag: String::new(),
        })
        .await
        .expect("minutes")
        .into_inner()
        .visit
        .expect("visit");
    assert!(!v.minutes_late);
    let mut mgr = app.manager().await;
    let v = mgr
        .review_visit_minutes(pb::ReviewVisitMinutesRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            etag: String::new(),
        })
        .await
        .expect("review")
        .into_inner()
        .visit
        .expect("visit");
    assert_eq!(v.reviewed_by, "mgr-bj");
    let v = s1
        .send_visit_minutes(pb::SendVisitMinutesRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            etag: String::new(),
        })
        .await
        .expect("send")
        .into_inner()
        .visit
        .expect("visit");
    let v = s1
        .confirm_visit_receipt(pb::ConfirmVisitReceiptRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            confirmed_by: "王经理".into(),
            etag: v.etag.clone(),
        })
        .await
        .expect("receipt")
        .into_inner()
        .visit
        .expect("visit");
    assert_eq!(v.state, pb::VisitState::ReceiptConfirmed as i32);
    assert_eq!(v.receipt_confirmed_by, "王经理");
    assert!(v.approve_time.is_some() && v.review_time.is_some() && v.send_time.is_some() && v.receipt_time.is_some());
    let listed =
        s1.list_visits(pb::ListVisitsRequest { customer_id: v.customer_id.clone() }).await.expect("list").into_inner();
    assert_eq!(listed.visits, vec![v]);
}

#[tokio::test]
async fn steps_need_their_role_and_their_turn() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let (_, v) = planned(&app, &mut s1).await;
    // Only a branch manager approves.
    let err = s1
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: String::new() })
        .await
        .expect_err("sales approves");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing happens out of turn.
    let err = s1
        .submit_visit_minutes(pb::SubmitVisitMinutesRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            minutes: "x".into(),
            etag: String::new(),
        })
        .await
        .expect_err("before the visit");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ILLEGAL_VISIT_STEP");
    let err = s1
        .record_visit_done(pb::RecordVisitDoneRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            visit_time: None,
            etag: String::new(),
        })
        .await
        .expect_err("not approved");
    assert_eq!(reason(&err), "ILLEGAL_VISIT_STEP");
    // A stale etag and a branch manager of another branch change nothing.
    let mut bm = app.client(&[Role::BranchManager], "bm-bj", Some("bj")).await;
    let err = bm
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: "\"9\"".into() })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    let mut other = app.client(&[Role::BranchManager], "bm-sh", Some("sh")).await;
    let err = other
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: String::new() })
        .await
        .expect_err("other branch");
    assert_eq!(err.code(), Code::NotFound);
    let err = bm
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: "x".into(), etag: String::new() })
        .await
        .expect_err("bad id");
    assert_invalid(&err, "visit_id");
    let listed =
        s1.list_visits(pb::ListVisitsRequest { customer_id: v.customer_id.clone() }).await.expect("list").into_inner();
    assert_eq!(listed.visits, vec![v.clone()], "nothing changed");

    // An approval retried with its key is answered once.
    let approve = pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: v.etag.clone() };
    let first = bm.approve_visit(approve.clone()).await.expect("approve").into_inner();
    let again = bm.approve_visit(approve).await.expect("retry").into_inner();
    assert_eq!(first, again);

    let err = s1
        .plan_visit(pb::PlanVisitRequest {
            request_id: rid(),
            visit: Some(pb::Visit { customer_id: v.customer_id.clone(), ..Default::default() }),
        })
        .await
        .expect_err("empty form");
    assert_invalid(&err, "visit.purpose");
    assert_invalid(&err, "visit.plan_time");
}

#[tokio::test]
async fn minutes_later_than_two_working_days_are_flagged() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let (_, v) = planned(&app, &mut s1).await;
    let mut bm = app.client(&[Role::BranchManager], "bm-bj", Some("bj")).await;
    bm.approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: String::new() })
        .await
        .expect("approve");
    // The approval was given a week before the visit (time passes).
    sqlx::query("UPDATE customers.visits SET approved_at = now() - interval '8 days' WHERE id = $1::uuid")
        .bind(&v.id)
        .execute(&app.pool)
        .await
        .expect("time passes");
    let v = s1
        .record_visit_done(pb::RecordVisitDoneRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            visit_time: Some(to_proto(Utc::now() - Duration::days(6))),
            etag: String::new(),
        })
        .await
        .expect("done a week ago")
        .into_inner()
        .visit
        .expect("visit");
    let v = s1
        .submit_visit_minutes(pb::SubmitVisitMinutesRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            minutes: "补交纪要".into(),
            etag: String::new(),
        })
        .await
        .expect("late minutes are accepted")
        .into_inner()
        .visit
        .expect("visit");
    assert!(v.minutes_late, "six days is past two working days");
    let err = s1
        .record_visit_done(pb::RecordVisitDoneRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            visit_time: Some(to_proto(Utc::now() + Duration::days(6))),
            etag: String::new(),
        })
        .await
        .expect_err("future");
    assert_invalid(&err, "visit_time");
}

/// Issue 14 (CUS-7): a visit is approved before it happens. A visit recorded
/// as done before its approval is refused, and so is an approval given
/// after the planned time; nothing changes.
#[tokio::test]
async fn a_visit_happens_after_its_approval() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let (_, v) = planned(&app, &mut s1).await;
    let mut bm = app.client(&[Role::BranchManager], "bm-bj", Some("bj")).await;
    let approved = bm
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: v.id.clone(), etag: String::new() })
        .await
        .expect("approve")
        .into_inner()
        .visit
        .expect("visit");
    let err = s1
        .record_visit_done(pb::RecordVisitDoneRequest {
            request_id: rid(),
            visit_id: v.id.clone(),
            visit_time: Some(to_proto(Utc::now() - Duration::days(4))),
            etag: String::new(),
        })
        .await
        .expect_err("done before it was approved");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "VISIT_BEFORE_APPROVAL"));
    let listed =
        s1.list_visits(pb::ListVisitsRequest { customer_id: v.customer_id.clone() }).await.expect("list").into_inner();
    assert_eq!(listed.visits, vec![approved], "nothing changed");

    // A plan whose time has passed is not approved after the fact.
    let past = s1
        .plan_visit(pb::PlanVisitRequest {
            request_id: rid(),
            visit: Some(pb::Visit {
                customer_id: v.customer_id.clone(),
                purpose: "补登拜访".into(),
                plan_time: Some(to_proto(Utc::now() - Duration::hours(3))),
                ..Default::default()
            }),
        })
        .await
        .expect("plan")
        .into_inner()
        .visit
        .expect("visit");
    let err = bm
        .approve_visit(pb::ApproveVisitRequest { request_id: rid(), visit_id: past.id.clone(), etag: String::new() })
        .await
        .expect_err("approved late");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "VISIT_APPROVAL_LATE"));
    let listed =
        s1.list_visits(pb::ListVisitsRequest { customer_id: v.customer_id.clone() }).await.expect("list").into_inner();
    let still = listed.visits.iter().find(|x| x.id == past.id).expect("the late plan");
    assert_eq!((still.state, still.approved_by.as_str()), (pb::VisitState::Planned as i32, ""), "nothing changed");
}

//! CMP-6: the policy table, committed answer times, the due list and the
//! escalation job.

use chrono::{Duration, Utc};
use crm_platform::proto_time;
use crm_proto::{complaints::v1 as pb, customers::v1 as cpb};
use tonic::Code;

use crate::helpers::{App, assert_invalid, assert_rule, rid};

#[tokio::test]
async fn the_policy_has_spec_defaults_and_only_admins_change_it() {
    let app = App::new().await;
    let policies = app
        .desk()
        .await
        .list_deadline_policies(pb::ListDeadlinePoliciesRequest {})
        .await
        .unwrap()
        .into_inner()
        .policies;
    assert_eq!(policies.len(), 6);
    let general_normal = &policies[0];
    assert_eq!(general_normal.service_level, pb::ServiceLevel::General as i32);
    assert_eq!(general_normal.urgency, pb::Urgency::Normal as i32);
    assert_eq!((general_normal.unit, general_normal.amount), (pb::DeadlineUnit::CalendarDays as i32, 15));
    let general_urgent = &policies[1];
    assert_eq!((general_urgent.unit, general_urgent.amount), (pb::DeadlineUnit::WorkingDays as i32, 3));

    let set = |unit: pb::DeadlineUnit, amount: i32| pb::SetDeadlinePolicyRequest {
        request_id: rid(),
        policy: Some(pb::DeadlinePolicy {
            service_level: pb::ServiceLevel::Key as i32,
            urgency: pb::Urgency::Normal as i32,
            unit: unit as i32,
            amount,
            ..Default::default()
        }),
    };
    let err = app.desk().await.set_deadline_policy(set(pb::DeadlineUnit::WorkingDays, 5)).await.expect_err("desk");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app.admin().await.set_deadline_policy(set(pb::DeadlineUnit::WorkingDays, 0)).await.expect_err("zero");
    assert_invalid(&err, "policy.amount");
    let err = app.admin().await.set_deadline_policy(set(pb::DeadlineUnit::Unspecified, 5)).await.expect_err("unit");
    assert_invalid(&err, "policy.unit");
    let p = app
        .admin()
        .await
        .set_deadline_policy(set(pb::DeadlineUnit::WorkingHours, 4))
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!((p.unit, p.amount, p.updated_by.as_str()), (pb::DeadlineUnit::WorkingHours as i32, 4, "admin"));

    // A key customer's complaint accepted now is due by the new rule: at most
    // 4 working hours ahead (later when it is not a working day now).
    let cust = app.customer("重点客户", Some(cpb::ServiceLevel::Key), None).await;
    let c = app.accepted(&cust).await;
    let due = proto_time::from_proto(c.answer_due_at.as_ref().unwrap()).unwrap();
    let accepted = proto_time::from_proto(c.accepted_at.as_ref().unwrap()).unwrap();
    assert!(due > accepted);
    assert!(due - accepted <= Duration::days(10), "{due} vs {accepted}");
}

#[tokio::test]
async fn a_committed_answer_time_keeps_the_deadline() {
    let app = App::new().await;
    let cust = app.customer("甲", None, None).await;
    let c = app.accepted(&cust).await;
    let due = proto_time::from_proto(c.answer_due_at.as_ref().unwrap()).unwrap();
    let commit = |at: chrono::DateTime<Utc>| pb::CommitAnswerTimeRequest {
        request_id: rid(),
        id: c.id.clone(),
        etag: String::new(),
        committed_answer_at: Some(proto_time::to_proto(at)),
    };
    let mut head = app.head().await;
    assert_rule(
        &head.commit_answer_time(commit(due + Duration::hours(1))).await.expect_err("late"),
        "COMMITMENT_AFTER_DEADLINE",
    );
    assert_rule(
        &head.commit_answer_time(commit(Utc::now() - Duration::hours(1))).await.expect_err("past"),
        "COMMITMENT_IN_PAST",
    );
    let err = head
        .commit_answer_time(pb::CommitAnswerTimeRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: String::new(),
            committed_answer_at: None,
        })
        .await
        .expect_err("missing");
    assert_invalid(&err, "committed_answer_at");
    let at = Utc::now() + Duration::days(2);
    let c = head.commit_answer_time(commit(at)).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!(proto_time::from_proto(c.committed_answer_at.as_ref().unwrap()).unwrap().timestamp(), at.timestamp());
}

/// Moves a complaint's current deadline to `hours` from now.
async fn due_in(app: &App, id: &str, hours: i64) {
    sqlx::query(
        "UPDATE complaints.rounds SET answer_due_at = now() + make_interval(hours => $2) \
         WHERE complaint_id = $1::uuid",
    )
    .bind(id)
    .bind(hours as i32)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn due_and_overdue_complaints_are_listed_earliest_first() {
    let app = App::new().await;
    let cust = app.customer("乙", None, None).await;
    let overdue = app.accepted(&cust).await;
    let soon = app.accepted(&cust).await;
    let later = app.accepted(&cust).await;
    let answered = app.answered(&cust).await;
    due_in(&app, &overdue.id, -2).await;
    due_in(&app, &soon.id, 5).await;
    due_in(&app, &later.id, 100).await;
    due_in(&app, &answered.id, -5).await;
    let mut desk = app.desk().await;
    let list = desk
        .list_due_complaints(pb::ListDueComplaintsRequest { within_hours: 24, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<(&str, bool)> =
        list.complaints.iter().map(|d| (d.complaint.as_ref().unwrap().id.as_str(), d.overdue)).collect();
    assert_eq!(ids, vec![(overdue.id.as_str(), true), (soon.id.as_str(), false)]);
    // Pages follow the due order.
    let first = desk
        .list_due_complaints(pb::ListDueComplaintsRequest { within_hours: 720, page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.complaints.len(), 2);
    let next = desk
        .list_due_complaints(pb::ListDueComplaintsRequest {
            within_hours: 720,
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next.complaints.iter().map(|d| d.complaint.as_ref().unwrap().id.clone()).collect::<Vec<_>>(),
        vec![later.id]
    );
    assert!(next.next_page_token.is_empty());
    let err = desk
        .list_due_complaints(pb::ListDueComplaintsRequest { within_hours: -1, ..Default::default() })
        .await
        .expect_err("negative");
    assert_invalid(&err, "within_hours");
}

#[tokio::test]
async fn overdue_complaints_escalate_once_even_with_concurrent_passes() {
    let app = App::new().await;
    let cust = app.customer("丙", None, None).await;
    let a = app.accepted(&cust).await;
    let b = app.accepted(&cust).await;
    let in_time = app.accepted(&cust).await;
    due_in(&app, &a.id, -1).await;
    due_in(&app, &b.id, -1).await;
    // b already sits with the office: it goes to senior management.
    app.head()
        .await
        .escalate_complaint(pb::EscalateComplaintRequest {
            request_id: rid(),
            id: b.id.clone(),
            etag: String::new(),
            to_level: pb::EscalationLevel::Office as i32,
            reason: "team needed".into(),
            team_members: vec![],
        })
        .await
        .unwrap();
    let now = Utc::now();
    let (p1, p2) = tokio::join!(
        crm_complaints::usecases::escalation::escalate_overdue_once(&app.pool, now),
        crm_complaints::usecases::escalation::escalate_overdue_once(&app.pool, now)
    );
    assert_eq!(p1.unwrap() + p2.unwrap(), 2, "each overdue complaint is handled by exactly one pass");
    assert_eq!(
        crm_complaints::usecases::escalation::escalate_overdue_once(&app.pool, now).await.unwrap(),
        0,
        "once per round"
    );

    let a = app.get(&a.id).await;
    assert_eq!(a.escalation_level, pb::EscalationLevel::Office as i32);
    assert_eq!(a.escalations.len(), 1);
    assert_eq!(a.escalations[0].escalated_by, crm_complaints::usecases::escalation::ACTOR);
    let b = app.get(&b.id).await;
    assert_eq!(b.escalation_level, pb::EscalationLevel::SeniorManagement as i32);
    assert_eq!(b.escalations.len(), 2);
    assert_eq!(app.get(&in_time.id).await.escalation_level, pb::EscalationLevel::Department as i32);
    assert_eq!(app.count("escalations").await, 3);
}

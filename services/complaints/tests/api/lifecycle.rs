//! CMP-3..CMP-7 and CMP-9: transitions over gRPC, who and when, rounds,
//! escalation, re-test, read-only closed complaints.

use crm_events::Payload;
use crm_proto::complaints::v1 as pb;
use tonic::Code;

use crate::helpers::{App, assert_invalid, assert_rule, findings, reason, rid};

#[tokio::test]
async fn the_whole_way_to_closed_records_who_and_when() {
    let app = App::new().await;
    let cust = app.customer("甲", None, None).await;
    let c = app.accepted(&cust).await;
    assert_eq!(c.state, pb::ComplaintState::Accepted as i32);
    assert_eq!(c.accepted_by, "desk-1");
    assert_eq!(c.round, 1);
    assert!(c.answer_due_at.is_some());
    // CMP-3: the quality manager is notified through the outbox.
    assert_eq!(app.outbox_types().await, ["complaint.filed", "complaint.accepted"]);

    let c = app.answered(&cust).await;
    assert_eq!(c.state, pb::ComplaintState::Answered as i32);
    let r = &c.rounds[0];
    assert_eq!(r.investigated_by, "head-lab");
    assert_eq!(r.resolved_by, "head-lab");
    assert_eq!(r.answered_by, "desk-1");
    assert_eq!(r.findings.as_ref().unwrap().verdict, pb::Verdict::Justified as i32);

    let closed = app
        .desk()
        .await
        .record_feedback(pb::RecordFeedbackRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: c.etag,
            satisfied: true,
            feedback: "好".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(closed.state, pb::ComplaintState::Closed as i32);
    assert!(closed.closed_at.is_some());
    // two complaints filed, accepted and (the second) resolved and closed.
    let kinds = app.outbox_types().await;
    let tail: Vec<&str> = kinds.iter().skip(4).map(String::as_str).collect();
    assert_eq!(tail, ["complaint.resolved", "complaint.closed"], "{kinds:?}");
    let actions: Vec<&str> = closed.history.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["registered", "accepted", "investigation started", "resolved", "answered", "closed"]);

    // CMP-9: closed is read-only.
    let id = closed.id.clone();
    let err = app
        .head()
        .await
        .escalate_complaint(pb::EscalateComplaintRequest {
            request_id: rid(),
            id: id.clone(),
            etag: String::new(),
            to_level: pb::EscalationLevel::Office as i32,
            reason: "late".into(),
            team_members: vec![],
        })
        .await
        .expect_err("closed");
    assert_rule(&err, "COMPLAINT_CLOSED");
    let err = app
        .desk()
        .await
        .record_feedback(pb::RecordFeedbackRequest {
            request_id: rid(),
            id: id.clone(),
            etag: String::new(),
            satisfied: false,
            feedback: "再查".into(),
        })
        .await
        .expect_err("closed");
    assert_rule(&err, "COMPLAINT_CLOSED");
    let err = app
        .head()
        .await
        .propose_compensation(pb::ProposeCompensationRequest {
            request_id: rid(),
            id,
            etag: String::new(),
            amount: Some(crm_proto::common::v1::Money { amount_minor: 100, currency_code: "CNY".into() }),
            reason: "loss".into(),
        })
        .await
        .expect_err("closed");
    assert_rule(&err, "COMPLAINT_CLOSED");
}

#[tokio::test]
async fn unsatisfied_feedback_reopens_in_a_new_round() {
    let app = App::new().await;
    let cust = app.customer("乙", None, None).await;
    let c = app.answered(&cust).await;
    let mut desk = app.desk().await;
    let err = desk
        .record_feedback(pb::RecordFeedbackRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: c.etag.clone(),
            satisfied: false,
            feedback: String::new(),
        })
        .await
        .expect_err("reason needed");
    assert_invalid(&err, "feedback");
    let c = desk
        .record_feedback(pb::RecordFeedbackRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: c.etag,
            satisfied: false,
            feedback: "没解决".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(c.state, pb::ComplaintState::Investigating as i32);
    assert_eq!((c.round, c.reopen_count, c.rounds.len()), (2, 1, 2));
    assert_eq!(c.rounds[0].satisfied, Some(false));
    assert_eq!(c.rounds[0].feedback, "没解决");
    assert!(c.rounds[0].findings.is_some(), "round 1 keeps its findings");
    assert!(c.rounds[1].findings.is_none());
    // The second round is resolved and answered on its own.
    let c = app
        .head()
        .await
        .resolve_complaint(pb::ResolveComplaintRequest {
            request_id: rid(),
            id: c.id,
            etag: c.etag,
            findings: Some(findings(pb::Verdict::Unjustified)),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(c.rounds[1].findings.as_ref().unwrap().verdict, pb::Verdict::Unjustified as i32);
    assert_eq!(c.rounds[0].findings.as_ref().unwrap().verdict, pb::Verdict::Justified as i32);
}

#[tokio::test]
async fn illegal_transitions_name_the_rule_and_change_nothing() {
    let app = App::new().await;
    let cust = app.customer("丙", None, None).await;
    let c = app.register(&cust, pb::Category::Billing).await;
    let err = app
        .head()
        .await
        .resolve_complaint(pb::ResolveComplaintRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: String::new(),
            findings: Some(findings(pb::Verdict::Justified)),
        })
        .await
        .expect_err("not accepted");
    assert_rule(&err, "COMPLAINT_NOT_ACCEPTED");
    let c = app.accepted(&cust).await;
    let err = app
        .desk()
        .await
        .answer_complaint(pb::AnswerComplaintRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: String::new(),
            answer: "x".into(),
        })
        .await
        .expect_err("not resolved");
    assert_rule(&err, "ILLEGAL_TRANSITION");
    let err = app
        .desk()
        .await
        .reject_complaint(pb::RejectComplaintRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: String::new(),
            reason: pb::RejectionReason::Duplicate as i32,
            note: "dup".into(),
        })
        .await
        .expect_err("already accepted");
    assert_rule(&err, "ILLEGAL_TRANSITION");
    assert_eq!(app.get(&c.id).await.etag, c.etag, "nothing changed");
    // A stale etag is ABORTED.
    let err = app
        .head()
        .await
        .start_investigation(pb::StartInvestigationRequest { request_id: rid(), id: c.id.clone(), etag: "999".into() })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    let err = app
        .head()
        .await
        .start_investigation(pb::StartInvestigationRequest {
            request_id: rid(),
            id: uuid::Uuid::now_v7().to_string(),
            etag: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn rejection_needs_a_reason_and_a_note() {
    let app = App::new().await;
    let cust = app.customer("丁", None, None).await;
    let c = app.register(&cust, pb::Category::Billing).await;
    let mut desk = app.desk().await;
    let err = desk
        .reject_complaint(pb::RejectComplaintRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: c.etag.clone(),
            reason: 0,
            note: String::new(),
        })
        .await
        .expect_err("no reason");
    assert_invalid(&err, "reason");
    assert_invalid(&err, "note");
    let r = desk
        .reject_complaint(pb::RejectComplaintRequest {
            request_id: rid(),
            id: c.id,
            etag: c.etag,
            reason: pb::RejectionReason::NotAComplaint as i32,
            note: "an enquiry about prices".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(r.state, pb::ComplaintState::Rejected as i32);
    assert_eq!(r.rejected_by, "desk-1");
    assert_eq!(r.rejection_reason, pb::RejectionReason::NotAComplaint as i32);
}

#[tokio::test]
async fn escalation_goes_up_and_keeps_its_history() {
    let app = App::new().await;
    let cust = app.customer("戊", None, None).await;
    let c = app.accepted(&cust).await;
    let esc = |to: pb::EscalationLevel, team: Vec<String>| pb::EscalateComplaintRequest {
        request_id: rid(),
        id: c.id.clone(),
        etag: String::new(),
        to_level: to as i32,
        reason: "beyond the department".into(),
        team_members: team,
    };
    // A department head cannot decide what goes to senior management.
    let err = app
        .head()
        .await
        .escalate_complaint(esc(pb::EscalationLevel::SeniorManagement, vec![]))
        .await
        .expect_err("head");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "SENIOR_ESCALATION_NOT_ALLOWED");
    let e = app
        .head()
        .await
        .escalate_complaint(esc(pb::EscalationLevel::Office, vec!["张三".into(), "李四".into()]))
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(e.escalation_level, pb::EscalationLevel::Office as i32);
    assert_eq!(e.state, pb::ComplaintState::Accepted as i32);
    let err =
        app.office().await.escalate_complaint(esc(pb::EscalationLevel::Office, vec![])).await.expect_err("same level");
    assert_rule(&err, "ESCALATION_NOT_UPWARD");
    let err =
        app.office().await.escalate_complaint(esc(pb::EscalationLevel::Department, vec![])).await.expect_err("down");
    assert_invalid(&err, "to_level");
    let e = app
        .office()
        .await
        .escalate_complaint(esc(pb::EscalationLevel::SeniorManagement, vec![]))
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(e.escalation_level, pb::EscalationLevel::SeniorManagement as i32);
    assert_eq!(e.escalations.len(), 2);
    assert_eq!(e.escalations[0].team_members, vec!["张三".to_string(), "李四".to_string()]);
    assert_eq!(e.escalations[0].escalated_by, "head-lab");
    assert_eq!(e.escalations[1].from_level, pb::EscalationLevel::Office as i32);
}

#[tokio::test]
async fn test_data_is_reviewed_retested_by_two_and_amended_with_approval() {
    let app = App::new().await;
    let cust = app.customer("己", None, None).await;
    let c = app.register(&cust, pb::Category::TestResult).await;
    let c = app
        .desk()
        .await
        .accept_complaint(pb::AcceptComplaintRequest { request_id: rid(), id: c.id, etag: c.etag, note: String::new() })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    let c = app
        .head()
        .await
        .start_investigation(pb::StartInvestigationRequest { request_id: rid(), id: c.id, etag: c.etag })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    let id = c.id.clone();
    let resolve = || pb::ResolveComplaintRequest {
        request_id: rid(),
        id: id.clone(),
        etag: String::new(),
        findings: Some(findings(pb::Verdict::Justified)),
    };
    assert_rule(&app.head().await.resolve_complaint(resolve()).await.expect_err("no review"), "RETEST_REQUIRED");

    let retest =
        |testers: Vec<&str>, outcome: pb::RetestOutcome, revoked: &str, corrected: &str| pb::RecordRetestRequest {
            request_id: rid(),
            id: id.clone(),
            etag: String::new(),
            retest: Some(pb::Retest {
                records_review: "原始记录复核：计算错误".into(),
                retested: true,
                testers: testers.into_iter().map(String::from).collect(),
                outcome: outcome as i32,
                revoked_report_id: revoked.into(),
                corrected_report_id: corrected.into(),
                ..Default::default()
            }),
        };
    let mut head = app.head().await;
    let err = head.record_retest(retest(vec!["t1"], pb::RetestOutcome::Upheld, "", "")).await.expect_err("one tester");
    assert_invalid(&err, "retest.testers");
    let err =
        head.record_retest(retest(vec!["t1", "t1"], pb::RetestOutcome::Upheld, "", "")).await.expect_err("same tester");
    assert_invalid(&err, "retest.testers[1]");
    let err =
        head.record_retest(retest(vec!["t1", "qm-1"], pb::RetestOutcome::Amended, "", "")).await.expect_err("no ids");
    assert_invalid(&err, "retest.revoked_report_id");
    assert_invalid(&err, "retest.corrected_report_id");
    let c = head
        .record_retest(retest(vec!["t1", "qm-1"], pb::RetestOutcome::Amended, "R-1", "R-1A"))
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    let t = c.rounds[0].retest.as_ref().unwrap();
    assert_eq!((t.revoked_report_id.as_str(), t.corrected_report_id.as_str()), ("R-1", "R-1A"));
    assert_rule(&head.resolve_complaint(resolve()).await.expect_err("unapproved"), "AMENDMENT_NOT_APPROVED");

    // The signatory must not have tested it.
    let approve = || pb::ApproveAmendmentRequest { request_id: rid(), id: id.clone(), etag: String::new() };
    let err = app.quality().await.approve_amendment(approve()).await.expect_err("tester");
    assert_eq!(reason(&err), "SIGNATORY_NOT_INDEPENDENT");
    let err = head.approve_amendment(approve()).await.expect_err("role");
    assert_eq!(err.code(), Code::PermissionDenied);
    let qm2 = app.client(&[crm_testkit::Role::QualityManager], "qm-2").await;
    let c = { qm2 }.approve_amendment(approve()).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!(c.rounds[0].retest.as_ref().unwrap().approved_by, "qm-2");
    let amended = app.outbox("complaint.report_amended").await;
    assert_eq!(amended.len(), 1);
    let Payload::ComplaintReportAmended(a) = &amended[0].1 else { panic!("{amended:?}") };
    assert_eq!((a.complaint_id.as_str(), a.round, a.approved_by.as_str()), (id.as_str(), 1, "qm-2"));
    let c = head.resolve_complaint(resolve()).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!(c.state, pb::ComplaintState::Resolved as i32);

    // Re-test does not apply to other categories.
    let other = app.accepted(&cust).await;
    let mut req = retest(vec!["t1", "t2"], pb::RetestOutcome::Upheld, "", "");
    req.id = other.id;
    let err = head
        .start_investigation(pb::StartInvestigationRequest {
            request_id: rid(),
            id: req.id.clone(),
            etag: String::new(),
        })
        .await
        .map(|_| ());
    assert!(err.is_ok());
    assert_rule(&head.record_retest(req).await.expect_err("billing"), "RETEST_NOT_APPLICABLE");
}

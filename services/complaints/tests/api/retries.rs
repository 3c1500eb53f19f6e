//! request_id on lifecycle steps: retries replay the first result, refused
//! requests leave the key free, and nothing is done twice.

use crm_proto::complaints::v1 as pb;

use crate::helpers::{App, assert_invalid, reason, rid};

#[tokio::test]
async fn concurrent_retries_of_an_acceptance_open_one_round() {
    let app = App::new().await;
    let cust = app.customer("甲", None, None).await;
    let c = app.register(&cust, pb::Category::Billing).await;
    let req = pb::AcceptComplaintRequest { request_id: rid(), id: c.id.clone(), etag: c.etag, note: "ok".into() };
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let mut desk = app.desk().await;
        let r = req.clone();
        tasks.push(tokio::spawn(async move { desk.accept_complaint(r).await.map(|r| r.into_inner()) }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap().expect("every retry succeeds"));
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "all retries see the first response");
    assert_eq!(app.count("rounds").await, 1);
    assert_eq!(app.outbox_types().await, ["complaint.filed", "complaint.accepted"]);
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM complaints.history WHERE action = 'accepted'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(history, 1);
}

#[tokio::test]
async fn a_refused_step_writes_nothing_and_leaves_the_key_free() {
    let app = App::new().await;
    let cust = app.customer("乙", None, None).await;
    let c = app.accepted(&cust).await;
    let c = app
        .head()
        .await
        .start_investigation(pb::StartInvestigationRequest { request_id: rid(), id: c.id, etag: c.etag })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    let keys_before = app.count("idempotency_keys").await;
    let key = rid();
    let mut head = app.head().await;
    let err = head
        .resolve_complaint(pb::ResolveComplaintRequest {
            request_id: key.clone(),
            id: c.id.clone(),
            etag: c.etag.clone(),
            findings: Some(pb::Findings { verdict: pb::Verdict::Justified as i32, ..Default::default() }),
        })
        .await
        .expect_err("incomplete findings");
    assert_invalid(&err, "findings.facts");
    assert_invalid(&err, "findings.root_cause");
    assert_invalid(&err, "findings.corrective_actions");
    assert_eq!(app.count("idempotency_keys").await, keys_before);
    assert_eq!(app.get(&c.id).await.etag, c.etag, "nothing changed");
    // The corrected request may reuse the key: the refused one stored nothing.
    let ok = head
        .resolve_complaint(pb::ResolveComplaintRequest {
            request_id: key.clone(),
            id: c.id.clone(),
            etag: c.etag.clone(),
            findings: Some(crate::helpers::findings(pb::Verdict::Justified)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.complaint.unwrap().state, pb::ComplaintState::Resolved as i32);
    // Now the key is taken: a different body under it is refused.
    let err = head
        .resolve_complaint(pb::ResolveComplaintRequest {
            request_id: key,
            id: c.id,
            etag: String::new(),
            findings: Some(crate::helpers::findings(pb::Verdict::Unjustified)),
        })
        .await
        .expect_err("reused");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn a_retried_policy_change_replays() {
    let app = App::new().await;
    let req = pb::SetDeadlinePolicyRequest {
        request_id: rid(),
        policy: Some(pb::DeadlinePolicy {
            service_level: pb::ServiceLevel::Special as i32,
            urgency: pb::Urgency::Urgent as i32,
            unit: pb::DeadlineUnit::WorkingHours as i32,
            amount: 4,
            ..Default::default()
        }),
    };
    let mut admin = app.admin().await;
    let first = admin.set_deadline_policy(req.clone()).await.unwrap().into_inner();
    let again = admin.set_deadline_policy(req).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(app.count("deadline_policies").await, 6);
}

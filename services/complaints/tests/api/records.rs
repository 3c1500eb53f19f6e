//! CMP-8 compensation and CMP-9 records: reads, lists, reports.

use chrono::{Duration, Utc};
use crm_events::{Payload, pb as ev};
use crm_platform::proto_time;
use crm_proto::{common::v1::Money, complaints::v1 as pb, customers::v1 as cpb};
use tonic::Code;

use crate::helpers::{App, assert_invalid, assert_rule, reason, registration, rid};

#[tokio::test]
async fn compensation_is_proposed_approved_by_another_manager_and_put_in_the_outbox() {
    let app = App::new().await;
    let cust = app.customer("甲", None, None).await;
    let unjustified = app.resolved(&cust, pb::Verdict::Unjustified).await;
    let propose = |id: &str, amount: i64, currency: &str| pb::ProposeCompensationRequest {
        request_id: rid(),
        id: id.to_string(),
        etag: String::new(),
        amount: Some(Money { amount_minor: amount, currency_code: currency.into() }),
        reason: "the customer paid twice".into(),
    };
    let mut head = app.head().await;
    assert_rule(
        &head.propose_compensation(propose(&unjustified.id, 100, "CNY")).await.expect_err("unjustified"),
        "COMPLAINT_NOT_JUSTIFIED",
    );

    let c = app.resolved(&cust, pb::Verdict::Justified).await;
    let err = head.propose_compensation(propose(&c.id, -5, "yuan")).await.expect_err("bad money");
    assert_invalid(&err, "amount.amount_minor");
    assert_invalid(&err, "amount.currency_code");
    head.propose_compensation(propose(&c.id, 50_000, "cny")).await.unwrap();
    assert!(app.outbox("complaint.compensation_agreed").await.is_empty(), "no agreement yet");

    let approve = pb::ApproveCompensationRequest { request_id: rid(), id: c.id.clone(), etag: String::new() };
    assert_eq!(head.approve_compensation(approve.clone()).await.expect_err("head").code(), Code::PermissionDenied);
    let mut senior = app.senior().await;
    let first = senior.approve_compensation(approve.clone()).await.unwrap().into_inner();
    let again = senior.approve_compensation(approve).await.unwrap().into_inner();
    assert_eq!(first, again, "a retry returns the first approval");
    let m = first.complaint.unwrap().compensation.unwrap();
    assert_eq!(m.amount, Some(Money { amount_minor: 50_000, currency_code: "CNY".into() }));
    assert_eq!((m.proposed_by.as_str(), m.approved_by.as_str()), ("head-lab", "senior-1"));
    // CMP-8, X-2: one agreement for billing's credit note, the retry adds none.
    let agreed = app.outbox("complaint.compensation_agreed").await;
    let want = Payload::CompensationAgreed(ev::CompensationAgreed {
        complaint_id: c.id.clone(),
        customer_id: cust.clone(),
        amount: Some(Money { amount_minor: 50_000, currency_code: "CNY".into() }),
        approved_by: "senior-1".into(),
    });
    assert_eq!(agreed, [(uuid::Uuid::parse_str(&c.id).unwrap(), want)]);
    let err = senior
        .approve_compensation(pb::ApproveCompensationRequest {
            request_id: rid(),
            id: c.id.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("twice");
    assert_rule(&err, "COMPENSATION_ALREADY_APPROVED");

    // Four eyes: whoever proposed does not approve.
    let other = app.resolved(&cust, pb::Verdict::Justified).await;
    senior.propose_compensation(propose(&other.id, 100, "CNY")).await.unwrap();
    let err = senior
        .approve_compensation(pb::ApproveCompensationRequest { request_id: rid(), id: other.id, etag: String::new() })
        .await
        .expect_err("own proposal");
    assert_eq!(reason(&err), "APPROVER_IS_PROPOSER");
}

#[tokio::test]
async fn lists_filter_and_page_in_creation_order() {
    let app = App::new().await;
    let a = app.customer("甲", None, None).await;
    let b = app.customer("乙", None, None).await;
    let c1 = app.register(&a, pb::Category::Billing).await;
    let c2 = app.register(&a, pb::Category::FieldWork).await;
    let c3 = app.register(&b, pb::Category::Billing).await;
    let mut qm = app.quality().await;
    let ids = |r: pb::ListComplaintsResponse| r.complaints.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let by_cat = qm
        .list_complaints(pb::ListComplaintsRequest { category: pb::Category::Billing as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(by_cat), vec![c1.id.clone(), c3.id.clone()]);
    let by_customer = qm
        .list_complaints(pb::ListComplaintsRequest { customer_id: a.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(by_customer), vec![c1.id.clone(), c2.id.clone()]);
    let none = qm
        .list_complaints(pb::ListComplaintsRequest { department: "other".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(none.complaints.is_empty());
    let p1 = qm
        .list_complaints(pb::ListComplaintsRequest { page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let token = p1.next_page_token.clone();
    assert_eq!(ids(p1), vec![c1.id.clone(), c2.id.clone()]);
    let p2 = qm
        .list_complaints(pb::ListComplaintsRequest { page_size: 2, page_token: token.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(p2.next_page_token.is_empty());
    assert_eq!(ids(p2), vec![c3.id.clone()]);
    let err = qm
        .list_complaints(pb::ListComplaintsRequest {
            page_token: token,
            urgency: pb::Urgency::Urgent as i32,
            ..Default::default()
        })
        .await
        .expect_err("other filter");
    assert_invalid(&err, "page_token");
    let err = qm
        .list_complaints(pb::ListComplaintsRequest { customer_id: "x".into(), ..Default::default() })
        .await
        .expect_err("bad id");
    assert_invalid(&err, "customer_id");
    let err = qm
        .get_complaint(pb::GetComplaintRequest { id: uuid::Uuid::now_v7().to_string(), number: String::new() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_invalid(
        &qm.get_complaint(pb::GetComplaintRequest { id: "nope".into(), number: String::new() }).await.expect_err("bad"),
        "id",
    );
}

#[tokio::test]
async fn stats_count_response_times_on_time_share_and_satisfaction() {
    let app = App::new().await;
    let key = app.customer("甲", Some(cpb::ServiceLevel::Key), Some(cpb::ValueTier::Key)).await;
    let on_time = app.answered(&key).await;
    let late = app.answered(&key).await;
    let _open = app.accepted(&key).await;
    // Make the answers 10 h and 30 h after acceptance; the late one past its deadline.
    for (id, hours) in [(&on_time.id, 10), (&late.id, 30)] {
        sqlx::query(
            "UPDATE complaints.complaints SET accepted_at = now() - make_interval(hours => $2) WHERE id = $1::uuid",
        )
        .bind(id)
        .bind(hours)
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query("UPDATE complaints.rounds SET answered_at = now() WHERE complaint_id = $1::uuid")
            .bind(id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE complaints.rounds SET answer_due_at = now() - interval '1 hour' WHERE complaint_id = $1::uuid")
        .bind(&late.id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.desk()
        .await
        .record_feedback(pb::RecordFeedbackRequest {
            request_id: rid(),
            id: on_time.id.clone(),
            etag: String::new(),
            satisfied: true,
            feedback: String::new(),
        })
        .await
        .unwrap();

    let req = pb::GetComplaintStatsRequest {
        from: Some(proto_time::to_proto(Utc::now() - Duration::days(1))),
        to: Some(proto_time::to_proto(Utc::now() + Duration::days(1))),
        period: pb::StatsPeriod::Month as i32,
    };
    let stats = app.quality().await.get_complaint_stats(req).await.unwrap().into_inner();
    assert_eq!(stats.rows.len(), 1, "{stats:?}");
    let row = &stats.rows[0];
    assert_eq!(
        (row.category, row.department.as_str(), row.customer_tier),
        (pb::Category::Billing as i32, "lab-chem", pb::CustomerTier::Key as i32)
    );
    assert_eq!((row.complaints, row.answered), (3, 2));
    assert!((row.median_hours_to_answer - 20.0).abs() < 0.1, "{row:?}");
    assert!((row.p90_hours_to_answer - 28.0).abs() < 0.1, "{row:?}");
    assert!((row.on_time_share - 0.5).abs() < 1e-9);
    assert_eq!(row.feedback_count, 1);
    assert!((row.satisfied_share - 1.0).abs() < 1e-9);
    assert!((stats.on_time_share - 0.5).abs() < 1e-9);

    let err = app
        .quality()
        .await
        .get_complaint_stats(pb::GetComplaintStatsRequest {
            from: None,
            to: Some(proto_time::to_proto(Utc::now())),
            period: 0,
        })
        .await
        .expect_err("from");
    assert_invalid(&err, "from");
}

/// Issue 14: the service desk is phoned about "CMP-2026-000123". A complaint
/// is read by its number as typed (any case, full-width digits) and listed
/// by number, customer name or a word of its description; bad numbers are
/// refused and an unknown one is NOT_FOUND.
#[tokio::test]
async fn a_complaint_is_found_by_its_number_and_by_text() {
    let app = App::new().await;
    let a = app.customer("杭州华润燃气有限公司", None, None).await;
    let b = app.customer("西湖物业", None, None).await;
    let c1 = app.register(&a, pb::Category::Billing).await;
    let mut other = registration(&b, pb::Category::Billing);
    other.description = "抄表员未按时上门，账单估算偏高".into();
    let c2 = app.desk().await.register_complaint(other).await.expect("register").into_inner().complaint.expect("c2");
    let mut qm = app.quality().await;

    let get = |id: &str, number: &str| pb::GetComplaintRequest { id: id.into(), number: number.into() };
    let by_number = qm.get_complaint(get("", &c2.number)).await.expect("by number").into_inner().complaint;
    assert_eq!(by_number.map(|c| c.id), Some(c2.id.clone()));
    let typed = c2.number.to_lowercase().replace('0', "０");
    let in_id = qm.get_complaint(get(&typed, "")).await.expect("number in id").into_inner().complaint;
    assert_eq!(in_id.map(|c| c.id), Some(c2.id.clone()));
    let err = qm.get_complaint(get("", "CMP-1999-999999")).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = qm.get_complaint(get("", "123")).await.expect_err("not a number");
    assert_invalid(&err, "number");
    let err = qm.get_complaint(get(&c1.id, &c2.number)).await.expect_err("both");
    assert_invalid(&err, "number");

    let ids = |r: pb::ListComplaintsResponse| r.complaints.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let list = |number: &str, text: &str| pb::ListComplaintsRequest {
        number: number.into(),
        text: text.into(),
        ..Default::default()
    };
    assert_eq!(ids(qm.list_complaints(list(&c1.number, "")).await.expect("number").into_inner()), vec![c1.id.clone()]);
    assert_eq!(ids(qm.list_complaints(list("", "华润")).await.expect("name").into_inner()), vec![c1.id.clone()]);
    assert_eq!(ids(qm.list_complaints(list("", "估算")).await.expect("text").into_inner()), vec![c2.id.clone()]);
    let tail = &c2.number[c2.number.len() - 6..];
    assert!(ids(qm.list_complaints(list("", tail)).await.expect("part").into_inner()).contains(&c2.id));
    assert!(ids(qm.list_complaints(list("", "100%")).await.expect("literal %").into_inner()).is_empty());
    let err = qm.list_complaints(list("CMP-26-1", "")).await.expect_err("bad number");
    assert_invalid(&err, "number");
    let err = qm.list_complaints(list("", &"长".repeat(101))).await.expect_err("long text");
    assert_invalid(&err, "text");
}

/// Issue 14: a deadline carries the calendar date it falls due, so an app
/// never shows "end of the 6th" (the 7th, 00:00) as the 7th.
#[tokio::test]
async fn deadlines_carry_the_date_they_fall_due() {
    let app = App::new().await;
    let a = app.customer("甲", None, None).await;
    let c = app.accepted(&a).await;
    let due = c.answer_due_at.expect("a deadline");
    let date = c.answer_due_date.expect("its date");
    let local = chrono::DateTime::from_timestamp(due.seconds, due.nanos as u32)
        .expect("instant")
        .with_timezone(&chrono_tz::Asia::Shanghai);
    // A general customer's normal complaint is due by the end of the 15th
    // calendar day (CMP-6): the instant is that day's following midnight.
    assert_eq!(local.time(), chrono::NaiveTime::MIN, "{local}");
    assert_eq!(date, crate::helpers::date(local.date_naive() - chrono::Days::new(1)));
    let round = c.rounds.last().expect("round");
    assert_eq!(round.answer_due_date.as_ref(), Some(&date));
}

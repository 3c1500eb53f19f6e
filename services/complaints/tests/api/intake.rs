//! CMP-1 intake and CMP-2 appeal window.

use crm_proto::{complaints::v1 as pb, customers::v1 as cpb};
use tonic::Code;

use crate::helpers::{App, assert_invalid, assert_rule, date, registration, rid};

#[tokio::test]
async fn a_complaint_is_numbered_and_carries_the_customer_as_it_was() {
    let app = App::new().await;
    let cust = app.customer("北京检测客户", Some(cpb::ServiceLevel::Key), Some(cpb::ValueTier::Vip)).await;
    let c = app.register(&cust, pb::Category::Billing).await;
    let year = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y").to_string();
    assert_eq!(c.number, format!("CMP-{year}-000001"));
    assert_eq!(c.state, pb::ComplaintState::Registered as i32);
    assert_eq!(c.customer_name, "北京检测客户");
    assert_eq!(c.service_level, pb::ServiceLevel::Key as i32);
    assert_eq!(c.customer_tier, pb::CustomerTier::Vip as i32);
    assert_eq!(c.escalation_level, pb::EscalationLevel::Department as i32);
    assert_eq!(c.registered_by, "desk-1");
    assert_eq!(c.references.unwrap().report_ids, vec!["R-1".to_string()]);
    assert_eq!(c.history.len(), 1);
    assert_eq!(c.history[0].action, "registered");
    let second = app.register(&cust, pb::Category::FieldWork).await;
    assert_eq!(second.number, format!("CMP-{year}-000002"));
}

#[tokio::test]
async fn unknown_and_terminated_customers_are_refused_and_nothing_is_written() {
    let app = App::new().await;
    let err = app
        .desk()
        .await
        .register_complaint(registration(&uuid::Uuid::now_v7().to_string(), pb::Category::Billing))
        .await
        .expect_err("unknown customer");
    assert_eq!(err.code(), Code::NotFound);

    let cust = app.customer("终止客户", None, None).await;
    // Termination is a process of the customers service; the test sets its
    // outcome directly.
    sqlx::query("UPDATE customers.customers SET stage = 'terminated' WHERE id = $1::uuid")
        .bind(&cust)
        .execute(&app.pool)
        .await
        .unwrap();
    let err =
        app.desk().await.register_complaint(registration(&cust, pb::Category::Billing)).await.expect_err("terminated");
    assert_rule(&err, "CUSTOMER_TERMINATED");
    assert_eq!(app.count("complaints").await, 0);
    assert_eq!(app.count("number_counters").await, 0);
}

#[tokio::test]
async fn bad_input_names_every_field_and_writes_nothing() {
    let app = App::new().await;
    let mut desk = app.desk().await;
    let err = desk
        .register_complaint(pb::RegisterComplaintRequest { request_id: rid(), ..Default::default() })
        .await
        .expect_err("empty");
    for field in ["customer_id", "channel", "category", "department", "urgency", "description"] {
        assert_invalid(&err, field);
    }
    let cust = app.customer("甲", None, None).await;
    // A test-result complaint needs the report date and a written channel.
    let mut req = registration(&cust, pb::Category::TestResult);
    req.report_received_on = None;
    req.channel = pb::Channel::Phone as i32;
    let err = desk.register_complaint(req).await.expect_err("test result");
    assert_invalid(&err, "report_received_on");
    assert_invalid(&err, "channel");
    let mut req = registration(&cust, pb::Category::TestResult);
    req.report_received_on = Some(date(chrono::Utc::now().date_naive() + chrono::Days::new(5)));
    assert_invalid(&desk.register_complaint(req).await.expect_err("future"), "report_received_on");
    let mut req = registration(&cust, pb::Category::Billing);
    req.references = Some(pb::References { invoice_ids: vec!["".into()], ..Default::default() });
    assert_invalid(&desk.register_complaint(req).await.expect_err("blank id"), "references.invoice_ids[0]");
    let mut req = registration(&cust, pb::Category::Billing);
    req.request_id = "not-a-uuid".into();
    assert_invalid(&desk.register_complaint(req).await.expect_err("request id"), "request_id");
    assert_eq!(app.count("complaints").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[tokio::test]
async fn a_late_appeal_is_recorded_as_rejected() {
    let app = App::new().await;
    let cust = app.customer("乙", None, None).await;
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let mut req = registration(&cust, pb::Category::TestResult);
    req.report_received_on = Some(date(today - chrono::Days::new(11)));
    let c = app.desk().await.register_complaint(req).await.expect("stored").into_inner().complaint.unwrap();
    assert_eq!(c.state, pb::ComplaintState::Rejected as i32);
    assert_eq!(c.rejection_reason, pb::RejectionReason::AppealWindowClosed as i32);
    assert!(c.rejection_note.contains("10 days"));
    assert_eq!(app.count("complaints").await, 1);
    // Day 10 is still in time.
    let mut req = registration(&cust, pb::Category::TestResult);
    req.report_received_on = Some(date(today - chrono::Days::new(10)));
    let c = app.desk().await.register_complaint(req).await.expect("in time").into_inner().complaint.unwrap();
    assert_eq!(c.state, pb::ComplaintState::Registered as i32);
    // A rejected complaint accepts nothing more.
    let mut admin = app.admin().await;
    let listed = admin
        .list_complaints(pb::ListComplaintsRequest { state: pb::ComplaintState::Rejected as i32, ..Default::default() })
        .await
        .unwrap();
    let late = listed.into_inner().complaints.remove(0);
    let err = app
        .desk()
        .await
        .accept_complaint(pb::AcceptComplaintRequest {
            request_id: rid(),
            id: late.id,
            etag: String::new(),
            note: String::new(),
        })
        .await
        .expect_err("rejected");
    assert_rule(&err, "COMPLAINT_REJECTED");
}

#[tokio::test]
async fn concurrent_intake_numbers_are_gap_free() {
    let app = App::new().await;
    let cust = app.customer("并发客户", None, None).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let mut desk = app.desk().await;
        let req = registration(&cust, pb::Category::ServiceQuality);
        tasks.push(tokio::spawn(async move { desk.register_complaint(req).await.map(|r| r.into_inner()) }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let number = t.await.unwrap().expect("registered").complaint.unwrap().number;
        seqs.push(number.rsplit('-').next().unwrap().parse::<u32>().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_retried_registration_returns_the_first_complaint() {
    let app = App::new().await;
    let cust = app.customer("丙", None, None).await;
    let req = registration(&cust, pb::Category::Billing);
    let mut desk = app.desk().await;
    let first = desk.register_complaint(req.clone()).await.unwrap().into_inner();
    let again = desk.register_complaint(req.clone()).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(app.count("complaints").await, 1);
    let last: i32 =
        sqlx::query_scalar("SELECT last FROM complaints.number_counters").fetch_one(&app.pool).await.unwrap();
    assert_eq!(last, 1, "a retry takes no number");
    let mut other = req;
    other.description = "different".into();
    let err = desk.register_complaint(other).await.expect_err("reused key");
    assert_eq!(crate::helpers::reason(&err), "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn an_unreachable_customers_service_is_unavailable_and_retryable() {
    let db = crm_testkit::database(&[&crm_customers::SERVICE, &crm_complaints::SERVICE]).await;
    // Nothing listens on port 9 of loopback (discard, normally closed).
    let svc = crm_testkit::TestService::spawn_on(&crm_complaints::SERVICE, db, Some("http://127.0.0.1:9".into())).await;
    let mut desk = crm_proto::complaints::v1::complaint_service_client::ComplaintServiceClient::with_interceptor(
        svc.channel().await,
        svc.bearer(&[crm_testkit::Role::ServiceDesk], "desk-1", None),
    );
    let err = desk
        .register_complaint(registration(&uuid::Uuid::now_v7().to_string(), pb::Category::Billing))
        .await
        .expect_err("customers down");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(crate::helpers::reason(&err), "CUSTOMERS_UNAVAILABLE");
    let pool = svc.db.pool().await;
    let written: i64 =
        sqlx::query_scalar("SELECT count(*) FROM complaints.idempotency_keys").fetch_one(&pool).await.unwrap();
    assert_eq!(written, 0, "the key is free for the retry");
}

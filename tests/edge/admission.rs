//! Admission: a burst waits for a slot instead of being refused, and
//! stalled streams of one principal take nothing from anyone else.

use std::time::{Duration, Instant};

use crm_proto::{
    billing::v1::{self as bpb, billing_service_client::BillingServiceClient},
    customers::v1::{self as pb, customer_service_client::CustomerServiceClient},
};
use crm_testkit::{Role, TestService};
use tonic::Code;

#[tokio::test]
async fn a_burst_of_64_callers_is_served_without_a_refusal() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let channel = svc.channel().await;
    let mut calls = Vec::new();
    for i in 0..64 {
        // Sixteen people, four calls each, on one connection: well above the
        // service's 10 unary slots.
        let mut c = CustomerServiceClient::with_interceptor(
            channel.clone(),
            svc.bearer(&[Role::SalesManager], &format!("m{}", i % 16), Some("bj")),
        );
        calls.push(tokio::spawn(async move {
            c.list_customers(pb::ListCustomersRequest { page_size: 10, ..Default::default() }).await.map(|_| ())
        }));
    }
    let mut refused = 0;
    for c in calls {
        if let Err(s) = c.await.expect("joined") {
            assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
            refused += 1;
        }
    }
    assert_eq!(refused, 0, "every caller waited for a slot");
}

/// An upload that sends nothing: a stream that never yields.
fn stalled() -> impl tokio_stream::Stream<Item = bpb::RecordMeterReadingsRequest> + Send + 'static {
    tokio_stream::pending()
}

#[tokio::test]
async fn stalled_uploads_of_one_reader_neither_block_others_nor_last() {
    let svc = TestService::spawn_configured(&crm_billing::SERVICE, |cfg| cfg.stream_idle_timeout_ms = 1_500).await;
    let channel = svc.channel().await;
    // Sixteen stalled uploads from one meter reader, as in the incident.
    let mut stalls = Vec::new();
    for _ in 0..16 {
        let mut reader =
            BillingServiceClient::with_interceptor(channel.clone(), svc.bearer(&[Role::MeterReader], "reader-1", None));
        stalls.push(tokio::spawn(async move { reader.record_meter_readings(stalled()).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Everyone else's unary calls go through at once.
    let mut finance = BillingServiceClient::with_interceptor(channel.clone(), svc.bearer(&[Role::Finance], "f", None));
    let started = Instant::now();
    for _ in 0..20 {
        finance.list_tariffs(bpb::ListTariffsRequest::default()).await.expect("served");
    }
    assert!(started.elapsed() < Duration::from_secs(1), "unary calls did not wait behind the streams");
    // Another reader's upload gets a slot of its own.
    let mut other =
        BillingServiceClient::with_interceptor(channel.clone(), svc.bearer(&[Role::MeterReader], "reader-2", None));
    let done = other.record_meter_readings(tokio_stream::iter(vec![bpb::RecordMeterReadingsRequest::default()])).await;
    assert!(done.is_ok(), "{done:?}");
    // The stalled ones end: the two admitted by the idle timeout, the rest
    // by the admission wait; none holds a slot for long.
    let mut codes = Vec::new();
    for s in stalls {
        let r = tokio::time::timeout(Duration::from_secs(10), s).await.expect("ended").expect("joined");
        codes.push(r.expect_err("a stalled upload fails").code());
    }
    assert!(codes.contains(&Code::DeadlineExceeded), "the admitted stalls time out: {codes:?}");
    assert!(codes.iter().all(|c| matches!(c, Code::DeadlineExceeded | Code::ResourceExhausted)), "{codes:?}");
}

#[tokio::test]
async fn one_principal_is_held_to_its_share_while_others_are_served() {
    // Two unary slots, one per principal; a short queue.
    let svc = TestService::spawn_configured(&crm_customers::SERVICE, |cfg| {
        cfg.concurrency_limit = Some(2);
        cfg.admission_queue_ms = 300;
    })
    .await;
    let channel = svc.channel().await;
    let pool = svc.db.pool().await;
    // Hold the hog's one slot with a call that waits on a row lock.
    let mut admin = CustomerServiceClient::with_interceptor(channel.clone(), svc.bearer(&[Role::Admin], "hog", None));
    let created = admin
        .create_customer(pb::CreateCustomerRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            customer: Some(pb::Customer {
                kind: pb::PartyKind::Organization as i32,
                display_name: "杭州华润燃气有限公司".into(),
                region: "CN-ZJ".into(),
                branch: "hz".into(),
                ..Default::default()
            }),
            confirm_not_duplicate: true,
        })
        .await
        .expect("created")
        .into_inner()
        .customer
        .expect("customer");
    let mut lock = pool.begin().await.expect("tx");
    sqlx::query("SELECT 1 FROM customers.customers WHERE id = $1::uuid FOR UPDATE")
        .bind(&created.id)
        .execute(&mut *lock)
        .await
        .expect("lock");
    let mut blocked = admin.clone();
    let id = created.id.clone();
    let holder = tokio::spawn(async move {
        blocked
            .update_customer(pb::UpdateCustomerRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                customer: Some(pb::Customer { id, summary: "x".into(), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["summary".into()] }),
                etag: String::new(),
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = admin.get_customer(pb::GetCustomerRequest { id: created.id.clone() }).await.expect_err("over its share");
    assert_eq!(err.code(), Code::ResourceExhausted);
    let mut other = CustomerServiceClient::with_interceptor(channel, svc.bearer(&[Role::Admin], "other", None));
    other.get_customer(pb::GetCustomerRequest { id: created.id.clone() }).await.expect("another principal is served");
    lock.rollback().await.expect("release");
    holder.await.expect("joined").expect("the held call completes");
}

//! Status codes a client can act on: its mistakes are
//! INVALID_ARGUMENT naming the field, never INTERNAL; a database that went
//! away is UNAVAILABLE; conflicts ABORTED; timeouts DEADLINE_EXCEEDED.

use std::time::Duration;

use crm_platform::error::{DbFailure, classify, from_sqlx};
use crm_proto::{
    billing::v1 as bpb,
    customers::v1::{self as pb, customer_service_client::CustomerServiceClient},
};
use crm_testkit::{Role, TestService};
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

use crate::raw;

fn fields(s: &tonic::Status) -> Vec<String> {
    s.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|f| f.field).collect()).unwrap_or_default()
}

async fn customers_count(svc: &TestService) -> i64 {
    let pool = svc.db.pool().await;
    sqlx::query_scalar("SELECT count(*) FROM customers.customers").fetch_one(&pool).await.expect("count")
}

#[tokio::test]
async fn an_undecodable_body_is_invalid_argument_and_changes_nothing() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let token = svc.token(&[Role::Admin], "admin", None);
    for body in [vec![0xff, 0xff, 0xff], vec![0x0a, 0x50, 0x01], vec![0x12; 7]] {
        let err = raw::call(svc.channel().await, "/crm.customers.v1.CustomerService/CreateCustomer", &token, body)
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    assert_eq!(customers_count(&svc).await, 0);
}

#[tokio::test]
async fn a_nul_byte_anywhere_is_invalid_argument_naming_the_field() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let mut admin = CustomerServiceClient::with_interceptor(svc.channel().await, svc.bearer(&[Role::Admin], "a", None));
    let customer = pb::Customer {
        display_name: "北京\0燃气".into(),
        region: "CN-BJ".into(),
        branch: "bj".into(),
        contacts: vec![pb::Contact {
            name: "张三".into(),
            phones: vec!["13800138000".into(), "1\u{1}2".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = admin
        .create_customer(pb::CreateCustomerRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            customer: Some(customer),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(fields(&err), ["customer.display_name", "customer.contacts[0].phones[1]"]);
    assert_eq!(customers_count(&svc).await, 0);
}

#[tokio::test]
async fn timestamps_outside_protobufs_range_are_invalid_argument() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let mut mgr = CustomerServiceClient::with_interceptor(
        svc.channel().await,
        svc.bearer(&[Role::SalesManager], "m", Some("bj")),
    );
    for (seconds, nanos) in [(-(1i64 << 40), 0), (1i64 << 40, 0), (0, -1), (0, 1_000_000_000)] {
        let err = mgr
            .get_entry_timeliness(pb::GetEntryTimelinessRequest {
                start_time: Some(prost_types::Timestamp { seconds, nanos }),
                end_time: Some(prost_types::Timestamp { seconds: 1_800_000_000, nanos: 0 }),
                owner_id: String::new(),
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{seconds} {nanos}: {err:?}");
        assert_eq!(fields(&err), ["start_time"]);
    }
    // The edges of the range itself are accepted.
    let ok = mgr
        .get_entry_timeliness(pb::GetEntryTimelinessRequest {
            start_time: Some(prost_types::Timestamp { seconds: -62_135_596_800, nanos: 0 }),
            end_time: Some(prost_types::Timestamp { seconds: 253_402_300_799, nanos: 999_999_999 }),
            owner_id: String::new(),
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn impossible_dates_are_invalid_argument() {
    let svc = TestService::spawn(&crm_billing::SERVICE).await;
    let token = svc.token(&[Role::Finance], "f", None);
    let req = bpb::RunBillingRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        period_start: Some(crm_proto::common::v1::Date { year: 2026, month: 2, day: 30 }),
        period_end: Some(crm_proto::common::v1::Date { year: 2026, month: 13, day: 1 }),
    };
    let err = raw::call(svc.channel().await, "/crm.billing.v1.BillingService/RunBilling", &token, req.encode_to_vec())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(fields(&err), ["period_start", "period_end"]);
}

#[tokio::test]
async fn made_up_methods_are_unimplemented_and_unauthenticated_calls_refused() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let token = svc.token(&[Role::Admin], "admin", None);
    let err = raw::call(svc.channel().await, "/crm.customers.v1.CustomerService/DropEverything", &token, vec![])
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unimplemented);
    let err = raw::call(svc.channel().await, "/crm.customers.v1.CustomerService/GetCustomer", "not-a-token", vec![])
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated);
}

/// Real Postgres errors, raised on purpose, through the one mapping.
#[tokio::test]
async fn database_failures_map_to_codes_a_client_can_act_on() {
    let db = crm_testkit::database(&[]).await;
    let pool =
        crm_platform::db::connect_with_timeout(&db.url, 2, Duration::from_secs(5), Some(Duration::from_millis(200)))
            .await
            .expect("pool");
    let raise = |code: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = format!("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{code}'; END $$");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect_err("raised")
        }
    };
    for (sqlstate, want, failure) in [
        ("40001", Code::Aborted, DbFailure::Conflict),
        ("40P01", Code::Aborted, DbFailure::Conflict),
        ("57P01", Code::Unavailable, DbFailure::Unavailable),
        ("08006", Code::Unavailable, DbFailure::Unavailable),
        ("53300", Code::Unavailable, DbFailure::Unavailable),
        ("55000", Code::Unavailable, DbFailure::Unavailable),
        ("22021", Code::InvalidArgument, DbFailure::BadValue),
        ("XX000", Code::Internal, DbFailure::Ours),
    ] {
        let e = raise(sqlstate).await;
        assert_eq!(classify(&e), failure, "{sqlstate}");
        assert_eq!(from_sqlx(&e).code(), want, "{sqlstate}");
    }
    // The statement timeout is a deadline.
    let e = sqlx::query("SELECT pg_sleep(2)").execute(&pool).await.expect_err("timed out");
    assert_eq!(from_sqlx(&e).code(), Code::DeadlineExceeded);
    // A connection killed under us is retryable.
    let mut conn = pool.acquire().await.expect("conn");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.expect("pid");
    let admin = db.pool().await;
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&admin).await.expect("terminate");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = sqlx::query("SELECT 1").execute(&mut *conn).await.expect_err("gone");
    assert_eq!(from_sqlx(&e).code(), Code::Unavailable, "{e}");
}

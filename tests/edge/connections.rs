//! Connections and the database: idle TCP connections are closed,
//! health follows the database, and a query whose call was abandoned is
//! cancelled instead of holding a pooled connection.

use std::time::{Duration, Instant};

use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use crm_testkit::{Role, TestService};
use tokio::io::AsyncReadExt;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

#[tokio::test]
async fn a_connection_that_never_calls_is_closed() {
    let svc = TestService::spawn_configured(&crm_customers::SERVICE, |cfg| {
        cfg.connection_first_call_timeout_ms = 300;
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(svc.addr).await.expect("connect");
    let mut buf = [0u8; 64];
    let started = Instant::now();
    // The server may send its HTTP/2 settings first; it then closes.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "closed by the server");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

async fn health(svc: &TestService) -> Option<ServingStatus> {
    let mut h = HealthClient::new(svc.channel().await);
    let r = h.check(HealthCheckRequest { service: "crm.customers.v1.CustomerService".into() }).await.ok()?;
    ServingStatus::try_from(r.into_inner().status).ok()
}

async fn wait_for(svc: &TestService, want: ServingStatus, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if health(svc).await == Some(want) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "health did not become {want:?} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_is_not_serving_while_the_database_refuses_and_recovers_within_a_second() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    wait_for(&svc, ServingStatus::Serving, Duration::from_secs(2)).await;
    let admin = crm_testkit::admin_pool().await;
    let name = &svc.db.name;
    // The database goes away: no new connections, existing ones cut.
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")))
        .execute(&admin)
        .await
        .expect("close");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(name)
        .execute(&admin)
        .await
        .expect("terminate");
    wait_for(&svc, ServingStatus::NotServing, Duration::from_secs(3)).await;
    let mut c = CustomerServiceClient::with_interceptor(svc.channel().await, svc.bearer(&[Role::Admin], "a", None));
    let err = c.list_customers(pb::ListCustomersRequest::default()).await.expect_err("no database");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")))
        .execute(&admin)
        .await
        .expect("open");
    let took = wait_for(&svc, ServingStatus::Serving, Duration::from_secs(3)).await;
    assert!(took < Duration::from_millis(1_500), "SERVING again {took:?} after the database came back");
    c.list_customers(pb::ListCustomersRequest::default()).await.expect("served again");
}

#[tokio::test]
async fn a_query_whose_caller_gave_up_is_cancelled() {
    let db = crm_testkit::database(&[]).await;
    let pool = crm_platform::db::connect_with_timeout(&db.url, 1, Duration::from_secs(5), None).await.expect("pool");
    let marker = format!("abandoned_{}", uuid::Uuid::new_v4().simple());
    let sql = format!("SELECT pg_sleep(30) AS {marker}");
    // The caller's deadline passes after 200 ms; its future is dropped.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), async {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await
    })
    .await;
    assert!(gave_up.is_err());
    // Postgres stops running it within a few seconds, not 30.
    let admin = db.pool().await;
    let started = Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        )
        .bind(&marker)
        .fetch_one(&admin)
        .await
        .expect("activity");
        if running == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the abandoned query is still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The pool's one connection is usable again at once.
    let one: i32 = tokio::time::timeout(Duration::from_secs(2), sqlx::query_scalar("SELECT 1").fetch_one(&pool))
        .await
        .expect("a connection is free")
        .expect("query");
    assert_eq!(one, 1);
}

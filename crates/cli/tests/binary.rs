//! The `crm` binary as ops run it: `crm serve customers` configured from the
//! environment, health, metrics on the admin port, SIGTERM → graceful exit;
//! `crm token`; refusing to start without a signing key.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use crm_testkit::{Bearer, TEST_JWT_SECRET};

const CRM: &str = env!("CARGO_BIN_EXE_crm");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin port");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test]
async fn serve_runs_from_the_environment_and_stops_gracefully_on_sigterm() {
    let db = crm_testkit::database(&[&crm_customers::SERVICE]).await;
    let (grpc, admin) = (free_port(), free_port());
    let mut child = Command::new(CRM)
        .args(["serve", "customers"])
        .env("DATABASE_URL", &db.url)
        .env("CRM_JWT_SECRET", TEST_JWT_SECRET)
        .env("CRM_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("CRM_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("CRM_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crm serve");

    // Health through the same binary, as a container health check would.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = Command::new(CRM)
            .args(["health", "--addr", &format!("http://127.0.0.1:{grpc}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("crm health")
            .success();
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "crm serve did not become healthy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A token minted by `crm token` with the same key is accepted.
    let out = Command::new(CRM)
        .args(["token", "--role", "sales", "--sub", "u1", "--branch", "bj"])
        .env("CRM_JWT_SECRET", TEST_JWT_SECRET)
        .output()
        .expect("crm token");
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc}")).unwrap().connect().await.unwrap();
    let mut client = CustomerServiceClient::with_interceptor(channel, Bearer::new(&token));
    let created = client
        .create_customer(pb::CreateCustomerRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            customer: Some(pb::Customer {
                kind: pb::PartyKind::Person as i32,
                display_name: "张三".into(),
                ..Default::default()
            }),
            confirm_not_duplicate: false,
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.customer.expect("customer").owner_id, "u1");

    let metrics = http_get(admin, "/metrics");
    assert!(metrics.contains("crm_rpc_requests_total"), "{metrics}");
    assert!(metrics.contains(r#"method="CreateCustomer",code="Ok""#), "{metrics}");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "crm serve did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    // Logs are JSON lines when stderr is not a terminal, one line per RPC with its request id.
    let rpc_line = logs.lines().find(|l| l.contains("CreateCustomer")).expect("an RPC log line");
    assert!(rpc_line.starts_with('{') && rpc_line.contains("request_id"), "{rpc_line}");
}

#[test]
fn serve_refuses_to_start_without_a_signing_key() {
    let out = Command::new(CRM)
        .args(["serve", "customers"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env_remove("CRM_JWT_SECRET")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CRM_JWT_SECRET"));
}

#[test]
fn unknown_services_and_roles_are_refused() {
    let out = Command::new(CRM).args(["serve", "payroll"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("available: customers, complaints, dispatch, billing"));
    let out = Command::new(CRM)
        .args(["token", "--role", "root", "--sub", "u1"])
        .env("CRM_JWT_SECRET", TEST_JWT_SECRET)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
}

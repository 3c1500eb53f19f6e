//! Spawning the service and talking to it as different staff.

use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use crm_testkit::{Bearer, Role, TestService};
use sqlx::PgPool;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

pub type Client = CustomerServiceClient<InterceptedService<Channel, Bearer>>;

pub struct App {
    pub svc: TestService,
    pub pool: PgPool,
}

impl App {
    pub async fn new() -> App {
        let svc = TestService::spawn(&crm_customers::SERVICE).await;
        let pool = svc.db.pool().await;
        App { svc, pool }
    }

    pub async fn client(&self, roles: &[Role], sub: &str, branch: Option<&str>) -> Client {
        CustomerServiceClient::with_interceptor(self.svc.channel().await, self.svc.bearer(roles, sub, branch))
    }

    /// A client that sends the given raw bearer value (or none).
    pub async fn client_with(&self, bearer: Bearer) -> Client {
        CustomerServiceClient::with_interceptor(self.svc.channel().await, bearer)
    }

    /// A salesperson of branch `bj`.
    pub async fn sales(&self, sub: &str) -> Client {
        self.client(&[Role::Sales], sub, Some("bj")).await
    }

    /// The sales manager of branch `bj`.
    pub async fn manager(&self) -> Client {
        self.client(&[Role::SalesManager], "mgr-bj", Some("bj")).await
    }

    pub async fn admin(&self) -> Client {
        self.client(&[Role::Admin], "admin", None).await
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM customers.{table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await.expect("count")
    }

    /// Registers a customer as `client`, confirming past duplicates.
    pub async fn create(&self, client: &mut Client, c: pb::Customer) -> pb::Customer {
        client
            .create_customer(pb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(c),
                confirm_not_duplicate: true,
            })
            .await
            .expect("create customer")
            .into_inner()
            .customer
            .expect("customer created")
    }

    pub async fn get(&self, id: &str) -> pb::Customer {
        self.admin()
            .await
            .get_customer(pb::GetCustomerRequest { id: id.to_string() })
            .await
            .expect("get")
            .into_inner()
            .customer
            .expect("customer")
    }
}

/// A fresh idempotency key.
pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A minimal valid organization.
/// A manager's request to merge `merged` into `survivor` (CUS-2).
pub fn merge(survivor: &str, merged: &str) -> pb::MergeCustomersRequest {
    pb::MergeCustomersRequest {
        request_id: rid(),
        survivor_id: survivor.into(),
        merged_id: merged.into(),
        reason: "同一客户重复登记".into(),
    }
}

pub fn org(name: &str, region: &str) -> pb::Customer {
    pb::Customer {
        kind: pb::PartyKind::Organization as i32,
        display_name: name.to_string(),
        region: region.to_string(),
        ..Default::default()
    }
}

/// Asserts INVALID_ARGUMENT with a field violation naming `field`.
pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    assert!(fields.iter().any(|f| f == field), "expected a violation on {field}, got {fields:?} ({status:?})");
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

/// Imports `rows` in messages of `per_message` rows under `options`.
pub async fn import(
    client: &mut Client,
    options: pb::ImportOptions,
    rows: Vec<pb::Customer>,
    per_message: usize,
) -> Result<pb::ImportCustomersResponse, Status> {
    let mut messages = vec![pb::ImportCustomersRequest { options: Some(options), customers: vec![] }];
    for chunk in rows.chunks(per_message.max(1)) {
        messages.push(pb::ImportCustomersRequest { options: None, customers: chunk.to_vec() });
    }
    client.import_customers(tokio_stream::iter(messages)).await.map(tonic::Response::into_inner)
}

/// Import options with a fresh request id.
pub fn import_options(policy: pb::ImportDuplicatePolicy) -> pb::ImportOptions {
    pb::ImportOptions { request_id: rid(), duplicate_policy: policy as i32, first_row_number: 2 }
}

/// A company row as a spreadsheet would hold it.
pub fn company(name: &str, region: &str, phone: &str, branch: &str) -> pb::Customer {
    pb::Customer { phone: phone.to_string(), branch: branch.to_string(), ..org(name, region) }
}

//! Spawning customers + complaints on one database and talking to them as
//! different staff.

use crm_events::{Payload, pb::Event};
use crm_proto::{
    complaints::v1::{self as pb, complaint_service_client::ComplaintServiceClient},
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
};
use crm_testkit::{Bearer, Role, TestService};
use prost::Message;
use sqlx::PgPool;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

pub type Client = ComplaintServiceClient<InterceptedService<Channel, Bearer>>;

pub struct App {
    pub customers: TestService,
    pub complaints: TestService,
    pub pool: PgPool,
}

impl App {
    pub async fn new() -> App {
        let db = crm_testkit::database(&[&crm_customers::SERVICE, &crm_complaints::SERVICE]).await;
        let customers = TestService::spawn_on(&crm_customers::SERVICE, db.clone(), None).await;
        let complaints = TestService::spawn_on(&crm_complaints::SERVICE, db, Some(customers.url())).await;
        let pool = complaints.db.pool().await;
        App { customers, complaints, pool }
    }

    pub async fn client(&self, roles: &[Role], sub: &str) -> Client {
        ComplaintServiceClient::with_interceptor(
            self.complaints.channel().await,
            self.complaints.bearer(roles, sub, None),
        )
    }

    pub async fn client_with(&self, bearer: Bearer) -> Client {
        ComplaintServiceClient::with_interceptor(self.complaints.channel().await, bearer)
    }

    pub async fn desk(&self) -> Client {
        self.client(&[Role::ServiceDesk], "desk-1").await
    }
    pub async fn head(&self) -> Client {
        self.client(&[Role::DeptHead], "head-lab").await
    }
    pub async fn office(&self) -> Client {
        self.client(&[Role::Office], "office-1").await
    }
    pub async fn quality(&self) -> Client {
        self.client(&[Role::QualityManager], "qm-1").await
    }
    pub async fn senior(&self) -> Client {
        self.client(&[Role::SeniorManager], "senior-1").await
    }
    pub async fn admin(&self) -> Client {
        self.client(&[Role::Admin], "admin").await
    }

    /// A customer registered with the customers service, classified as
    /// `level`/`tier` when given.
    pub async fn customer(&self, name: &str, level: Option<cpb::ServiceLevel>, tier: Option<cpb::ValueTier>) -> String {
        let bearer = self.customers.bearer(&[Role::Admin], "admin", None);
        let mut c = CustomerServiceClient::with_interceptor(self.customers.channel().await, bearer);
        let created = c
            .create_customer(cpb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(cpb::Customer {
                    kind: cpb::PartyKind::Organization as i32,
                    display_name: name.to_string(),
                    branch: "bj".into(),
                    ..Default::default()
                }),
                confirm_not_duplicate: true,
            })
            .await
            .expect("create customer")
            .into_inner()
            .customer
            .expect("customer");
        if level.is_some() || tier.is_some() {
            c.set_classification(cpb::SetClassificationRequest {
                request_id: rid(),
                customer_id: created.id.clone(),
                etag: String::new(),
                grade: None,
                value_tier: tier.map(|t| t as i32),
                service_level: level.map(|l| l as i32),
                reason: "test".into(),
            })
            .await
            .expect("classify");
        }
        created.id
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM complaints.{table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await.expect("count")
    }

    /// The events of `event_type` in the outbox, in feed order: aggregate id
    /// and payload (decoded from the stored protobuf body).
    pub async fn outbox(&self, event_type: &str) -> Vec<(uuid::Uuid, Payload)> {
        let rows: Vec<(uuid::Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT aggregate_id, body FROM complaints.outbox WHERE event_type = $1 ORDER BY seq")
                .bind(event_type)
                .fetch_all(&self.pool)
                .await
                .expect("outbox");
        rows.into_iter()
            .map(|(id, body)| (id, Event::decode(body.as_slice()).expect("event body").payload.expect("payload")))
            .collect()
    }

    /// Every event type in the outbox, in feed order.
    pub async fn outbox_types(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT event_type FROM complaints.outbox ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .expect("outbox")
    }

    pub async fn register(&self, customer_id: &str, category: pb::Category) -> pb::Complaint {
        self.desk()
            .await
            .register_complaint(registration(customer_id, category))
            .await
            .expect("register")
            .into_inner()
            .complaint
            .expect("complaint")
    }

    pub async fn get(&self, id: &str) -> pb::Complaint {
        self.admin()
            .await
            .get_complaint(pb::GetComplaintRequest { id: id.into(), number: String::new() })
            .await
            .expect("get")
            .into_inner()
            .complaint
            .expect("complaint")
    }

    /// A complaint about billing, registered and accepted.
    pub async fn accepted(&self, customer_id: &str) -> pb::Complaint {
        let c = self.register(customer_id, pb::Category::Billing).await;
        self.desk()
            .await
            .accept_complaint(pb::AcceptComplaintRequest {
                request_id: rid(),
                id: c.id,
                etag: c.etag,
                note: String::new(),
            })
            .await
            .expect("accept")
            .into_inner()
            .complaint
            .expect("complaint")
    }

    /// Accepted, investigated and resolved with `verdict`.
    pub async fn resolved(&self, customer_id: &str, verdict: pb::Verdict) -> pb::Complaint {
        let c = self.accepted(customer_id).await;
        let c = self
            .head()
            .await
            .start_investigation(pb::StartInvestigationRequest { request_id: rid(), id: c.id, etag: c.etag })
            .await
            .expect("start")
            .into_inner()
            .complaint
            .expect("complaint");
        self.head()
            .await
            .resolve_complaint(pb::ResolveComplaintRequest {
                request_id: rid(),
                id: c.id,
                etag: c.etag,
                findings: Some(findings(verdict)),
            })
            .await
            .expect("resolve")
            .into_inner()
            .complaint
            .expect("complaint")
    }

    /// Resolved and answered.
    pub async fn answered(&self, customer_id: &str) -> pb::Complaint {
        let c = self.resolved(customer_id, pb::Verdict::Justified).await;
        self.desk()
            .await
            .answer_complaint(pb::AnswerComplaintRequest {
                request_id: rid(),
                id: c.id,
                etag: c.etag,
                answer: "We are sorry; fixed.".into(),
            })
            .await
            .expect("answer")
            .into_inner()
            .complaint
            .expect("complaint")
    }
}

pub fn registration(customer_id: &str, category: pb::Category) -> pb::RegisterComplaintRequest {
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    pb::RegisterComplaintRequest {
        request_id: rid(),
        customer_id: customer_id.to_string(),
        channel: pb::Channel::Email as i32,
        category: category as i32,
        department: "lab-chem".into(),
        urgency: pb::Urgency::Normal as i32,
        description: "报告数据有误".into(),
        references: Some(pb::References { report_ids: vec!["R-1".into()], ..Default::default() }),
        report_received_on: (category == pb::Category::TestResult).then(|| date(today - chrono::Days::new(3))),
    }
}

pub fn date(d: chrono::NaiveDate) -> crm_proto::common::v1::Date {
    use chrono::Datelike;
    crm_proto::common::v1::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

pub fn findings(verdict: pb::Verdict) -> pb::Findings {
    pb::Findings {
        verdict: verdict as i32,
        facts: "the invoice doubled a line".into(),
        root_cause: "manual entry".into(),
        corrective_actions: "corrected the invoice".into(),
        preventive_actions: "validation on entry".into(),
    }
}

/// A fresh idempotency key.
pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
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

/// Asserts FAILED_PRECONDITION with `reason`.
pub fn assert_rule(status: &Status, reason_want: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), reason_want, "{status:?}");
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

//! Shared set-up of the flow tests: all four services in-process on one
//! ephemeral cluster, each following the others' event feeds, with clients
//! and tokens for every role.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

use std::time::Duration;

use crm_platform::ServiceDef;
use crm_proto::{
    billing::v1::billing_service_client::BillingServiceClient,
    complaints::v1::complaint_service_client::ComplaintServiceClient,
    customers::v1::customer_service_client::CustomerServiceClient,
    dispatch::v1::dispatch_service_client::DispatchServiceClient,
    events::v1::event_feed_service_client::EventFeedServiceClient,
};
use crm_testkit::{Bearer, Role, TestGroup};
use sqlx::PgPool;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub use crm_testkit;

pub type Client<T> = T;
pub type Authed = InterceptedService<Channel, Bearer>;

/// The four services in the order they are started.
pub const ALL: [&ServiceDef; 4] =
    [&crm_customers::SERVICE, &crm_complaints::SERVICE, &crm_dispatch::SERVICE, &crm_billing::SERVICE];

/// The whole system for one test.
pub struct System {
    pub group: TestGroup,
    pub pool: PgPool,
}

impl System {
    pub async fn start() -> System {
        let group = TestGroup::spawn(&ALL).await;
        let pool = group.db.pool().await;
        System { group, pool }
    }

    async fn channel(&self, service: &str) -> Channel {
        self.group.get(service).channel().await
    }

    fn bearer(&self, roles: &[Role], sub: &str, branch: Option<&str>) -> Bearer {
        self.group.get("customers").bearer(roles, sub, branch)
    }

    pub async fn customers(&self, roles: &[Role], sub: &str) -> CustomerServiceClient<Authed> {
        CustomerServiceClient::with_interceptor(self.channel("customers").await, self.bearer(roles, sub, Some("bj")))
    }

    pub async fn complaints(&self, roles: &[Role], sub: &str) -> ComplaintServiceClient<Authed> {
        ComplaintServiceClient::with_interceptor(self.channel("complaints").await, self.bearer(roles, sub, Some("bj")))
    }

    pub async fn dispatch(&self, roles: &[Role], sub: &str) -> DispatchServiceClient<Authed> {
        DispatchServiceClient::with_interceptor(self.channel("dispatch").await, self.bearer(roles, sub, Some("bj")))
    }

    pub async fn billing(&self, roles: &[Role], sub: &str) -> BillingServiceClient<Authed> {
        BillingServiceClient::with_interceptor(self.channel("billing").await, self.bearer(roles, sub, Some("bj")))
    }

    /// The event feed (and consumer views) of `service`, as admin.
    pub async fn feed(&self, service: &str) -> EventFeedServiceClient<Authed> {
        EventFeedServiceClient::with_interceptor(self.channel(service).await, self.bearer(&[Role::Admin], "ops", None))
    }
}

/// Polls `check` until it returns Some, for at most `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh idempotency key.
pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub use crm_proto::{
    billing::v1 as bpb, common::v1 as common, complaints::v1 as kpb, customers::v1 as cpb, dispatch::v1 as dpb,
};

pub fn cny(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money { amount_minor, currency_code: "CNY".into() })
}

pub fn date(d: chrono::NaiveDate) -> common::Date {
    use chrono::Datelike;
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

/// A working day (Monday to Friday) a week or more ahead.
pub fn working_day() -> chrono::NaiveDate {
    use chrono::{Datelike, Days, Weekday};
    let mut d = chrono::Utc::now().date_naive() + Days::new(7);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d = d + Days::new(1);
    }
    d
}

/// A maintenance work order for `customer` (north, gps).
pub fn maintenance(customer: &str) -> dpb::CreateWorkOrderRequest {
    dpb::CreateWorkOrderRequest {
        request_id: rid(),
        customer_id: customer.into(),
        kind: dpb::WorkOrderKind::Maintenance as i32,
        urgency: dpb::Urgency::Normal as i32,
        site_address: "北京市朝阳区建国路 1 号".into(),
        contact_name: "王经理".into(),
        contact_phone: "13800138000".into(),
        description: "年度保养".into(),
        required_skills: vec!["gps".into()],
        territory: "north".into(),
        installation: None,
        repair: None,
    }
}

/// A complaint about a bill of `customer`.
pub fn billing_complaint(customer: &str) -> kpb::RegisterComplaintRequest {
    kpb::RegisterComplaintRequest {
        request_id: rid(),
        customer_id: customer.into(),
        channel: kpb::Channel::Email as i32,
        category: kpb::Category::Billing as i32,
        department: "billing".into(),
        urgency: kpb::Urgency::Normal as i32,
        description: "账单金额有误".into(),
        references: Some(kpb::References { report_ids: vec!["R-1".into()], ..Default::default() }),
        report_received_on: None,
    }
}

/// Steps staff take, each through the service's gRPC API.
impl System {
    /// A customer registered by salesperson s1 of branch bj.
    pub async fn customer(&self, name: &str) -> String {
        self.customers(&[Role::Sales], "s1")
            .await
            .create_customer(cpb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(cpb::Customer {
                    kind: cpb::PartyKind::Organization as i32,
                    display_name: name.into(),
                    region: "CN-BJ".into(),
                    ..Default::default()
                }),
                confirm_not_duplicate: true,
            })
            .await
            .expect("customer")
            .into_inner()
            .customer
            .expect("created")
            .id
    }

    pub async fn get_customer(&self, id: &str) -> cpb::Customer {
        self.customers(&[Role::Admin], "admin")
            .await
            .get_customer(cpb::GetCustomerRequest { id: id.into() })
            .await
            .expect("get customer")
            .into_inner()
            .customer
            .expect("customer")
    }

    pub async fn behaviour(&self, id: &str) -> cpb::CustomerBehaviour {
        self.customers(&[Role::Admin], "admin")
            .await
            .get_customer_behaviour(cpb::GetCustomerBehaviourRequest { customer_id: id.into() })
            .await
            .expect("behaviour")
            .into_inner()
            .behaviour
            .expect("figures")
    }

    /// The customer's postpaid commercial billing account.
    pub async fn account(&self, customer: &str) -> bpb::Account {
        self.billing(&[Role::Finance], "fin1")
            .await
            .open_account(bpb::OpenAccountRequest {
                request_id: rid(),
                customer_id: customer.into(),
                kind: bpb::AccountKind::Postpaid as i32,
                customer_class: bpb::CustomerClass::Commercial as i32,
                currency_code: String::new(),
            })
            .await
            .expect("account")
            .into_inner()
            .account
            .expect("account")
    }

    pub async fn get_account(&self, id: &str) -> bpb::Account {
        self.billing(&[Role::Finance], "fin1")
            .await
            .get_account(bpb::GetAccountRequest { account_id: id.into(), ..Default::default() })
            .await
            .expect("get account")
            .into_inner()
            .account
            .expect("account")
    }

    pub async fn invoices(&self, account: &str) -> Vec<bpb::Invoice> {
        self.billing(&[Role::Finance], "fin1")
            .await
            .list_invoices(bpb::ListInvoicesRequest { account_id: account.into(), status: 0 })
            .await
            .expect("invoices")
            .into_inner()
            .invoices
    }

    /// A bank transfer of `minor` fen onto the account.
    pub async fn pay(&self, account: &str, minor: i64) {
        self.billing(&[Role::Finance], "fin1")
            .await
            .record_payment(bpb::RecordPaymentRequest {
                request_id: rid(),
                account_id: account.into(),
                method: bpb::PaymentMethod::Transfer as i32,
                amount: cny(minor),
                reference: "bank".into(),
            })
            .await
            .expect("payment");
    }

    /// Field service set-up: technician `sub` (gps, north) and catalogue
    /// parts at their price without VAT, set in billing's catalogue and
    /// copied to dispatch.
    pub async fn field_team(&self, sub: &str, parts: &[(&str, i64)]) -> dpb::Technician {
        for (code, price) in parts {
            self.catalogue_part(code, *price, 0).await;
        }
        let mut mgr = self.dispatch(&[Role::ServiceManager], "mgr-1").await;
        mgr.create_technician(dpb::CreateTechnicianRequest {
            request_id: rid(),
            technician: Some(dpb::Technician {
                user_sub: sub.into(),
                display_name: format!("Tech {sub}"),
                skills: vec!["gps".into()],
                territory: "north".into(),
                daily_capacity: 10,
                ..Default::default()
            }),
        })
        .await
        .expect("technician")
        .into_inner()
        .technician
        .expect("technician")
    }

    /// Sets part `code` in billing's catalogue (the one price list) at `net`
    /// fen and `vat_rate_bp`, and waits until dispatch's copy has it.
    pub async fn catalogue_part(&self, code: &str, net: i64, vat_rate_bp: i32) -> dpb::Part {
        self.billing(&[Role::Admin], "admin")
            .await
            .set_catalogue_item(bpb::SetCatalogueItemRequest {
                request_id: rid(),
                item: Some(bpb::CatalogueItem {
                    code: code.into(),
                    description: format!("part {code}"),
                    kind: bpb::CatalogueKind::Part as i32,
                    unit_price: cny(net),
                    vat_rate_bp,
                    active: true,
                }),
            })
            .await
            .expect("catalogue item");
        let code = code.to_uppercase();
        eventually("the part in dispatch's copy of the catalogue", Duration::from_secs(20), || async {
            let parts = self.parts().await;
            parts.into_iter().find(|p| p.code == code && p.unit_price == cny(net) && p.vat_rate_bp == vat_rate_bp)
        })
        .await
    }

    /// Dispatch's active parts (first page of 1000).
    pub async fn parts(&self) -> Vec<dpb::Part> {
        self.dispatch(&[Role::Technician], "t-any")
            .await
            .list_parts(dpb::ListPartsRequest { page_size: 1000, ..Default::default() })
            .await
            .expect("parts")
            .into_inner()
            .parts
    }

    /// A maintenance order for `customer`, approved by the dispatcher.
    pub async fn approved_order(&self, customer: &str) -> dpb::WorkOrder {
        let mut d = self.dispatch(&[Role::Dispatcher], "disp-1").await;
        let w = d
            .create_work_order(maintenance(customer))
            .await
            .expect("create work order")
            .into_inner()
            .work_order
            .expect("order");
        d.approve_work_order(dpb::ApproveWorkOrderRequest {
            request_id: rid(),
            id: w.id,
            etag: w.etag,
            note: String::new(),
        })
        .await
        .expect("approve")
        .into_inner()
        .work_order
        .expect("order")
    }

    /// `w` assigned to the technician, checked, travelled, on site, and
    /// completed with `parts` used and `collected` fen taken on site.
    pub async fn complete(
        &self,
        w: &dpb::WorkOrder,
        tech: &dpb::Technician,
        parts: &[(&str, i32)],
        collected: i64,
    ) -> dpb::WorkOrder {
        self.dispatch(&[Role::Dispatcher], "disp-1")
            .await
            .assign_work_order(dpb::AssignWorkOrderRequest {
                request_id: rid(),
                id: w.id.clone(),
                etag: String::new(),
                technician_id: tech.id.clone(),
                day: Some(date(working_day())),
            })
            .await
            .expect("assign");
        let mut t = self.dispatch(&[Role::Technician], &tech.user_sub).await;
        let id = w.id.clone();
        t.confirm_checklist(dpb::ConfirmChecklistRequest {
            request_id: rid(),
            id: id.clone(),
            etag: String::new(),
            checklist: Some(dpb::Checklist {
                order_details_checked: true,
                tools_checked: true,
                spare_parts_checked: true,
                documents_checked: true,
            }),
        })
        .await
        .expect("checklist");
        t.start_travel(dpb::StartTravelRequest { request_id: rid(), id: id.clone(), etag: String::new() })
            .await
            .expect("travel");
        t.arrive_on_site(dpb::ArriveOnSiteRequest { request_id: rid(), id: id.clone(), etag: String::new() })
            .await
            .expect("arrive");
        t.complete_work_order(dpb::CompleteWorkOrderRequest {
            request_id: rid(),
            id,
            work_done: "保养完成".into(),
            signed_off_by: "王经理".into(),
            parts: parts.iter().map(|(c, q)| dpb::PartUsed { part_code: (*c).into(), quantity: *q }).collect(),
            payment_collected: (collected > 0).then(|| cny(collected)).flatten(),
            ..Default::default()
        })
        .await
        .expect("complete")
        .into_inner()
        .work_order
        .expect("order")
    }

    /// A billing complaint of `customer`, registered by the service desk.
    pub async fn complaint(&self, customer: &str) -> kpb::Complaint {
        self.complaints(&[Role::ServiceDesk], "desk-1")
            .await
            .register_complaint(billing_complaint(customer))
            .await
            .expect("register complaint")
            .into_inner()
            .complaint
            .expect("complaint")
    }

    /// Accepted, investigated and resolved as justified.
    pub async fn resolve(&self, c: kpb::Complaint) -> kpb::Complaint {
        let mut desk = self.complaints(&[Role::ServiceDesk], "desk-1").await;
        let mut head = self.complaints(&[Role::DeptHead], "head-1").await;
        let c = desk
            .accept_complaint(kpb::AcceptComplaintRequest {
                request_id: rid(),
                id: c.id,
                etag: c.etag,
                note: String::new(),
            })
            .await
            .expect("accept")
            .into_inner()
            .complaint
            .expect("complaint");
        let c = head
            .start_investigation(kpb::StartInvestigationRequest { request_id: rid(), id: c.id, etag: c.etag })
            .await
            .expect("investigate")
            .into_inner()
            .complaint
            .expect("complaint");
        head.resolve_complaint(kpb::ResolveComplaintRequest {
            request_id: rid(),
            id: c.id,
            etag: c.etag,
            findings: Some(kpb::Findings {
                verdict: kpb::Verdict::Justified as i32,
                facts: "the invoice doubled a line".into(),
                root_cause: "manual entry".into(),
                corrective_actions: "corrected the invoice".into(),
                preventive_actions: "validation on entry".into(),
            }),
        })
        .await
        .expect("resolve")
        .into_inner()
        .complaint
        .expect("complaint")
    }

    /// A resolved complaint answered and closed with the customer satisfied.
    pub async fn close(&self, c: kpb::Complaint) -> kpb::Complaint {
        let mut desk = self.complaints(&[Role::ServiceDesk], "desk-1").await;
        let c = desk
            .answer_complaint(kpb::AnswerComplaintRequest {
                request_id: rid(),
                id: c.id,
                etag: c.etag,
                answer: "We are sorry; fixed.".into(),
            })
            .await
            .expect("answer")
            .into_inner()
            .complaint
            .expect("complaint");
        desk.record_feedback(kpb::RecordFeedbackRequest {
            request_id: rid(),
            id: c.id,
            etag: c.etag,
            satisfied: true,
            feedback: "ok".into(),
        })
        .await
        .expect("feedback")
        .into_inner()
        .complaint
        .expect("complaint")
    }

    /// Proposed by the department head, approved by a senior manager.
    pub async fn compensate(&self, complaint_id: &str, minor: i64) {
        self.complaints(&[Role::DeptHead], "head-1")
            .await
            .propose_compensation(kpb::ProposeCompensationRequest {
                request_id: rid(),
                id: complaint_id.into(),
                etag: String::new(),
                amount: cny(minor),
                reason: "the customer paid twice".into(),
            })
            .await
            .expect("propose");
        self.complaints(&[Role::SeniorManager], "senior-1")
            .await
            .approve_compensation(kpb::ApproveCompensationRequest {
                request_id: rid(),
                id: complaint_id.into(),
                etag: String::new(),
            })
            .await
            .expect("approve compensation");
    }

    /// `schema`'s cursor on `source`'s feed (0 before the first event).
    pub async fn cursor(&self, schema: &str, source: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT after_seq FROM {schema}.event_cursors WHERE source = $1"
        )))
        .bind(source)
        .fetch_optional(&self.pool)
        .await
        .expect("cursor")
        .unwrap_or(0)
    }

    /// The highest seq of events of `types` in `schema`'s outbox.
    pub async fn last_seq(&self, schema: &str, types: &[&str]) -> i64 {
        let types: Vec<String> = types.iter().map(|t| (*t).to_string()).collect();
        sqlx::query_scalar::<_, Option<i64>>(sqlx::AssertSqlSafe(format!(
            "SELECT max(seq) FROM {schema}.outbox WHERE event_type = ANY($1)"
        )))
        .bind(&types)
        .fetch_one(&self.pool)
        .await
        .expect("last seq")
        .unwrap_or(0)
    }

    /// Waits until `schema` has applied (or parked) every event of `types`
    /// that `source` has published so far.
    pub async fn caught_up(&self, schema: &str, source: &str, types: &[&str]) {
        let last = self.last_seq(source, types).await;
        let what = format!("{schema} to consume {source} up to {last}");
        eventually(&what, Duration::from_secs(20), || async {
            (self.cursor(schema, source).await >= last).then_some(())
        })
        .await;
    }
}

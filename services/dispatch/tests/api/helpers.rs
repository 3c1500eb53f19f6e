//! Spawning customers + dispatch on one database and talking to them as
//! different staff.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use crm_events::{Payload, pb::Event};
use crm_proto::{
    common::v1 as common,
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    dispatch::v1::{self as pb, dispatch_service_client::DispatchServiceClient},
};
use crm_testkit::{Role, TestService};
use prost::Message;
use sqlx::PgPool;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

/// Revisions of the catalogue items the tests publish: always newer.
static CATALOGUE_REVISION: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// billing's catalogue_item.changed for part `code`.
pub fn catalogue_item(
    code: &str,
    net: i64,
    vat_rate_bp: i32,
    active: bool,
    revision: i64,
) -> crm_events::pb::CatalogueItemChanged {
    crm_events::pb::CatalogueItemChanged {
        code: code.to_uppercase(),
        description: format!("part {code}"),
        kind: "part".into(),
        unit_price: Some(cny(net)),
        vat_rate_bp,
        active,
        revision,
    }
}

pub type Client = DispatchServiceClient<InterceptedService<Channel, crm_testkit::Bearer>>;

pub struct App {
    pub customers: TestService,
    pub dispatch: TestService,
    pub pool: PgPool,
}

impl App {
    pub async fn new() -> App {
        let db = crm_testkit::database(&[&crm_customers::SERVICE, &crm_dispatch::SERVICE]).await;
        let customers = TestService::spawn_on(&crm_customers::SERVICE, db.clone(), None).await;
        let dispatch = TestService::spawn_on(&crm_dispatch::SERVICE, db, Some(customers.url())).await;
        let pool = dispatch.db.pool().await;
        App { customers, dispatch, pool }
    }

    pub async fn client(&self, roles: &[Role], sub: &str) -> Client {
        DispatchServiceClient::with_interceptor(self.dispatch.channel().await, self.dispatch.bearer(roles, sub, None))
    }

    /// A client whose token names a branch.
    pub async fn client_in(&self, roles: &[Role], sub: &str, branch: &str) -> Client {
        DispatchServiceClient::with_interceptor(
            self.dispatch.channel().await,
            self.dispatch.bearer(roles, sub, Some(branch)),
        )
    }

    pub async fn dispatcher(&self) -> Client {
        self.client(&[Role::Dispatcher], "disp-1").await
    }
    pub async fn manager(&self) -> Client {
        self.client(&[Role::ServiceManager], "mgr-1").await
    }
    pub async fn tech(&self, sub: &str) -> Client {
        self.client(&[Role::Technician], sub).await
    }

    /// A customer of branch `branch`.
    pub async fn customer_in(&self, name: &str, branch: &str) -> String {
        let bearer = self.customers.bearer(&[Role::Admin], "admin", None);
        let mut c = CustomerServiceClient::with_interceptor(self.customers.channel().await, bearer);
        c.create_customer(cpb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(cpb::Customer {
                kind: cpb::PartyKind::Organization as i32,
                display_name: name.to_string(),
                branch: branch.into(),
                ..Default::default()
            }),
            confirm_not_duplicate: true,
        })
        .await
        .expect("create customer")
        .into_inner()
        .customer
        .expect("customer")
        .id
    }

    /// A customer registered with the customers service, at `level` when given.
    pub async fn customer(&self, name: &str, level: Option<cpb::ServiceLevel>) -> String {
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
        if let Some(level) = level {
            c.set_classification(cpb::SetClassificationRequest {
                request_id: rid(),
                customer_id: created.id.clone(),
                etag: String::new(),
                grade: None,
                value_tier: None,
                service_level: Some(level as i32),
                reason: "test".into(),
            })
            .await
            .expect("classify");
        }
        created.id
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM dispatch.{table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await.expect("count")
    }

    /// The events of `event_type` in the outbox, in feed order: aggregate id
    /// and payload (decoded from the stored protobuf body).
    pub async fn outbox(&self, event_type: &str) -> Vec<(uuid::Uuid, Payload)> {
        let rows: Vec<(uuid::Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT aggregate_id, body FROM dispatch.outbox WHERE event_type = $1 ORDER BY seq")
                .bind(event_type)
                .fetch_all(&self.pool)
                .await
                .expect("outbox");
        rows.into_iter()
            .map(|(id, body)| (id, Event::decode(body.as_slice()).expect("event body").payload.expect("payload")))
            .collect()
    }

    pub async fn create(&self, req: pb::CreateWorkOrderRequest) -> pb::WorkOrder {
        self.dispatcher().await.create_work_order(req).await.expect("create").into_inner().work_order.expect("order")
    }

    pub async fn get(&self, id: &str) -> pb::WorkOrder {
        self.dispatcher()
            .await
            .get_work_order(pb::GetWorkOrderRequest { id: id.into() })
            .await
            .expect("get")
            .into_inner()
            .work_order
            .expect("order")
    }

    /// A technician with `skills` in `territory`, logging in as `sub`.
    pub async fn technician(&self, sub: &str, skills: &[&str], territory: &str, capacity: i32) -> pb::Technician {
        self.manager()
            .await
            .create_technician(pb::CreateTechnicianRequest {
                request_id: rid(),
                technician: Some(pb::Technician {
                    user_sub: sub.into(),
                    display_name: format!("Tech {sub}"),
                    skills: skills.iter().map(|s| s.to_string()).collect(),
                    territory: territory.into(),
                    daily_capacity: capacity,
                    ..Default::default()
                }),
            })
            .await
            .expect("technician")
            .into_inner()
            .technician
            .expect("technician")
    }

    /// A maintenance order approved directly by the dispatcher.
    pub async fn approved_maintenance(&self, customer_id: &str) -> pb::WorkOrder {
        let w = self.create(maintenance(customer_id)).await;
        self.dispatcher()
            .await
            .approve_work_order(pb::ApproveWorkOrderRequest {
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

    /// An urgent repair, submitted and approved by the service manager.
    pub async fn approved_repair(&self, customer_id: &str) -> pb::WorkOrder {
        let mut req = repair(customer_id);
        req.urgency = pb::Urgency::Urgent as i32;
        let w = self.create(req).await;
        let w = self
            .dispatcher()
            .await
            .submit_work_order(pb::SubmitWorkOrderRequest { request_id: rid(), id: w.id, etag: w.etag })
            .await
            .expect("submit")
            .into_inner()
            .work_order
            .expect("order");
        self.manager()
            .await
            .approve_work_order(pb::ApproveWorkOrderRequest {
                request_id: rid(),
                id: w.id,
                etag: w.etag,
                note: "ok".into(),
            })
            .await
            .expect("approve")
            .into_inner()
            .work_order
            .expect("order")
    }

    /// A device of `customer_id` in vehicle `plate`, covered until `warranty_end`.
    pub async fn device(&self, customer_id: &str, serial: &str, sim: &str, warranty_end: NaiveDate) -> pb::Device {
        self.dispatcher()
            .await
            .register_device(pb::RegisterDeviceRequest {
                request_id: rid(),
                device: Some(device(customer_id, serial, sim, warranty_end)),
            })
            .await
            .expect("device")
            .into_inner()
            .device
            .expect("device")
    }

    /// A catalogue part at `price` fen (no VAT), as billing's catalogue
    /// publishes it (dispatch only keeps a copy).
    pub async fn part(&self, code: &str, price: i64) -> pb::Part {
        self.catalogue(code, price, 0, true).await;
        self.listed_part(code).await.expect("part in the copy")
    }

    /// Delivers billing's catalogue_item.changed for part `code` at the
    /// next revision; returns the outcome.
    pub async fn catalogue(&self, code: &str, net: i64, vat_rate_bp: i32, active: bool) -> crm_events::Outcome {
        let revision = CATALOGUE_REVISION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.catalogue_change(catalogue_item(code, net, vat_rate_bp, active, revision)).await
    }

    /// Delivers one catalogue_item.changed as billing's feed would.
    pub async fn catalogue_change(&self, item: crm_events::pb::CatalogueItemChanged) -> crm_events::Outcome {
        let feed = crm_testkit::HandFeed::new("dispatch", self.pool.clone(), crm_dispatch::events::subscriptions);
        let e = feed.event("billing", &item.code.clone(), Payload::CatalogueItemChanged(item));
        feed.deliver(&e).await
    }

    /// Part `code` as ListParts shows it, withdrawn ones included.
    pub async fn listed_part(&self, code: &str) -> Option<pb::Part> {
        self.tech("t-any")
            .await
            .list_parts(pb::ListPartsRequest { page_size: 1000, include_inactive: true, ..Default::default() })
            .await
            .expect("parts")
            .into_inner()
            .parts
            .into_iter()
            .find(|p| p.code == code.to_uppercase())
    }

    /// `w` assigned to `tech_sub`'s technician, checked, travelled and on site.
    pub async fn on_site(&self, w: &pb::WorkOrder, technician_id: &str, tech_sub: &str) -> pb::WorkOrder {
        let w = self.assign(w, technician_id).await;
        let mut t = self.tech(tech_sub).await;
        let id = w.id.clone();
        t.confirm_checklist(pb::ConfirmChecklistRequest {
            request_id: rid(),
            id: id.clone(),
            etag: String::new(),
            checklist: Some(checklist()),
        })
        .await
        .expect("checklist");
        t.start_travel(pb::StartTravelRequest { request_id: rid(), id: id.clone(), etag: String::new() })
            .await
            .expect("travel");
        t.arrive_on_site(pb::ArriveOnSiteRequest { request_id: rid(), id, etag: String::new() })
            .await
            .expect("arrive")
            .into_inner()
            .work_order
            .expect("order")
    }

    pub async fn assign(&self, w: &pb::WorkOrder, technician_id: &str) -> pb::WorkOrder {
        self.dispatcher()
            .await
            .assign_work_order(assignment(w, technician_id))
            .await
            .expect("assign")
            .into_inner()
            .work_order
            .expect("order")
    }
}

pub fn assignment(w: &pb::WorkOrder, technician_id: &str) -> pb::AssignWorkOrderRequest {
    pb::AssignWorkOrderRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: String::new(),
        technician_id: technician_id.into(),
        day: Some(date(working_day())),
    }
}

pub fn cny(amount_minor: i64) -> common::Money {
    common::Money { amount_minor, currency_code: "CNY".into() }
}

pub fn device(customer_id: &str, serial: &str, sim: &str, warranty_end: NaiveDate) -> pb::Device {
    pb::Device {
        customer_id: customer_id.into(),
        model: "GT-06".into(),
        serial_number: serial.into(),
        sim_number: sim.into(),
        vehicle_plate: "京A12345".into(),
        driver_name: "李师傅".into(),
        purchase_date: Some(date(NaiveDate::from_ymd_opt(2024, 1, 10).unwrap())),
        warranty_end: Some(date(warranty_end)),
        ..Default::default()
    }
}

pub fn checklist() -> pb::Checklist {
    pb::Checklist {
        order_details_checked: true,
        tools_checked: true,
        spare_parts_checked: true,
        documents_checked: true,
    }
}

fn base(customer_id: &str, kind: pb::WorkOrderKind) -> pb::CreateWorkOrderRequest {
    pb::CreateWorkOrderRequest {
        request_id: rid(),
        customer_id: customer_id.into(),
        kind: kind as i32,
        urgency: pb::Urgency::Normal as i32,
        site_address: "北京市朝阳区建国路 1 号".into(),
        contact_name: "王经理".into(),
        contact_phone: "13800138000".into(),
        description: String::new(),
        required_skills: vec!["gps".into()],
        territory: "north".into(),
        installation: None,
        repair: None,
    }
}

pub fn installation(customer_id: &str, plates: &[&str]) -> pb::CreateWorkOrderRequest {
    let mut r = base(customer_id, pb::WorkOrderKind::Installation);
    r.installation = Some(pb::InstallationDetails {
        request_reference: "INST-2026-001".into(),
        vehicles: plates
            .iter()
            .map(|p| pb::Vehicle {
                plate: p.to_string(),
                driver_name: "李师傅".into(),
                driver_phone: "13900139000".into(),
                device_model: "GT-06".into(),
            })
            .collect(),
    });
    r
}

pub fn repair(customer_id: &str) -> pb::CreateWorkOrderRequest {
    let mut r = base(customer_id, pb::WorkOrderKind::Repair);
    r.repair = Some(pb::RepairDetails {
        device_model: "GT-06".into(),
        purchase_date: Some(date(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap())),
        fault: "终端不上线".into(),
        device_serial: "SN-0001".into(),
    });
    r
}

pub fn maintenance(customer_id: &str) -> pb::CreateWorkOrderRequest {
    let mut r = base(customer_id, pb::WorkOrderKind::Maintenance);
    r.description = "年度保养".into();
    r
}

/// A working day (Monday to Friday) a week or more ahead.
pub fn working_day() -> NaiveDate {
    let mut d = chrono::Utc::now().date_naive() + Days::new(7);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d = d + Days::new(1);
    }
    d
}

/// A Saturday a week or more ahead.
pub fn saturday() -> NaiveDate {
    let mut d = chrono::Utc::now().date_naive() + Days::new(7);
    while d.weekday() != Weekday::Sat {
        d = d + Days::new(1);
    }
    d
}

pub fn date(d: NaiveDate) -> common::Date {
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
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

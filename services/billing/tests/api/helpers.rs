//! Spawning customers + billing and talking to billing as different staff.

use crm_proto::{
    billing::v1::{self as pb, billing_service_client::BillingServiceClient},
    common::v1 as common,
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
};
use crm_testkit::{Bearer, Role, TestService};
use sqlx::PgPool;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

pub type Client = BillingServiceClient<InterceptedService<Channel, Bearer>>;

pub struct App {
    pub customers: TestService,
    pub billing: TestService,
    pub pool: PgPool,
}

impl App {
    pub async fn new() -> App {
        let db = crm_testkit::database(&[&crm_customers::SERVICE, &crm_billing::SERVICE]).await;
        let customers = TestService::spawn_on(&crm_customers::SERVICE, db.clone(), None).await;
        let billing = TestService::spawn_on(&crm_billing::SERVICE, db.clone(), Some(customers.url())).await;
        let pool = db.pool().await;
        App { customers, billing, pool }
    }

    pub async fn client(&self, role: Role, sub: &str) -> Client {
        BillingServiceClient::with_interceptor(
            self.billing.channel().await,
            self.billing.bearer(&[role], sub, Some("bj")),
        )
    }

    pub async fn finance(&self) -> Client {
        self.client(Role::Finance, "fin1").await
    }

    pub async fn admin(&self) -> Client {
        self.client(Role::Admin, "admin").await
    }

    /// A customer registered in the customers service.
    pub async fn customer(&self, name: &str) -> String {
        let mut c = CustomerServiceClient::with_interceptor(
            self.customers.channel().await,
            self.customers.bearer(&[Role::Sales], "s1", Some("bj")),
        );
        c.create_customer(cpb::CreateCustomerRequest {
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

    /// An active postpaid commercial account of a new customer.
    pub async fn account(&self, name: &str) -> pb::Account {
        let customer = self.customer(name).await;
        self.finance()
            .await
            .open_account(pb::OpenAccountRequest {
                request_id: rid(),
                customer_id: customer,
                kind: pb::AccountKind::Postpaid as i32,
                customer_class: pb::CustomerClass::Commercial as i32,
                currency_code: String::new(),
            })
            .await
            .expect("account")
            .into_inner()
            .account
            .expect("account")
    }

    /// An issued invoice of `amount` fen (one line, no VAT).
    pub async fn invoice(&self, account: &str, amount: i64) -> pb::Invoice {
        let mut fin = self.finance().await;
        let draft = fin
            .create_invoice(pb::CreateInvoiceRequest {
                request_id: rid(),
                invoice: Some(pb::Invoice {
                    account_id: account.into(),
                    series: "SVC".into(),
                    lines: vec![line("service", 1000, amount, 0)],
                    ..Default::default()
                }),
            })
            .await
            .expect("draft")
            .into_inner()
            .invoice
            .expect("invoice");
        fin.issue_invoice(pb::IssueInvoiceRequest { request_id: rid(), invoice_id: draft.id, etag: String::new() })
            .await
            .expect("issue")
            .into_inner()
            .invoice
            .expect("invoice")
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM billing.{table}")))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// BIL-9: accounts whose stored balance is not the sum of their ledger.
    pub async fn mismatches(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT a.id FROM billing.accounts a LEFT JOIN billing.ledger_entries l \
             ON l.account_id = a.id GROUP BY a.id, a.balance_minor \
             HAVING a.balance_minor <> coalesce(sum(l.amount_minor), 0)) m",
        )
        .fetch_one(&self.pool)
        .await
        .expect("invariant")
    }
}

pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn cny(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money { amount_minor, currency_code: "CNY".into() })
}

pub fn line(description: &str, quantity_milli: i64, unit_price: i64, vat_bp: i32) -> pb::InvoiceLine {
    pb::InvoiceLine {
        description: description.into(),
        quantity_milli,
        unit_price: cny(unit_price),
        vat_rate_bp: vat_bp,
        ..Default::default()
    }
}

pub fn amount(m: &Option<common::Money>) -> i64 {
    m.as_ref().map(|m| m.amount_minor).unwrap_or(i64::MIN)
}

pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    assert!(fields.iter().any(|f| f == field), "expected a violation on {field}, got {fields:?}");
}

pub fn reason(status: &Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

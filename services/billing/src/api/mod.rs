//! gRPC handlers of `crm.billing.v1.BillingService`: decode and validate
//! (convert), authorize (policy table), let the model decide, persist with
//! the store in one transaction with the idempotency key. One file per
//! concept: accounts, prices (tariffs and the catalogue), invoices,
//! payments (and refunds and credit notes), reports, the cash desk and
//! usage (readings and the billing run). Each handler has the name of its
//! RPC.

mod accounts;
mod convert;
mod desk;
mod invoices;
mod payments;
mod prices;
mod reports;
pub mod usage;

use crm_domain::WorkingCalendar;
use crm_platform::{Policy, ServiceContext, client::Peer, idempotency::IdempotentCall, idempotency::Opened};
use crm_proto::billing::v1::{self as pb, billing_service_server::BillingService};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::access::{
        ACCOUNT_OPENERS, ARREARS_READERS, BILLERS, CASHIERS, COLLECTORS, FINANCE, PRICE_ADMINS, PRICE_READERS, READERS,
        READING_SOURCES, SHIFT_READERS, SUMMARY_READERS,
    },
    model::etag,
    store::{self, Account},
};

pub const SERVICE_NAME: &str = "crm.billing.v1.BillingService";

/// Who may call which RPC at all.
pub fn policy() -> Policy {
    Policy::new(SERVICE_NAME)
        .allow("OpenAccount", ACCOUNT_OPENERS)
        .allow("GetAccount", READERS)
        .allow("SuspendAccount", FINANCE)
        .allow("ReactivateAccount", FINANCE)
        .allow("CloseAccount", BILLERS)
        .allow("CreateTariff", PRICE_ADMINS)
        .allow("ListTariffs", PRICE_READERS)
        .allow("QuoteUsage", PRICE_READERS)
        .allow("SetCatalogueItem", PRICE_ADMINS)
        .allow("ListCatalogueItems", PRICE_READERS)
        .allow("CreateInvoice", BILLERS)
        .allow("IssueInvoice", BILLERS)
        .allow("VoidInvoice", FINANCE)
        .allow("GetInvoice", READERS)
        .allow("ListInvoices", READERS)
        .allow("RecordPayment", COLLECTORS)
        .allow("RefundCredit", FINANCE)
        .allow("IssueCreditNote", BILLERS)
        .allow("GetStatement", READERS)
        .allow("ListOverdue", ARREARS_READERS)
        .allow("OpenShift", CASHIERS)
        .allow("CloseShift", CASHIERS)
        .allow("HandOverShift", CASHIERS)
        .allow("GetShift", SHIFT_READERS)
        .allow("GetCurrentShift", CASHIERS)
        .allow("GetDailySummary", SUMMARY_READERS)
        .allow("RecordMeterReadings", READING_SOURCES)
        .allow("RunBilling", BILLERS)
}

#[derive(Clone)]
pub struct BillingApi {
    pool: PgPool,
    calendar: WorkingCalendar,
    customers: std::result::Result<Peer, String>,
}

pub(crate) use crm_platform::Caller;

impl BillingApi {
    pub fn new(pool: PgPool, ctx: &ServiceContext) -> Self {
        let customers = Peer::lazy(&ctx.customers_url, ctx.keys.clone(), "billing").map_err(|e| e.to_string());
        Self { pool, calendar: ctx.calendar.clone(), customers }
    }

    pub fn into_server(self) -> pb::billing_service_server::BillingServiceServer<Self> {
        pb::billing_service_server::BillingServiceServer::new(self)
    }

    /// Opens the transaction of a mutating call and claims its key; a call
    /// that already ran yields its first response instead.
    async fn open<R: Message + Default>(&self, call: &IdempotentCall) -> Result<Opened<R>> {
        Ok(call.open(&self.pool).await?)
    }
}

fn check_etag(version: i64, given: &str) -> Result<()> {
    match convert::opt_etag(given) {
        Some(e) if e != etag(version) => Err(Error::StaleEtag { current: etag(version) }),
        _ => Ok(()),
    }
}

async fn account_locked(conn: &mut PgConnection, id: Uuid) -> Result<Account> {
    store::load_account(conn, id, true)
        .await?
        .ok_or_else(|| Error::NotFound { resource: "account", id: id.to_string() })
}

async fn reload_account(conn: &mut PgConnection, id: Uuid) -> Result<Account> {
    store::load_account(conn, id, false).await?.ok_or_else(|| Error::Corrupt(format!("account {id} vanished")))
}

crm_platform::grpc_service! {
    impl BillingService for BillingApi {
        open_account(pb::OpenAccountRequest) -> pb::OpenAccountResponse;
        get_account(pb::GetAccountRequest) -> pb::GetAccountResponse;
        suspend_account(pb::SuspendAccountRequest) -> pb::SuspendAccountResponse;
        reactivate_account(pb::ReactivateAccountRequest) -> pb::ReactivateAccountResponse;
        close_account(pb::CloseAccountRequest) -> pb::CloseAccountResponse;
        create_tariff(pb::CreateTariffRequest) -> pb::CreateTariffResponse;
        list_tariffs(pb::ListTariffsRequest) -> pb::ListTariffsResponse;
        quote_usage(pb::QuoteUsageRequest) -> pb::QuoteUsageResponse;
        set_catalogue_item(pb::SetCatalogueItemRequest) -> pb::SetCatalogueItemResponse;
        list_catalogue_items(pb::ListCatalogueItemsRequest) -> pb::ListCatalogueItemsResponse;
        create_invoice(pb::CreateInvoiceRequest) -> pb::CreateInvoiceResponse;
        issue_invoice(pb::IssueInvoiceRequest) -> pb::IssueInvoiceResponse;
        void_invoice(pb::VoidInvoiceRequest) -> pb::VoidInvoiceResponse;
        get_invoice(pb::GetInvoiceRequest) -> pb::GetInvoiceResponse;
        list_invoices(pb::ListInvoicesRequest) -> pb::ListInvoicesResponse;
        record_payment(pb::RecordPaymentRequest) -> pb::RecordPaymentResponse;
        refund_credit(pb::RefundCreditRequest) -> pb::RefundCreditResponse;
        issue_credit_note(pb::IssueCreditNoteRequest) -> pb::IssueCreditNoteResponse;
        get_statement(pb::GetStatementRequest) -> pb::GetStatementResponse;
        list_overdue(pb::ListOverdueRequest) -> pb::ListOverdueResponse;
        open_shift(pb::OpenShiftRequest) -> pb::OpenShiftResponse;
        close_shift(pb::CloseShiftRequest) -> pb::CloseShiftResponse;
        hand_over_shift(pb::HandOverShiftRequest) -> pb::HandOverShiftResponse;
        get_shift(pb::GetShiftRequest) -> pb::GetShiftResponse;
        get_current_shift(pb::GetCurrentShiftRequest) -> pb::GetCurrentShiftResponse;
        get_daily_summary(pb::GetDailySummaryRequest) -> pb::GetDailySummaryResponse;
        run_billing(pb::RunBillingRequest) -> pb::RunBillingResponse;
    }
    streaming {
        async fn record_meter_readings(
            &self,
            request: Request<tonic::Streaming<pb::RecordMeterReadingsRequest>>,
        ) -> std::result::Result<Response<pb::RecordMeterReadingsResponse>, Status> {
            let caller = Caller::of(&request)?;
            let mut stream = request.into_inner();
            Ok(Response::new(self.record_readings(&caller, &mut stream).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC of the service is in the policy table.
    #[test]
    fn policy_names_every_rpc() {
        let proto = include_str!("../../../../proto/crm/billing/v1/billing.proto");
        let mut rpcs: Vec<String> = proto
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .map(str::to_string)
            .collect();
        rpcs.sort();
        assert!(!rpcs.is_empty());
        assert_eq!(policy().methods(), rpcs);
    }

    #[test]
    fn prices_change_only_by_admins() {
        assert_eq!(PRICE_ADMINS, &[crm_domain::Role::Admin]);
        assert!(!COLLECTORS.contains(&crm_domain::Role::Auditor));
    }
}

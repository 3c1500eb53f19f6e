//! gRPC handlers of `crm.billing.v1.BillingService`: decode and validate
//! (convert), authorize (policy table), let the model decide, persist with
//! the store in one transaction with the idempotency key.

mod convert;
mod desk;
mod handlers;
pub mod usage;

use crm_domain::WorkingCalendar;
use crm_platform::{Policy, ServiceContext, client::Peer, idempotency::IdempotentCall, idempotency::Opened};
use crm_proto::billing::v1 as pb;
use prost::Message;
use sqlx::PgPool;

use crate::{
    error::Result,
    model::access::{
        ACCOUNT_OPENERS, ARREARS_READERS, BILLERS, CASHIERS, COLLECTORS, FINANCE, PRICE_ADMINS, PRICE_READERS, READERS,
        READING_SOURCES, SHIFT_READERS, SUMMARY_READERS,
    },
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

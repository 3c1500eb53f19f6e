//! gRPC handlers: decode and validate (convert), authorize (policy table and
//! scopes), let the model decide, persist with the store in one transaction
//! together with the idempotency key. No SQL and no business rules here.

mod claims;
mod convert;
mod handlers;
mod import;
mod relationship;
mod sales;
mod sales_convert;

use crm_domain::Role;
use crm_platform::{Policy, idempotency::IdempotentCall, idempotency::Opened};
use crm_proto::customers::v1 as pb;
use prost::Message;
use sqlx::PgPool;

use crate::{
    error::Result,
    model::access::{
        AUDIT_READERS, CLASSIFIERS, EDITORS, MANAGERS, MINUTES_REVIEWERS, READERS, REGISTRARS, REPORT_READERS,
        SURVEY_TAKERS, VISIT_APPROVERS,
    },
};

pub const SERVICE_NAME: &str = "crm.customers.v1.CustomerService";

/// Who may call which RPC at all (CUS-13). Row-level visibility is decided
/// per customer by `model::access::Scope`.
/// CUS-11: a senior manager approves (or refuses) a termination.
const TERMINATION_APPROVERS: &[Role] = &[Role::SeniorManager];
/// CUS-2/CUS-3: a sales manager decides ownership claims (a senior manager
/// or an admin too, across branches).
const CLAIM_DECIDERS: &[Role] = &[Role::SalesManager, Role::SeniorManager, Role::Admin];
/// CUS-14: who may load a customer book (ownership checked per row).
const IMPORTERS: &[Role] = &[Role::Admin, Role::SalesManager];
/// Managers see how tiers are computed; auditors too.
const POLICY_READERS: &[Role] =
    &[Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::Admin, Role::Auditor];

pub fn policy() -> Policy {
    const EDIT: &[Role] = EDITORS;
    Policy::new(SERVICE_NAME)
        .allow("CreateCustomer", REGISTRARS)
        .allow("GetCustomer", READERS)
        .allow("ListCustomers", READERS)
        .allow("SearchCustomers", READERS)
        .allow("ImportCustomers", IMPORTERS)
        .allow("UpdateCustomer", EDIT)
        .allow("AddContact", EDIT)
        .allow("UpdateContact", EDIT)
        .allow("RemoveContact", EDIT)
        .allow("AddAddress", EDIT)
        .allow("UpdateAddress", EDIT)
        .allow("RemoveAddress", EDIT)
        .allow("ChangeStage", EDIT)
        .allow("SetClassification", CLASSIFIERS)
        .allow("AssignOwner", MANAGERS)
        .allow("ListOwnershipHistory", READERS)
        .allow("FileOwnershipClaim", EDIT)
        .allow("DecideOwnershipClaim", CLAIM_DECIDERS)
        .allow("ListOwnershipClaims", EDIT)
        .allow("DistributeLeads", MANAGERS)
        .allow("ListOverdueFirstContacts", REPORT_READERS)
        .allow("GetEntryTimeliness", REPORT_READERS)
        .allow("LogInteraction", EDIT)
        .allow("ListInteractions", READERS)
        .allow("ScheduleFollowUp", EDIT)
        .allow("ListDueFollowUps", EDIT)
        .allow("PlanVisit", EDIT)
        .allow("ApproveVisit", VISIT_APPROVERS)
        .allow("RecordVisitDone", EDIT)
        .allow("SubmitVisitMinutes", EDIT)
        .allow("ReviewVisitMinutes", MINUTES_REVIEWERS)
        .allow("SendVisitMinutes", EDIT)
        .allow("ConfirmVisitReceipt", EDIT)
        .allow("ListVisits", READERS)
        .allow("RecordSurvey", SURVEY_TAKERS)
        .allow("GetSatisfaction", REPORT_READERS)
        .allow("CreateAccountPlan", EDIT)
        .allow("ReviewAccountPlan", MANAGERS)
        .allow("AdvanceContractStage", EDIT)
        .allow("ListAccountPlans", READERS)
        .allow("MergeCustomers", MANAGERS)
        .allow("ListAuditEvents", AUDIT_READERS)
        .allow("RequestTermination", EDIT)
        .allow("ApproveTermination", TERMINATION_APPROVERS)
        .allow("RejectTermination", TERMINATION_APPROVERS)
        .allow("GetTermination", READERS)
        .allow("ListTerminations", READERS)
        .allow("GetCustomerBehaviour", READERS)
        .allow("GetTierPolicy", POLICY_READERS)
        .allow("SetTierPolicy", &[Role::Admin])
}

/// The gRPC service over one database pool.
#[derive(Clone)]
pub struct CustomersApi {
    pool: PgPool,
    /// Working days for CUS-5 entry and CUS-7 minutes deadlines.
    calendar: crm_domain::WorkingCalendar,
    /// CUS-13 reads of contact details, group-committed.
    reads: crate::store::ReadLog,
    /// How common each search and duplicate term is (Postgres' statistics),
    /// re-read every few minutes.
    terms: std::sync::Arc<std::sync::RwLock<(std::time::Instant, std::sync::Arc<crate::store::TermFrequencies>)>>,
}

/// How long term frequencies are trusted before they are read again.
const TERMS_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl CustomersApi {
    pub fn new(pool: PgPool, calendar: crm_domain::WorkingCalendar) -> Self {
        let reads = crate::store::ReadLog::start(pool.clone());
        let stale = std::time::Instant::now().checked_sub(TERMS_TTL * 2).unwrap_or_else(std::time::Instant::now);
        Self { pool, calendar, reads, terms: std::sync::Arc::new(std::sync::RwLock::new((stale, Default::default()))) }
    }

    /// The term frequencies, re-read when older than `TERMS_TTL` (a failed
    /// read keeps the old ones: they only order lookups, never decide).
    async fn term_frequencies(&self, conn: &mut sqlx::PgConnection) -> std::sync::Arc<crate::store::TermFrequencies> {
        {
            let guard = self.terms.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.0.elapsed() < TERMS_TTL {
                return guard.1.clone();
            }
        }
        let fresh = crate::store::term_frequencies(conn).await;
        let mut guard = self.terms.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0 = std::time::Instant::now();
        if let Ok(f) = fresh {
            guard.1 = std::sync::Arc::new(f);
        }
        guard.1.clone()
    }

    pub fn into_server(self) -> pb::customer_service_server::CustomerServiceServer<Self> {
        pb::customer_service_server::CustomerServiceServer::new(self)
    }

    /// Opens the transaction of a mutating call, names its caller for the
    /// audit trail (CUS-13) and claims its idempotency key; a call that
    /// already ran yields its first response instead.
    async fn open<R: Message + Default>(&self, call: &IdempotentCall, who: &Caller) -> Result<Opened<R>> {
        Ok(match call.open(&self.pool).await? {
            Opened::Fresh(mut tx) => {
                crate::store::set_actor(&mut tx, &who.sub, call.method(), who.request_id.as_deref()).await?;
                Opened::Fresh(tx)
            }
            replay => replay,
        })
    }
}

pub(crate) use crm_platform::Caller;

/// A customer message checked as CreateCustomer checks it (benchmarks and
/// tools that build rows the way the API would).
pub fn customer_input_for_bench(c: &pb::Customer) -> Result<crate::model::input::NewCustomer, tonic::Status> {
    convert::customer_input(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC of the service is in the policy table (unlisted ones are
    /// denied to everyone, which would make an RPC silently unusable).
    #[test]
    fn policy_names_every_rpc() {
        let listed = policy().methods();
        let descriptor = include_str!("../../../../proto/crm/customers/v1/customer_service.proto");
        let rpcs: Vec<String> = descriptor
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .map(str::to_string)
            .collect();
        assert!(!rpcs.is_empty());
        let mut sorted = rpcs.clone();
        sorted.sort();
        assert_eq!(listed, sorted);
    }

    #[test]
    fn auditor_reads_but_never_writes() {
        let p = policy();
        let _ = &p;
        assert!(READERS.contains(&Role::Auditor));
        assert!(!EDITORS.contains(&Role::Auditor));
        assert!(!MANAGERS.contains(&Role::Auditor));
        assert!(!CLASSIFIERS.contains(&Role::Auditor));
        assert!(!REGISTRARS.contains(&Role::Auditor));
    }
}

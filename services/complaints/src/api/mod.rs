//! gRPC handlers: decode and validate (convert), authorize (policy table and
//! the model's role rules), let the model decide, persist with the store in
//! one transaction together with the idempotency key. No SQL and no business
//! rules here.

mod compensation;
mod convert;
mod intake;
mod reads;
mod steps;

use crm_domain::WorkingCalendar;
use crm_platform::{
    Clock, Policy, ServiceContext, customers::Customers, idempotency::IdempotentCall, idempotency::Opened,
};
use crm_proto::complaints::v1::{self as pb, complaint_service_server::ComplaintService};
use prost::Message;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    error::{Error, Result},
    model::{
        Complaint, ComplaintId, State, Step,
        access::{
            ANALYSTS, APPROVERS, COMMITTERS, DESK, ESCALATORS, INTAKE, INVESTIGATORS, POLICY_ADMINS, PROPOSERS,
            READERS, RESPONDERS, RETESTERS, SIGNATORIES,
        },
        lifecycle::Event,
    },
    store,
};

pub const SERVICE_NAME: &str = "crm.complaints.v1.ComplaintService";

/// Who may call which RPC at all (CMP-3..CMP-9, see `model::access`).
pub fn policy() -> Policy {
    Policy::new(SERVICE_NAME)
        .allow("RegisterComplaint", INTAKE)
        .allow("GetComplaint", READERS)
        .allow("ListComplaints", READERS)
        .allow("AcceptComplaint", DESK)
        .allow("RejectComplaint", DESK)
        .allow("StartInvestigation", INVESTIGATORS)
        .allow("EscalateComplaint", ESCALATORS)
        .allow("RecordRetest", RETESTERS)
        .allow("ApproveAmendment", SIGNATORIES)
        .allow("ResolveComplaint", INVESTIGATORS)
        .allow("CommitAnswerTime", COMMITTERS)
        .allow("AnswerComplaint", RESPONDERS)
        .allow("RecordFeedback", RESPONDERS)
        .allow("ProposeCompensation", PROPOSERS)
        .allow("ApproveCompensation", APPROVERS)
        .allow("ListDueComplaints", READERS)
        .allow("ListDeadlinePolicies", READERS)
        .allow("SetDeadlinePolicy", POLICY_ADMINS)
        .allow("GetComplaintStats", ANALYSTS)
}

/// The gRPC service over one database pool.
#[derive(Clone)]
pub struct ComplaintsApi {
    pool: PgPool,
    calendar: WorkingCalendar,
    /// The customers service, checked at intake.
    customers: Customers,
    clock: Clock,
}

pub(crate) use crm_platform::Caller;

impl ComplaintsApi {
    pub fn new(pool: PgPool, ctx: &ServiceContext) -> Self {
        Self {
            pool,
            calendar: ctx.calendar.clone(),
            customers: Customers::new(ctx, "complaints"),
            clock: ctx.clock.clone(),
        }
    }

    pub fn into_server(self) -> pb::complaint_service_server::ComplaintServiceServer<Self> {
        pb::complaint_service_server::ComplaintServiceServer::new(self)
    }

    /// Opens the transaction of a mutating call and claims its idempotency
    /// key; a call that already ran yields its first response instead.
    async fn open<R: Message + Default>(&self, call: &IdempotentCall) -> Result<Opened<R>> {
        Ok(call.open(&self.pool).await?)
    }

    /// Claims the key, locks the complaint, checks the etag and asks the
    /// lifecycle whether `event` may happen now (a closed complaint refuses
    /// everything: CMP-9).
    async fn begin_change<R: Message + Default>(
        &self,
        call: &IdempotentCall,
        id: ComplaintId,
        etag: &str,
        event: Event,
    ) -> Result<Opened<R, Box<Fresh>>> {
        let opened = call
            .open_change(&self.pool, async |tx| {
                let c = store::load_for_change(tx, id, convert::etag(etag)).await?;
                let to = c.state.transition(event)?;
                Ok::<_, Error>((c, to))
            })
            .await?;
        Ok(opened.map(|(tx, (c, to))| Box::new(Fresh { tx, c, to })))
    }

    /// Saves the complaint (new etag), records the step, reads it back as
    /// stored, builds the response, stores it with the key and commits.
    async fn finish_change<R: Message>(
        &self,
        call: IdempotentCall,
        tx: Transaction<'static, Postgres>,
        c: &Complaint,
        step: Step,
        respond: impl FnOnce(pb::Complaint) -> R,
    ) -> Result<R> {
        call.finish(tx, async |tx| {
            store::save_complaint(tx, c, step.at).await?;
            store::record_step(tx, c.id, &step).await?;
            let saved = store::load(tx, c.id, false)
                .await?
                .ok_or_else(|| Error::Corrupt(format!("complaint {} vanished inside its transaction", c.id)))?;
            Ok(respond(convert::complaint(&saved, &self.calendar)))
        })
        .await
    }
}

/// A change to one complaint, opened under its row lock.
struct Fresh {
    tx: Transaction<'static, Postgres>,
    c: Complaint,
    /// The state the lifecycle allows after the event.
    to: State,
}

crm_platform::grpc_service! {
    impl ComplaintService for ComplaintsApi {
        register_complaint(pb::RegisterComplaintRequest) -> pb::RegisterComplaintResponse;
        get_complaint(pb::GetComplaintRequest) -> pb::GetComplaintResponse;
        list_complaints(pb::ListComplaintsRequest) -> pb::ListComplaintsResponse;
        accept_complaint(pb::AcceptComplaintRequest) -> pb::AcceptComplaintResponse;
        reject_complaint(pb::RejectComplaintRequest) -> pb::RejectComplaintResponse;
        start_investigation(pb::StartInvestigationRequest) -> pb::StartInvestigationResponse;
        escalate_complaint(pb::EscalateComplaintRequest) -> pb::EscalateComplaintResponse;
        record_retest(pb::RecordRetestRequest) -> pb::RecordRetestResponse;
        approve_amendment(pb::ApproveAmendmentRequest) -> pb::ApproveAmendmentResponse;
        resolve_complaint(pb::ResolveComplaintRequest) -> pb::ResolveComplaintResponse;
        commit_answer_time(pb::CommitAnswerTimeRequest) -> pb::CommitAnswerTimeResponse;
        answer_complaint(pb::AnswerComplaintRequest) -> pb::AnswerComplaintResponse;
        record_feedback(pb::RecordFeedbackRequest) -> pb::RecordFeedbackResponse;
        propose_compensation(pb::ProposeCompensationRequest) -> pb::ProposeCompensationResponse;
        approve_compensation(pb::ApproveCompensationRequest) -> pb::ApproveCompensationResponse;
        list_due_complaints(pb::ListDueComplaintsRequest) -> pb::ListDueComplaintsResponse;
        list_deadline_policies(pb::ListDeadlinePoliciesRequest) -> pb::ListDeadlinePoliciesResponse;
        set_deadline_policy(pb::SetDeadlinePolicyRequest) -> pb::SetDeadlinePolicyResponse;
        get_complaint_stats(pb::GetComplaintStatsRequest) -> pb::GetComplaintStatsResponse;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::Role;

    /// Every RPC of the service is in the policy table (unlisted ones are
    /// denied to everyone, which would make an RPC silently unusable).
    #[test]
    fn policy_names_every_rpc() {
        let listed = policy().methods();
        let descriptor = include_str!("../../../../proto/crm/complaints/v1/complaints.proto");
        let mut rpcs: Vec<String> = descriptor
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .map(str::to_string)
            .collect();
        assert!(!rpcs.is_empty());
        rpcs.sort();
        assert_eq!(listed, rpcs);
    }

    #[test]
    fn auditor_reads_but_never_writes() {
        for set in [INTAKE, DESK, INVESTIGATORS, ESCALATORS, RETESTERS, SIGNATORIES, COMMITTERS, RESPONDERS] {
            assert!(!set.contains(&Role::Auditor));
        }
        assert!(READERS.contains(&Role::Auditor) && ANALYSTS.contains(&Role::Auditor));
    }
}

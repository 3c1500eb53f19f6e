//! CMP-8 compensation: proposed for a justified complaint, approved by a
//! manager other than the proposer; the agreement goes to the outbox for
//! billing in the same transaction.

use crm_platform::{Violations, idempotency::IdempotentCall};
use crm_proto::complaints::v1 as pb;

use super::{Caller, ComplaintsApi, Fresh, convert, steps::step};
use crate::{
    error::Result,
    events,
    model::{Compensation, RuleViolation, access, lifecycle::Event},
    store::{self, IDEMPOTENCY_TABLE},
};

use convert::NOTE;

impl ComplaintsApi {
    pub(super) async fn propose_compensation(
        &self,
        caller: &Caller,
        req: pb::ProposeCompensationRequest,
    ) -> Result<pb::ProposeCompensationResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ProposeCompensation", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let amount = convert::money(&mut v, "amount", req.amount.as_ref());
        let reason = convert::required_text(&mut v, "reason", &req.reason, NOTE);
        let (id, amount, reason) = v.finish_with((id, amount, reason))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::ProposeCompensation).await?);
        c.check_compensable()?;
        let at = self.clock.now();
        let from = c.state;
        c.state = to;
        let m = Compensation {
            amount,
            reason,
            proposed_by: who.sub.clone(),
            proposed_at: at,
            approved_by: None,
            approved_at: None,
        };
        store::save_compensation(&mut tx, c.id, &m).await?;
        let note = format!("{} {}", amount.amount_minor(), amount.currency().code());
        let s = step("compensation proposed", from, &c, who, at, note);
        self.finish_change(call, tx, &c, s, |p| pb::ProposeCompensationResponse { complaint: Some(p) }).await
    }

    pub(super) async fn approve_compensation(
        &self,
        caller: &Caller,
        req: pb::ApproveCompensationRequest,
    ) -> Result<pb::ApproveCompensationResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ApproveCompensation", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::ApproveCompensation).await?);
        c.check_compensable()?;
        let at = self.clock.now();
        let Some(mut m) = c.compensation.clone() else {
            return Err(RuleViolation::new(
                "NO_COMPENSATION_PROPOSED",
                "no compensation was proposed for this complaint (CMP-8)",
            )
            .into());
        };
        access::may_approve_compensation(&who.sub, &m.proposed_by)?;
        m.approved_by = Some(who.sub.clone());
        m.approved_at = Some(at);
        store::save_compensation(&mut tx, c.id, &m).await?;
        // CMP-8: billing turns the agreement into a credit note.
        events::emit(&mut tx, c.id.0, at, events::compensation_agreed(&c, &m, &who.sub)).await?;
        let from = c.state;
        c.state = to;
        let s = step("compensation approved", from, &c, who, at, String::new());
        self.finish_change(call, tx, &c, s, |p| pb::ApproveCompensationResponse { complaint: Some(p) }).await
    }
}

//! RegisterComplaint (CMP-1, CMP-2): the customer is checked with the
//! customers service, then the complaint is numbered and stored in one
//! transaction.

use crm_domain::ids::CustomerId;
use crm_platform::idempotency::IdempotentCall;
use crm_proto::{
    complaints::v1 as pb,
    customers::v1::{self as cpb},
};

use super::{Caller, ComplaintsApi, Opened, convert};
use crate::{
    error::{Error, Result},
    events,
    model::{
        Complaint, CustomerTier, ServiceLevel, State, Step,
        intake::{CustomerSnapshot, numbering_year},
    },
    store::{self, IDEMPOTENCY_TABLE},
};

impl ComplaintsApi {
    /// The customer as the customers service knows it now, read with a
    /// `system` token: unknown is NOT_FOUND, terminated is refused.
    async fn customer(&self, id: CustomerId, request_id: Option<&str>) -> Result<CustomerSnapshot> {
        let c = self.customers.current(id, request_id).await?;
        if c.terminated {
            return Err(crate::model::intake::customer_terminated().into());
        }
        // A customer not yet classified is served at the general level.
        let service_level = match c.service_level {
            cpb::ServiceLevel::Key => ServiceLevel::Key,
            cpb::ServiceLevel::Special => ServiceLevel::Special,
            _ => ServiceLevel::General,
        };
        let tier = match c.value_tier {
            cpb::ValueTier::Potential => CustomerTier::Potential,
            cpb::ValueTier::Key => CustomerTier::Key,
            cpb::ValueTier::Vip => CustomerTier::Vip,
            _ => CustomerTier::General,
        };
        // A merged id answers with its survivor (CUS-2): the complaint is the survivor's.
        Ok(CustomerSnapshot { id: c.id, name: c.display_name, service_level, tier })
    }

    pub(super) async fn register_complaint(
        &self,
        caller: &Caller,
        req: pb::RegisterComplaintRequest,
    ) -> Result<pb::RegisterComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RegisterComplaint", who, &req.request_id, &req)?;
        let at = self.clock.now();
        let new = convert::new_complaint(&req, self.calendar.local_date(at))?;
        // A retry of a registration that went through is answered from the
        // key, without asking the customers service again.
        match self.open::<pb::RegisterComplaintResponse>(&call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx.rollback().await?,
        }
        // Asked outside the transaction: no locks are held across the call.
        let customer = self.customer(new.customer_id, caller.request_id.as_deref()).await?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        // The survivor, also when the merge was applied after the lookup.
        let mut new = new;
        new.customer_id = CustomerId(crm_events::aliases::resolve(&mut tx, "complaints", customer.id.0).await?);
        let year = numbering_year(&self.calendar, at);
        let seq = store::next_number(&mut tx, year).await?;
        let c = Complaint::register(new, customer, year, seq, &who.sub, at, &self.calendar);
        store::insert_complaint(&mut tx, &c).await?;
        let step = Step {
            action: if c.state == State::Rejected { "rejected".into() } else { "registered".into() },
            from_state: None,
            to_state: c.state,
            actor: who.sub.clone(),
            at,
            note: c.rejection_note.clone(),
        };
        store::record_step(&mut tx, c.id, &step).await?;
        events::emit(&mut tx, c.id.0, at, events::filed(&c)).await?;
        // CMP-2: a late appeal is rejected at intake — final at once.
        if !c.state.is_open() {
            events::emit(&mut tx, c.id.0, at, events::closed(&c, &who.sub)).await?;
        } else {
            // CUS-11: a complaint filed while the customer's termination is
            // clearing takes back a "none open" answer; the re-check reports
            // HELD, and DONE again once it is closed.
            store::reopen_terminations(&mut tx, c.customer_id).await?;
        }
        let saved = store::load(&mut tx, c.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("complaint {} vanished inside its transaction", c.id)))?;
        let response = pb::RegisterComplaintResponse { complaint: Some(convert::complaint(&saved, &self.calendar)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }
}

//! RegisterComplaint (CMP-1, CMP-2): the customer is checked with the
//! customers service, then the complaint is numbered and stored in one
//! transaction.

use std::time::Duration;

use crm_domain::ids::CustomerId;
use crm_platform::{client, idempotency::IdempotentCall};
use crm_proto::{
    complaints::v1 as pb,
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
};
use tonic::Code;

use super::{Caller, ComplaintsApi, Opened, convert, now};
use crate::{
    error::{Error, Result},
    events,
    model::{
        Complaint, CustomerTier, ServiceLevel, State, Step,
        intake::{CustomerSnapshot, numbering_year},
    },
    store::{self, IDEMPOTENCY_TABLE},
};

/// How long intake waits for the customers service.
const CUSTOMER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

impl ComplaintsApi {
    /// The customer as the customers service knows it now, read with a
    /// `system` token: unknown is NOT_FOUND, terminated is refused.
    async fn customer(&self, id: CustomerId, request_id: Option<&str>) -> Result<CustomerSnapshot> {
        let peer = self.customers.as_ref().map_err(|e| Error::CustomersUnavailable(e.clone()))?;
        let mut customers = CustomerServiceClient::with_interceptor(peer.channel.clone(), peer.auth.clone());
        let req = client::request(cpb::GetCustomerRequest { id: id.to_string() }, request_id, CUSTOMER_LOOKUP_TIMEOUT);
        let c = match customers.get_customer(req).await {
            Ok(r) => {
                r.into_inner().customer.ok_or_else(|| Error::Corrupt("GetCustomer returned no customer".into()))?
            }
            Err(s) if s.code() == Code::NotFound => {
                return Err(Error::NotFound { resource: "customer", id: id.to_string() });
            }
            Err(s) => return Err(Error::CustomersUnavailable(format!("{:?}: {}", s.code(), s.message()))),
        };
        if c.stage == cpb::LifecycleStage::Terminated as i32 {
            return Err(Error::CustomerTerminated);
        }
        // A customer not yet classified is served at the general level.
        let service_level = match cpb::ServiceLevel::try_from(c.service_level) {
            Ok(cpb::ServiceLevel::Key) => ServiceLevel::Key,
            Ok(cpb::ServiceLevel::Special) => ServiceLevel::Special,
            _ => ServiceLevel::General,
        };
        let tier = match cpb::ValueTier::try_from(c.value_tier) {
            Ok(cpb::ValueTier::Potential) => CustomerTier::Potential,
            Ok(cpb::ValueTier::Key) => CustomerTier::Key,
            Ok(cpb::ValueTier::Vip) => CustomerTier::Vip,
            _ => CustomerTier::General,
        };
        // A merged id answers with its survivor (CUS-2): the complaint is the survivor's.
        let id = CustomerId::parse(&c.id).map_err(|e| Error::Corrupt(format!("GetCustomer id: {}", e.reason)))?;
        Ok(CustomerSnapshot { id, name: c.display_name, service_level, tier })
    }

    pub(super) async fn register_complaint(
        &self,
        caller: &Caller,
        req: pb::RegisterComplaintRequest,
    ) -> Result<pb::RegisterComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RegisterComplaint", who, &req.request_id, &req)?;
        let at = now();
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

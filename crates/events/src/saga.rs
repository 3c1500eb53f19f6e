//! The CUS-11 termination saga as its participants see it: reading the
//! customers service's customer.termination_started, and writing the
//! termination.step_reported each participant answers with. One shape for
//! complaints, dispatch and billing.

use crm_domain::ids::CustomerId;
use uuid::Uuid;

use crate::{ApplyError, Payload, consumer::read, pb};

/// customer.termination_started, read: which saga asks about which customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub saga: Uuid,
    pub customer: CustomerId,
}

/// Reads customer.termination_started; anything else, or a malformed id, is
/// poison.
pub fn started(event: &pb::Event) -> Result<Started, ApplyError> {
    let Some(Payload::TerminationStarted(t)) = &event.payload else { return Err(read::wrong(event)) };
    Ok(Started {
        saga: read::id("saga_id", &t.saga_id)?,
        customer: CustomerId(read::id("customer_id", &t.customer_id)?),
    })
}

/// A participant's answer for its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The step is done; `billable_work_orders` are completed orders billing
    /// must still invoice (dispatch's report only).
    Done { billable_work_orders: Vec<String> },
    /// The step cannot finish yet: a stable `code` and a sentence for people.
    Held { code: String, reason: String },
}

impl Step {
    /// Done, with nothing left to bill.
    pub fn done() -> Self {
        Self::Done { billable_work_orders: Vec::new() }
    }
}

/// termination.step_reported of `participant` for `saga` about `customer`.
pub fn step_reported(participant: &str, saga: Uuid, customer: CustomerId, step: Step) -> Payload {
    let (outcome, code, reason, billable_work_order_ids) = match step {
        Step::Done { billable_work_orders } => {
            (pb::TerminationStepOutcome::Done, String::new(), String::new(), billable_work_orders)
        }
        Step::Held { code, reason } => (pb::TerminationStepOutcome::Held, code, reason, Vec::new()),
    };
    Payload::TerminationStepReported(pb::TerminationStepReported {
        saga_id: saga.to_string(),
        customer_id: customer.to_string(),
        participant: participant.to_string(),
        outcome: outcome as i32,
        reason,
        code,
        billable_work_order_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: Payload) -> pb::Event {
        pb::Event { r#type: crate::type_of(&payload).into(), payload: Some(payload), ..Default::default() }
    }

    #[test]
    fn a_started_saga_is_read_and_a_bad_one_is_poison() {
        let saga = Uuid::now_v7();
        let customer = Uuid::now_v7();
        let ok = event(Payload::TerminationStarted(pb::TerminationStarted {
            saga_id: saga.to_string(),
            customer_id: customer.to_string(),
            ..Default::default()
        }));
        assert_eq!(started(&ok).unwrap(), Started { saga, customer: CustomerId(customer) });
        let bad = event(Payload::TerminationStarted(pb::TerminationStarted {
            saga_id: "nope".into(),
            customer_id: customer.to_string(),
            ..Default::default()
        }));
        assert!(matches!(started(&bad), Err(ApplyError::Poison(m)) if m.contains("saga_id")));
        let other = event(Payload::TerminationStepReported(Default::default()));
        assert!(matches!(started(&other), Err(ApplyError::Poison(_))));
    }

    #[test]
    fn a_held_step_carries_its_code_and_a_done_one_its_billable_orders() {
        let (saga, customer) = (Uuid::now_v7(), CustomerId(Uuid::now_v7()));
        let Payload::TerminationStepReported(held) = step_reported(
            "complaints",
            saga,
            customer,
            Step::Held { code: "OPEN_COMPLAINTS".into(), reason: "C-1 open".into() },
        ) else {
            panic!("not a step report")
        };
        assert_eq!(held.outcome, pb::TerminationStepOutcome::Held as i32);
        assert_eq!(
            (held.code.as_str(), held.reason.as_str(), held.participant.as_str()),
            ("OPEN_COMPLAINTS", "C-1 open", "complaints")
        );
        assert_eq!(held.saga_id, saga.to_string());
        let Payload::TerminationStepReported(done) =
            step_reported("dispatch", saga, customer, Step::Done { billable_work_orders: vec!["w1".into()] })
        else {
            panic!("not a step report")
        };
        assert_eq!(done.outcome, pb::TerminationStepOutcome::Done as i32);
        assert!(done.code.is_empty() && done.reason.is_empty());
        assert_eq!(done.billable_work_order_ids, vec!["w1".to_string()]);
    }
}

//! CUS-7 visits: planned (the visit form) → approved by a branch manager →
//! done → minutes submitted (due within 2 working days of the visit; later
//! ones are flagged) → reviewed by the department manager → sent to the
//! customer → receipt confirmed. Each step is its own RPC.

use super::RuleViolation;

super::vocabulary!(VisitState {
    Planned = "planned",
    Approved = "approved",
    Done = "done",
    MinutesSubmitted = "minutes_submitted",
    MinutesReviewed = "minutes_reviewed",
    MinutesSent = "minutes_sent",
    ReceiptConfirmed = "receipt_confirmed",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitStep {
    Approve,
    RecordDone,
    SubmitMinutes,
    ReviewMinutes,
    SendMinutes,
    ConfirmReceipt,
}

impl VisitStep {
    pub const ALL: [VisitStep; 6] = [
        VisitStep::Approve,
        VisitStep::RecordDone,
        VisitStep::SubmitMinutes,
        VisitStep::ReviewMinutes,
        VisitStep::SendMinutes,
        VisitStep::ConfirmReceipt,
    ];

    /// The only state the step may start from, and where it leads.
    fn edge(self) -> (VisitState, VisitState) {
        use VisitState::*;
        match self {
            VisitStep::Approve => (Planned, Approved),
            VisitStep::RecordDone => (Approved, Done),
            VisitStep::SubmitMinutes => (Done, MinutesSubmitted),
            VisitStep::ReviewMinutes => (MinutesSubmitted, MinutesReviewed),
            VisitStep::SendMinutes => (MinutesReviewed, MinutesSent),
            VisitStep::ConfirmReceipt => (MinutesSent, ReceiptConfirmed),
        }
    }
}

impl VisitState {
    pub fn transition(self, step: VisitStep) -> Result<VisitState, RuleViolation> {
        let (from, to) = step.edge();
        if self == from {
            Ok(to)
        } else {
            Err(RuleViolation::new(
                "ILLEGAL_VISIT_STEP",
                format!(
                    "a visit that is {} cannot take the step {step:?}; it must be {} (CUS-7)",
                    self.as_str(),
                    from.as_str()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_step_is_decided() {
        let mut allowed = 0;
        for &state in VisitState::ALL {
            for step in VisitStep::ALL {
                match state.transition(step) {
                    Ok(next) => {
                        allowed += 1;
                        assert_eq!(step.edge(), (state, next));
                    }
                    Err(e) => assert_eq!(e.reason, "ILLEGAL_VISIT_STEP"),
                }
            }
        }
        assert_eq!(allowed, VisitStep::ALL.len(), "exactly one state admits each step");
    }

    #[test]
    fn the_happy_path_walks_every_state_in_order() {
        let mut s = VisitState::Planned;
        for step in VisitStep::ALL {
            s = s.transition(step).unwrap_or(s);
        }
        assert_eq!(s, VisitState::ReceiptConfirmed);
        // No step skips ahead: minutes cannot be submitted before the visit is done.
        assert!(VisitState::Approved.transition(VisitStep::SubmitMinutes).is_err());
        assert!(VisitState::Planned.transition(VisitStep::RecordDone).is_err());
    }
}

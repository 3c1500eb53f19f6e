//! CUS-7 visits: planned (the visit form) → approved by a branch manager →
//! done → minutes submitted (due within 2 working days of the visit; later
//! ones are flagged) → reviewed by the department manager → sent to the
//! customer → receipt confirmed. Each step is its own RPC.

use chrono::{DateTime, Utc};

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

/// CUS-7: a visit is approved before it happens. An approval given after
/// the planned time comes too late (the visit may already have happened
/// without one): the salesperson plans it again with its new time.
pub fn approval_in_time(planned_for: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), RuleViolation> {
    if now > planned_for {
        return Err(RuleViolation::new(
            "VISIT_APPROVAL_LATE",
            format!(
                "the visit was planned for {}, which has passed: a visit is approved before it happens (CUS-7); \
                 plan it again with its new time",
                planned_for.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

/// CUS-7: the visit recorded as done happened after its approval.
pub fn done_after_approval(approved_at: Option<DateTime<Utc>>, visited_at: DateTime<Utc>) -> Result<(), RuleViolation> {
    match approved_at {
        Some(approved) if visited_at < approved => Err(RuleViolation::new(
            "VISIT_BEFORE_APPROVAL",
            format!(
                "the visit time {} is before the visit was approved at {}: a visit must be approved before it \
                 happens (CUS-7)",
                visited_at.to_rfc3339(),
                approved.to_rfc3339()
            ),
        )),
        _ => Ok(()),
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

    #[test]
    fn a_visit_is_approved_before_it_happens() {
        let t = |h: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(h);
        assert_eq!(approval_in_time(t(10), t(9)), Ok(()));
        assert_eq!(approval_in_time(t(10), t(10)), Ok(()));
        assert_eq!(approval_in_time(t(10), t(11)).map_err(|v| v.reason), Err("VISIT_APPROVAL_LATE"));
        assert_eq!(done_after_approval(Some(t(10)), t(10)), Ok(()));
        assert_eq!(done_after_approval(Some(t(10)), t(12)), Ok(()));
        assert_eq!(done_after_approval(Some(t(10)), t(9)).map_err(|v| v.reason), Err("VISIT_BEFORE_APPROVAL"));
    }
}

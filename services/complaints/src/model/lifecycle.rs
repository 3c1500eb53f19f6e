//! CMP-3..CMP-7 lifecycle: registered → accepted (or rejected) →
//! investigating → resolved → answered → closed, and back from answered to
//! investigating when the customer is not satisfied. Events that do not move
//! the state (escalation, re-test, commitments, compensation) are decided
//! here too, so every change asks one place whether it is allowed now.

use super::{RuleViolation, State};

/// Something that happens to a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Accept,
    Reject,
    StartInvestigation,
    Escalate,
    /// CMP-6: the answer is overdue; the job escalates, once per round.
    EscalateOverdue,
    RecordRetest,
    ApproveAmendment,
    Resolve,
    CommitAnswerTime,
    Answer,
    FeedbackSatisfied,
    FeedbackUnsatisfied,
    ProposeCompensation,
    ApproveCompensation,
}

impl Event {
    pub const ALL: &'static [Event] = &[
        Event::Accept,
        Event::Reject,
        Event::StartInvestigation,
        Event::Escalate,
        Event::EscalateOverdue,
        Event::RecordRetest,
        Event::ApproveAmendment,
        Event::Resolve,
        Event::CommitAnswerTime,
        Event::Answer,
        Event::FeedbackSatisfied,
        Event::FeedbackUnsatisfied,
        Event::ProposeCompensation,
        Event::ApproveCompensation,
    ];

    /// The step's name in the history and in messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Event::Accept => "accept",
            Event::Reject => "reject",
            Event::StartInvestigation => "start investigation",
            Event::Escalate => "escalate",
            Event::EscalateOverdue => "escalate an overdue answer",
            Event::RecordRetest => "record a re-test",
            Event::ApproveAmendment => "approve an amendment",
            Event::Resolve => "resolve",
            Event::CommitAnswerTime => "commit an answer time",
            Event::Answer => "answer",
            Event::FeedbackSatisfied => "record satisfied feedback",
            Event::FeedbackUnsatisfied => "record unsatisfied feedback",
            Event::ProposeCompensation => "propose compensation",
            Event::ApproveCompensation => "approve compensation",
        }
    }
}

impl State {
    /// The state after `event`, or the rule that forbids it now.
    pub fn transition(self, event: Event) -> Result<State, RuleViolation> {
        use Event as E;
        use State::*;
        match (self, event) {
            (Closed, _) => Err(RuleViolation::new(
                "COMPLAINT_CLOSED",
                "the complaint is closed; its record is archived read-only (CMP-9)",
            )),
            (Rejected, _) => {
                Err(RuleViolation::new("COMPLAINT_REJECTED", "the complaint was rejected; nothing follows (CMP-3)"))
            }
            (Registered, E::Accept) => Ok(Accepted),
            (Registered, E::Reject) => Ok(Rejected),
            (Registered, _) => Err(RuleViolation::new(
                "COMPLAINT_NOT_ACCEPTED",
                format!("cannot {} before the service desk accepts the complaint (CMP-3)", event.as_str()),
            )),
            (Accepted, E::StartInvestigation) => Ok(Investigating),
            // CMP-4: escalated by hand while it is being handled.
            (Accepted | Investigating, E::Escalate) => Ok(self),
            // CMP-6: an answer that is overdue escalates while it is still
            // owed, also once the complaint is resolved and the answer not
            // yet sent.
            (Accepted | Investigating | Resolved, E::EscalateOverdue) => Ok(self),
            (Accepted | Investigating | Resolved, E::CommitAnswerTime) => Ok(self),
            (Investigating, E::RecordRetest | E::ApproveAmendment) => Ok(Investigating),
            (Investigating, E::Resolve) => Ok(Resolved),
            (Resolved, E::Answer) => Ok(Answered),
            (Resolved | Answered, E::ProposeCompensation | E::ApproveCompensation) => Ok(self),
            (Answered, E::FeedbackSatisfied) => Ok(Closed),
            // CMP-7: not satisfied → investigated again, in a new round.
            (Answered, E::FeedbackUnsatisfied) => Ok(Investigating),
            (from, event) => Err(RuleViolation::new(
                "ILLEGAL_TRANSITION",
                format!("cannot {} a complaint that is {}", event.as_str(), from.as_str()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event as E;
    use State::*;

    /// The whole table: everything not listed here must be refused.
    const ALLOWED: &[(State, Event, State)] = &[
        (Registered, E::Accept, Accepted),
        (Registered, E::Reject, Rejected),
        (Accepted, E::StartInvestigation, Investigating),
        (Accepted, E::Escalate, Accepted),
        (Accepted, E::EscalateOverdue, Accepted),
        (Investigating, E::EscalateOverdue, Investigating),
        (Resolved, E::EscalateOverdue, Resolved),
        (Accepted, E::CommitAnswerTime, Accepted),
        (Investigating, E::Escalate, Investigating),
        (Investigating, E::CommitAnswerTime, Investigating),
        (Investigating, E::RecordRetest, Investigating),
        (Investigating, E::ApproveAmendment, Investigating),
        (Investigating, E::Resolve, Resolved),
        (Resolved, E::CommitAnswerTime, Resolved),
        (Resolved, E::Answer, Answered),
        (Resolved, E::ProposeCompensation, Resolved),
        (Resolved, E::ApproveCompensation, Resolved),
        (Answered, E::ProposeCompensation, Answered),
        (Answered, E::ApproveCompensation, Answered),
        (Answered, E::FeedbackSatisfied, Closed),
        (Answered, E::FeedbackUnsatisfied, Investigating),
    ];

    #[test]
    fn every_state_and_event_is_decided_as_the_table_says() {
        crm_domain::check::lifecycle_is_the_table(State::ALL, Event::ALL, ALLOWED, State::transition);
    }

    #[test]
    fn refusals_name_the_rule() {
        for &event in Event::ALL {
            assert_eq!(Closed.transition(event).map_err(|e| e.reason), Err("COMPLAINT_CLOSED"));
            assert_eq!(Rejected.transition(event).map_err(|e| e.reason), Err("COMPLAINT_REJECTED"));
        }
        assert_eq!(Registered.transition(E::Resolve).map_err(|e| e.reason), Err("COMPLAINT_NOT_ACCEPTED"));
        assert_eq!(Accepted.transition(E::Answer).map_err(|e| e.reason), Err("ILLEGAL_TRANSITION"));
        assert_eq!(Resolved.transition(E::Escalate).map_err(|e| e.reason), Err("ILLEGAL_TRANSITION"));
    }

    #[test]
    fn every_state_but_closed_and_rejected_has_a_way_forward() {
        for &s in State::ALL {
            let moves = Event::ALL.iter().filter(|e| s.transition(**e).is_ok_and(|to| to != s)).count();
            assert_eq!(moves == 0, matches!(s, Closed | Rejected), "{s:?}");
        }
    }

    proptest::proptest! {
        /// Any sequence of events, applied where allowed, only visits states
        /// reachable by the table and never leaves closed or rejected.
        #[test]
        fn random_walks_respect_terminal_states(steps in proptest::collection::vec(0usize..13, 0..60)) {
            let mut s = Registered;
            for i in steps {
                let e = Event::ALL[i];
                match s.transition(e) {
                    Ok(next) => {
                        proptest::prop_assert!(!matches!(s, Closed | Rejected));
                        s = next;
                    }
                    Err(_) => proptest::prop_assert!(!ALLOWED.iter().any(|(f, ev, _)| *f == s && *ev == e)),
                }
            }
        }
    }
}

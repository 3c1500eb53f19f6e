//! CUS-11 termination as a saga: its states, who may move it, and when it is
//! finished. The steps are reported by dispatch (open work orders
//! cancelled), complaints (none open) and billing (account cleared and
//! closed) through their event feeds; the customer is terminated only when
//! all three are done.

use chrono::{DateTime, Duration, Utc};
use crm_domain::RuleViolation;

use super::vocabulary;

vocabulary!(
    /// Why a relationship ends (CUS-11).
    TerminationReason {
        StoppedBuying = "stopped_buying",
        RulesOrEthics = "rules_or_ethics",
        OfferNoLongerFits = "offer_no_longer_fits",
        RelationshipBroken = "relationship_broken",
        MarketExit = "market_exit",
    }
);
vocabulary!(
    /// requested → notice (approved) → clearing (notice over) → terminated;
    /// requested → rejected.
    TerminationState {
        Requested = "requested",
        Notice = "notice",
        Clearing = "clearing",
        Terminated = "terminated",
        Rejected = "rejected",
    }
);
vocabulary!(StepOutcome { Pending = "pending", Done = "done", Held = "held" });

/// The services that each clear their part once the notice has ended.
pub const PARTICIPANTS: [&str; 3] = ["dispatch", "complaints", "billing"];

/// The longest notice period a termination can give.
pub const MAX_NOTICE_DAYS: i32 = 365;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub participant: String,
    pub outcome: StepOutcome,
    pub code: String,
    pub reason: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Termination {
    pub id: uuid::Uuid,
    pub customer_id: crm_domain::ids::CustomerId,
    pub reason: TerminationReason,
    pub note: String,
    pub notice_days: i32,
    pub state: TerminationState,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub notice_ends_at: Option<DateTime<Utc>>,
    pub clearing_started_at: Option<DateTime<Utc>>,
    pub terminated_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub steps: Vec<Step>,
}

impl Termination {
    /// A new request, waiting for a senior manager.
    pub fn request(
        customer_id: crm_domain::ids::CustomerId,
        reason: TerminationReason,
        note: String,
        notice_days: i32,
        by: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Termination {
            id: uuid::Uuid::now_v7(),
            customer_id,
            reason,
            note,
            notice_days,
            state: TerminationState::Requested,
            requested_by: by.to_string(),
            requested_at: at,
            decided_by: None,
            decided_at: None,
            rejection_reason: None,
            notice_ends_at: None,
            clearing_started_at: None,
            terminated_at: None,
            version: 1,
            steps: vec![],
        }
    }

    pub fn etag(&self) -> String {
        super::etag(self.version)
    }

    /// A senior manager approves: the notice starts now. The requester may
    /// not approve their own request (four eyes).
    pub fn approve(&mut self, by: &str, at: DateTime<Utc>) -> Result<(), RuleViolation> {
        self.expect(TerminationState::Requested, "approved")?;
        if by == self.requested_by {
            return Err(RuleViolation::new(
                "SELF_APPROVAL",
                "a termination is approved by a senior manager other than the one who requested it",
            ));
        }
        self.state = TerminationState::Notice;
        self.decided_by = Some(by.to_string());
        self.decided_at = Some(at);
        self.notice_ends_at = Some(at + Duration::days(i64::from(self.notice_days)));
        Ok(())
    }

    pub fn reject(&mut self, by: &str, reason: &str, at: DateTime<Utc>) -> Result<(), RuleViolation> {
        self.expect(TerminationState::Requested, "rejected")?;
        self.state = TerminationState::Rejected;
        self.decided_by = Some(by.to_string());
        self.decided_at = Some(at);
        self.rejection_reason = Some(reason.to_string());
        Ok(())
    }

    /// The notice has run out: the participants start clearing.
    pub fn start_clearing(&mut self, at: DateTime<Utc>) -> Result<(), RuleViolation> {
        self.expect(TerminationState::Notice, "cleared")?;
        if self.notice_ends_at.is_some_and(|end| end > at) {
            return Err(RuleViolation::new("NOTICE_RUNNING", "the notice period has not ended"));
        }
        self.state = TerminationState::Clearing;
        self.clearing_started_at = Some(at);
        Ok(())
    }

    /// Records a participant's report; a report for a saga that is not
    /// clearing (a late duplicate) changes nothing.
    pub fn report(&mut self, step: Step) -> bool {
        if self.state != TerminationState::Clearing || !PARTICIPANTS.contains(&step.participant.as_str()) {
            return false;
        }
        match self.steps.iter_mut().find(|s| s.participant == step.participant) {
            Some(s) if *s == step => false,
            Some(s) => {
                *s = step;
                true
            }
            None => {
                self.steps.push(step);
                true
            }
        }
    }

    /// Every participant reports its part done.
    pub fn all_done(&self) -> bool {
        PARTICIPANTS.iter().all(|p| self.steps.iter().any(|s| s.participant == *p && s.outcome == StepOutcome::Done))
    }

    /// Clearing is over: the customer is terminated.
    pub fn finish(&mut self, at: DateTime<Utc>) -> Result<(), RuleViolation> {
        self.expect(TerminationState::Clearing, "finished")?;
        if !self.all_done() {
            return Err(RuleViolation::new("STEPS_OPEN", "not every participant has cleared its part"));
        }
        self.state = TerminationState::Terminated;
        self.terminated_at = Some(at);
        Ok(())
    }

    /// Why the saga is not moving: every held step's reason, or nothing.
    pub fn held_reason(&self) -> String {
        self.steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Held)
            .map(|s| format!("{}: {}", s.participant, s.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn expect(&self, want: TerminationState, verb: &str) -> Result<(), RuleViolation> {
        if self.state == want {
            Ok(())
        } else {
            Err(RuleViolation::new(
                "TERMINATION_STATE",
                format!("a termination that is {} cannot be {verb}", self.state.as_str()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::ids::CustomerId;

    fn requested(at: DateTime<Utc>) -> Termination {
        let customer = CustomerId(uuid::Uuid::now_v7());
        Termination::request(customer, TerminationReason::StoppedBuying, "no orders for two years".into(), 30, "m1", at)
    }

    fn step(p: &str, outcome: StepOutcome, reason: &str, at: DateTime<Utc>) -> Step {
        Step { participant: p.into(), outcome, code: String::new(), reason: reason.into(), updated_at: at }
    }

    #[test]
    fn the_saga_runs_request_approval_notice_clearing_terminated() {
        let t0 = Utc::now();
        let mut t = requested(t0);
        assert_eq!(t.approve("m1", t0).map_err(|e| e.reason), Err("SELF_APPROVAL"));
        t.approve("sm1", t0).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(t.notice_ends_at, Some(t0 + Duration::days(30)));
        assert_eq!(t.start_clearing(t0 + Duration::days(29)).map_err(|e| e.reason), Err("NOTICE_RUNNING"));
        t.start_clearing(t0 + Duration::days(30)).unwrap_or_else(|e| panic!("{e:?}"));
        let at = t0 + Duration::days(30);
        assert!(t.report(step("dispatch", StepOutcome::Done, "", at)));
        assert!(t.report(step("billing", StepOutcome::Held, "120.00 CNY is owed", at)));
        assert!(t.report(step("complaints", StepOutcome::Done, "", at)));
        assert_eq!(t.held_reason(), "billing: 120.00 CNY is owed");
        assert_eq!(t.finish(at).map_err(|e| e.reason), Err("STEPS_OPEN"));
        assert!(t.report(step("billing", StepOutcome::Done, "", at)));
        assert!(!t.report(step("billing", StepOutcome::Done, "", at)), "the same report again changes nothing");
        assert!(t.all_done());
        t.finish(at).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(t.state, TerminationState::Terminated);
        assert!(!t.report(step("billing", StepOutcome::Held, "late", at)), "reports after the end are ignored");
    }

    #[test]
    fn every_state_refuses_what_it_cannot_do() {
        let t0 = Utc::now();
        for state in TerminationState::ALL {
            let mut t = requested(t0);
            t.state = *state;
            assert_eq!(t.clone().approve("sm1", t0).is_ok(), *state == TerminationState::Requested);
            assert_eq!(t.clone().reject("sm1", "no", t0).is_ok(), *state == TerminationState::Requested);
            assert_eq!(t.clone().start_clearing(t0).is_ok(), *state == TerminationState::Notice);
            assert!(t.clone().finish(t0).is_err(), "nothing is done yet in {state:?}");
            assert_eq!(t.report(step("dispatch", StepOutcome::Done, "", t0)), *state == TerminationState::Clearing);
        }
    }

    #[test]
    fn unknown_participants_are_ignored() {
        let t0 = Utc::now();
        let mut t = requested(t0);
        t.state = TerminationState::Clearing;
        assert!(!t.report(step("sales", StepOutcome::Done, "", t0)));
        assert!(t.steps.is_empty());
    }
}

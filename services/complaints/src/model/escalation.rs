//! CMP-4 and CMP-6 escalation: department → office → senior management, only
//! upwards; by hand (to a chosen level, with a reason and perhaps a team) or
//! because the answer is overdue (one level up, once per round). One
//! function decides both; the lifecycle says in which states each may
//! happen (`Event::Escalate`, `Event::EscalateOverdue`).

use chrono::{DateTime, Utc};

use super::{Complaint, Escalation, EscalationLevel, RuleViolation, State, Step, lifecycle::Event};

/// Why a complaint is escalated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// CMP-4: someone escalates it to `to`.
    ByHand { to: EscalationLevel, reason: String, team: Vec<String> },
    /// CMP-6: its answer is overdue.
    AnswerOverdue,
}

impl Cause {
    fn event(&self) -> Event {
        match self {
            Cause::ByHand { .. } => Event::Escalate,
            Cause::AnswerOverdue => Event::EscalateOverdue,
        }
    }
}

/// What an escalation changed: the escalation record (none when an overdue
/// answer is already at senior management: recorded in the history only)
/// and the step for the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalated {
    pub record: Option<Escalation>,
    pub step: Step,
}

/// The states an overdue answer escalates in (what the job looks for).
pub fn overdue_states() -> Vec<State> {
    State::ALL.iter().copied().filter(|s| s.transition(Event::EscalateOverdue).is_ok()).collect()
}

/// Escalates `c` for `cause` by `actor` at `at`, or says why not.
pub fn escalate(c: &mut Complaint, cause: Cause, actor: &str, at: DateTime<Utc>) -> Result<Escalated, RuleViolation> {
    let from_state = c.state;
    c.state = c.state.transition(cause.event())?;
    let from = c.escalation_level;
    let (to, reason, team_members) = match cause {
        Cause::ByHand { to, reason, team } => (Some(from.raise(to)?), reason, team),
        // Nobody above senior management: the overdue answer is recorded
        // and stays on the due list.
        Cause::AnswerOverdue => (from.next(), "answer overdue (CMP-6)".to_string(), vec![]),
    };
    let note = match to {
        Some(to) => format!("{} → {}: {reason}", from.as_str(), to.as_str()),
        None => format!("{reason}: already at {}", from.as_str()),
    };
    let record = to.map(|to_level| {
        c.escalation_level = to_level;
        Escalation {
            round: c.round,
            from_level: from,
            to_level,
            reason,
            team_members,
            escalated_by: actor.to_string(),
            escalated_at: at,
        }
    });
    let step = Step {
        action: "escalated".into(),
        from_state: Some(from_state),
        to_state: c.state,
        actor: actor.to_string(),
        at,
        note,
    };
    Ok(Escalated { record, step })
}

impl EscalationLevel {
    fn rank(self) -> u8 {
        match self {
            EscalationLevel::Department => 0,
            EscalationLevel::Office => 1,
            EscalationLevel::SeniorManagement => 2,
        }
    }

    /// The level after escalating to `to`, or the rule that forbids it.
    pub fn raise(self, to: EscalationLevel) -> Result<EscalationLevel, RuleViolation> {
        if to.rank() > self.rank() {
            Ok(to)
        } else {
            Err(RuleViolation::new(
                "ESCALATION_NOT_UPWARD",
                format!("the complaint is already handled by {}; escalation only goes up (CMP-4)", self.as_str()),
            ))
        }
    }

    /// The next level up, for the overdue escalation; none above senior
    /// management.
    pub fn next(self) -> Option<EscalationLevel> {
        match self {
            EscalationLevel::Department => Some(EscalationLevel::Office),
            EscalationLevel::Office => Some(EscalationLevel::SeniorManagement),
            EscalationLevel::SeniorManagement => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EscalationLevel::*;
    use chrono::{Duration, TimeZone};
    use crm_domain::{WorkingCalendar, ids::CustomerId};

    use crate::model::{
        Category, Channel, CustomerTier, References, Round, ServiceLevel, Urgency,
        intake::{CustomerSnapshot, NewComplaint},
    };

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).single().unwrap_or_default()
    }

    fn complaint(state: State, level: EscalationLevel) -> Complaint {
        let new = NewComplaint {
            customer_id: CustomerId::new(),
            channel: Channel::Email,
            category: Category::ServiceQuality,
            department: "lab".into(),
            urgency: Urgency::Normal,
            description: "x".into(),
            references: References::default(),
            report_received_on: None,
        };
        let snap = CustomerSnapshot {
            id: CustomerId::new(),
            name: "c".into(),
            service_level: ServiceLevel::General,
            tier: CustomerTier::Key,
        };
        let mut c = Complaint::register(new, snap, 2026, 1, "desk", at(), &WorkingCalendar::default());
        c.round = 1;
        c.rounds.push(Round::open(1, at(), at() + Duration::days(15)));
        c.state = state;
        c.escalation_level = level;
        c
    }

    fn by_hand(to: EscalationLevel) -> Cause {
        Cause::ByHand { to, reason: "部门无法处理".into(), team: vec!["王工".into()] }
    }

    /// Issue 18: one function for both causes; the lifecycle decides where
    /// each may happen, so the job no longer escalates what a person may not
    /// and the difference (a resolved complaint whose answer is late) is
    /// explicit.
    #[test]
    fn by_hand_and_overdue_escalate_through_one_rule() {
        let mut c = complaint(State::Investigating, Department);
        let e = escalate(&mut c, by_hand(Office), "head", at()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.escalation_level, Office);
        let record = e.record.unwrap_or_else(|| panic!("recorded"));
        assert_eq!((record.from_level, record.to_level, record.team_members.len()), (Department, Office, 1));
        assert_eq!((e.step.action.as_str(), e.step.to_state), ("escalated", State::Investigating));

        let mut resolved = complaint(State::Resolved, Office);
        let refused = escalate(&mut resolved, by_hand(SeniorManagement), "head", at());
        assert_eq!(refused.map_err(|e| e.reason), Err("ILLEGAL_TRANSITION"));
        assert_eq!(resolved.escalation_level, Office, "nothing changed");
        let e = escalate(&mut resolved, Cause::AnswerOverdue, "system", at()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resolved.escalation_level, SeniorManagement);
        assert_eq!(e.record.map(|r| r.reason), Some("answer overdue (CMP-6)".to_string()));

        let mut top = complaint(State::Accepted, SeniorManagement);
        let e = escalate(&mut top, Cause::AnswerOverdue, "system", at()).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(e.record.is_none(), "nobody above senior management");
        assert!(e.step.note.contains("senior_management"), "{}", e.step.note);

        let mut answered = complaint(State::Answered, Department);
        assert!(escalate(&mut answered, Cause::AnswerOverdue, "system", at()).is_err());
        let mut down = complaint(State::Accepted, Office);
        assert_eq!(escalate(&mut down, by_hand(Office), "x", at()).map_err(|e| e.reason), Err("ESCALATION_NOT_UPWARD"));
        assert_eq!(overdue_states(), [State::Accepted, State::Investigating, State::Resolved]);
    }

    #[test]
    fn only_upwards() {
        for &from in EscalationLevel::ALL {
            for &to in EscalationLevel::ALL {
                assert_eq!(from.raise(to).is_ok(), from.rank() < to.rank(), "{from:?} -> {to:?}");
            }
        }
        assert_eq!(Department.raise(SeniorManagement), Ok(SeniorManagement));
        assert_eq!(Office.raise(Department).map_err(|e| e.reason), Err("ESCALATION_NOT_UPWARD"));
        assert_eq!(Department.next(), Some(Office));
        assert_eq!(Office.next(), Some(SeniorManagement));
        assert_eq!(SeniorManagement.next(), None);
    }
}

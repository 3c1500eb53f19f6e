//! Complaints' part of a customer's termination (CUS-11, X-2): "complaints
//! confirms none open". The step is done when the customer has no open
//! complaint; otherwise it is held, naming them, until they are closed.

use super::State;

/// The stable code of a held step.
pub const HOLD_CODE: &str = "OPEN_COMPLAINTS";
/// Most complaint numbers a held reason lists.
const LISTED: usize = 10;

impl State {
    /// Not yet in a final state: rejected (CMP-3) and closed (CMP-7, CMP-9)
    /// complaints are finished — exactly the states with no way forward.
    /// Answered ones are open: the customer's feedback may reopen them.
    pub fn is_open(self) -> bool {
        !matches!(self, State::Closed | State::Rejected)
    }
}

/// What complaints answers the saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepReport {
    Done,
    Held { reason: String },
}

/// The answer for a customer whose open complaints are `open` (numbers).
pub fn step_report(open: &[String]) -> StepReport {
    if open.is_empty() {
        return StepReport::Done;
    }
    let n = open.len();
    let mut listed = open.iter().take(LISTED).cloned().collect::<Vec<_>>().join(", ");
    if n > LISTED {
        listed.push_str(&format!(", … ({} more)", n - LISTED));
    }
    let reason = if n == 1 {
        format!("1 complaint is still open: {listed}")
    } else {
        format!("{n} complaints are still open: {listed}")
    };
    StepReport::Held { reason }
}

impl StepReport {
    /// Whether a re-check reports this again, after `last_held` was the last
    /// held reason reported: done always (and only once, the termination is
    /// then no longer pending), held only when the reason changed — so the
    /// saga hears of progress without a report every few seconds.
    pub fn worth_reporting(&self, last_held: &str) -> bool {
        match self {
            StepReport::Done => true,
            StepReport::Held { reason } => reason != last_held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("CMP-2026-{i:06}")).collect()
    }

    #[test]
    fn only_closed_and_rejected_are_not_open() {
        for &s in State::ALL {
            assert_eq!(s.is_open(), !matches!(s, State::Closed | State::Rejected), "{s:?}");
        }
    }

    #[test]
    fn open_complaints_hold_the_step_and_are_named() {
        assert_eq!(step_report(&[]), StepReport::Done);
        let one = step_report(&numbers(1));
        assert_eq!(one, StepReport::Held { reason: "1 complaint is still open: CMP-2026-000001".into() });
        let two = step_report(&numbers(2));
        assert_eq!(
            two,
            StepReport::Held { reason: "2 complaints are still open: CMP-2026-000001, CMP-2026-000002".into() }
        );
        let StepReport::Held { reason } = step_report(&numbers(12)) else { panic!("held") };
        assert!(reason.starts_with("12 complaints are still open: CMP-2026-000001,"), "{reason}");
        assert!(reason.ends_with("CMP-2026-000010, … (2 more)"), "{reason}");
    }

    #[test]
    fn a_recheck_reports_done_always_and_held_only_when_it_changed() {
        let held = step_report(&numbers(2));
        let StepReport::Held { reason } = &held else { panic!("held") };
        assert!(!held.worth_reporting(reason));
        assert!(held.worth_reporting(""));
        assert!(step_report(&numbers(1)).worth_reporting(reason));
        assert!(StepReport::Done.worth_reporting(reason));
    }
}

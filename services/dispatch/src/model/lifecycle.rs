//! DSP-2 lifecycle: draft → pending approval → approved → assigned → en route
//! → on site → completed → closed, or cancelled (with a reason) from any open
//! state before completion. Steps that do not move the state (the
//! pre-departure checklist) are decided here too, so every change asks one
//! place whether it is allowed now.

use super::{Kind, RuleViolation, State};

/// Something that happens to a work order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Submit,
    /// The service manager approves a submitted installation or repair.
    ApproveRequested,
    /// Maintenance or inspection released without a manager's approval.
    ApproveDirect,
    Assign,
    ConfirmChecklist,
    StartTravel,
    Arrive,
    Complete,
    Close,
    Cancel,
}

impl Event {
    pub const ALL: &'static [Event] = &[
        Event::Submit,
        Event::ApproveRequested,
        Event::ApproveDirect,
        Event::Assign,
        Event::ConfirmChecklist,
        Event::StartTravel,
        Event::Arrive,
        Event::Complete,
        Event::Close,
        Event::Cancel,
    ];

    /// The approval event for an order of `kind` (DSP-2).
    pub fn approval_for(kind: Kind) -> Event {
        if kind.needs_manager_approval() { Event::ApproveRequested } else { Event::ApproveDirect }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Event::Submit => "submit",
            Event::ApproveRequested | Event::ApproveDirect => "approve",
            Event::Assign => "assign",
            Event::ConfirmChecklist => "confirm the checklist of",
            Event::StartTravel => "start travel to",
            Event::Arrive => "arrive at",
            Event::Complete => "complete",
            Event::Close => "close",
            Event::Cancel => "cancel",
        }
    }
}

impl State {
    /// The state after `event`, or the rule that forbids it now.
    pub fn transition(self, event: Event) -> Result<State, RuleViolation> {
        use Event as E;
        use State::*;
        match (self, event) {
            (Closed, _) => Err(RuleViolation::new("WORK_ORDER_CLOSED", "the work order is closed; it is read-only")),
            (Cancelled, _) => Err(RuleViolation::new("WORK_ORDER_CANCELLED", "the work order was cancelled")),
            (Draft, E::Submit) => Ok(PendingApproval),
            (Draft, E::ApproveRequested) => Err(RuleViolation::new(
                "APPROVAL_NOT_REQUESTED",
                "installation and repair orders are submitted for the service manager's approval first (DSP-2)",
            )),
            (Draft | PendingApproval, E::ApproveDirect) | (PendingApproval, E::ApproveRequested) => Ok(Approved),
            (Draft | PendingApproval, E::Assign) => Err(RuleViolation::new(
                "WORK_ORDER_NOT_APPROVED",
                "a work order is assigned only once it is approved (DSP-2)",
            )),
            (Approved, E::Assign) => Ok(Assigned),
            (Assigned, E::ConfirmChecklist) => Ok(Assigned),
            (Assigned, E::StartTravel) => Ok(EnRoute),
            (EnRoute, E::Arrive) => Ok(OnSite),
            (OnSite, E::Complete) => Ok(Completed),
            (Completed, E::Close) => Ok(Closed),
            (Draft | PendingApproval | Approved | Assigned | EnRoute | OnSite, E::Cancel) => Ok(Cancelled),
            (from, event) => Err(RuleViolation::new(
                "ILLEGAL_TRANSITION",
                format!("cannot {} a work order that is {}", event.as_str(), from.as_str()),
            )),
        }
    }

    /// Still to be worked on: neither finished nor cancelled — exactly the
    /// states a cancellation may leave, so a customer's termination (CUS-11)
    /// cancels every open order and nothing else.
    pub fn is_open(self) -> bool {
        !matches!(self, State::Completed | State::Closed | State::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event as E;
    use State::*;

    /// The whole table: everything not listed here must be refused.
    const ALLOWED: &[(State, Event, State)] = &[
        (Draft, E::Submit, PendingApproval),
        (Draft, E::ApproveDirect, Approved),
        (Draft, E::Cancel, Cancelled),
        (PendingApproval, E::ApproveRequested, Approved),
        (PendingApproval, E::ApproveDirect, Approved),
        (PendingApproval, E::Cancel, Cancelled),
        (Approved, E::Assign, Assigned),
        (Approved, E::Cancel, Cancelled),
        (Assigned, E::ConfirmChecklist, Assigned),
        (Assigned, E::StartTravel, EnRoute),
        (Assigned, E::Cancel, Cancelled),
        (EnRoute, E::Arrive, OnSite),
        (EnRoute, E::Cancel, Cancelled),
        (OnSite, E::Complete, Completed),
        (OnSite, E::Cancel, Cancelled),
        (Completed, E::Close, Closed),
    ];

    #[test]
    fn every_state_and_event_is_decided_as_the_table_says() {
        crm_domain::check::lifecycle_is_the_table(State::ALL, Event::ALL, ALLOWED, State::transition);
    }

    #[test]
    fn refusals_name_the_rule() {
        for &event in Event::ALL {
            assert_eq!(Closed.transition(event).map_err(|e| e.reason), Err("WORK_ORDER_CLOSED"));
            assert_eq!(Cancelled.transition(event).map_err(|e| e.reason), Err("WORK_ORDER_CANCELLED"));
        }
        assert_eq!(Draft.transition(E::ApproveRequested).map_err(|e| e.reason), Err("APPROVAL_NOT_REQUESTED"));
        assert_eq!(PendingApproval.transition(E::Assign).map_err(|e| e.reason), Err("WORK_ORDER_NOT_APPROVED"));
        assert_eq!(Approved.transition(E::StartTravel).map_err(|e| e.reason), Err("ILLEGAL_TRANSITION"));
        assert_eq!(Completed.transition(E::Cancel).map_err(|e| e.reason), Err("ILLEGAL_TRANSITION"));
    }

    #[test]
    fn installation_and_repair_cannot_skip_the_manager() {
        for kind in [Kind::Installation, Kind::Repair] {
            assert_eq!(Event::approval_for(kind), E::ApproveRequested);
            assert!(Draft.transition(Event::approval_for(kind)).is_err());
        }
        for kind in [Kind::Maintenance, Kind::Inspection] {
            assert_eq!(Draft.transition(Event::approval_for(kind)), Ok(Approved));
        }
    }

    #[test]
    fn only_closed_and_cancelled_are_dead_ends() {
        for &s in State::ALL {
            let moves = Event::ALL.iter().filter(|e| s.transition(**e).is_ok_and(|to| to != s)).count();
            assert_eq!(moves == 0, matches!(s, Closed | Cancelled), "{s:?}");
        }
    }

    #[test]
    fn open_means_still_cancellable() {
        for &s in State::ALL {
            assert_eq!(s.is_open(), s.transition(E::Cancel).is_ok(), "{s:?}");
        }
    }

    proptest::proptest! {
        /// Any sequence of events, applied where allowed, follows the table,
        /// never leaves a terminal state and reaches assigned only through
        /// approved.
        #[test]
        fn random_walks_respect_the_table(steps in proptest::collection::vec(0usize..10, 0..60)) {
            let mut s = Draft;
            let mut approved = false;
            for i in steps {
                let e = Event::ALL[i];
                match s.transition(e) {
                    Ok(next) => {
                        proptest::prop_assert!(!matches!(s, Closed | Cancelled));
                        proptest::prop_assert!(ALLOWED.contains(&(s, e, next)));
                        approved |= next == Approved;
                        if next == Assigned { proptest::prop_assert!(approved); }
                        s = next;
                    }
                    Err(_) => proptest::prop_assert!(!ALLOWED.iter().any(|(f, ev, _)| *f == s && *ev == e)),
                }
            }
        }
    }
}

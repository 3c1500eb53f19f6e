//! CUS-4 first contact, CUS-5 timely entry, CUS-6 interaction channels and
//! CUS-10 satisfaction targets: small rules with dates in them.

use chrono::{DateTime, Duration, Utc};
use crm_domain::WorkingCalendar;

use super::{Customer, RuleViolation};

super::vocabulary!(InteractionChannel {
    Phone = "phone",
    Email = "email",
    Fax = "fax",
    Letter = "letter",
    ThankYouCard = "thank_you_card",
    SeminarInvitation = "seminar_invitation",
    Visit = "visit",
});

/// CUS-4: a newly assigned owner must make first contact within 7 days.
pub const FIRST_CONTACT_WINDOW: Duration = Duration::days(7);

/// CUS-5: collected information must be entered within 2 working days.
pub const ENTRY_WORKING_DAYS: u32 = 2;

/// CUS-7: visit minutes are due 2 working days after the visit.
pub const MINUTES_WORKING_DAYS: u32 = 2;

/// The first-contact deadline of an assignment made at `at`.
pub fn first_contact_due(at: DateTime<Utc>) -> DateTime<Utc> {
    at + FIRST_CONTACT_WINDOW
}

/// How a change of owner stands under CUS-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassignment {
    /// The owner's first contact is overdue: the customer is free to move,
    /// no reason needed.
    Free,
    /// The owner is inside the window or has made contact: moved only by an
    /// explicit override, whose reason is recorded with the change.
    Override,
}

/// CUS-4: only a customer whose first contact is overdue may be reassigned
/// without a reason. One whose owner is still inside the 7-day window, or
/// has made contact, needs an explicit override. An owner who registered
/// the customer themselves has no clock: they collected the customer's
/// details, so they are in contact from the start.
pub fn may_reassign(c: &Customer, now: DateTime<Utc>, override_given: bool) -> Result<Reassignment, RuleViolation> {
    match (c.first_contact_due, c.first_contact_at) {
        (Some(due), None) if now >= due => Ok(Reassignment::Free),
        _ if override_given => Ok(Reassignment::Override),
        (Some(due), None) => Err(RuleViolation::new(
            "FIRST_CONTACT_WINDOW_OPEN",
            format!(
                "{} has until {} to make first contact (CUS-4); to reassign now set override_first_contact_window \
                 and give the reason",
                c.owner_id,
                due.to_rfc3339()
            ),
        )),
        _ => Err(RuleViolation::new(
            "OWNER_IN_CONTACT",
            format!(
                "{} is in contact with this customer (CUS-4): only an overdue first contact frees a customer; to \
                 reassign it set override_first_contact_window and give the reason",
                c.owner_id
            ),
        )),
    }
}

/// CUS-5: entered later than 2 working days after collection.
pub fn entry_late(cal: &WorkingCalendar, collected_at: DateTime<Utc>, entered_at: DateTime<Utc>) -> bool {
    entered_at >= cal.working_days_deadline(collected_at, ENTRY_WORKING_DAYS)
}

/// CUS-10: the satisfaction target for a year — 95% in 2026, rising by half
/// a point a year (and never above 100%).
pub fn satisfaction_target(year: i32) -> f64 {
    (0.95 + 0.005 * f64::from(year - 2026)).clamp(0.0, 1.0)
}

/// CUS-10: scores of 4 and 5 (out of 5) count as satisfied.
pub const SATISFIED_SCORE: i16 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().unwrap_or_default()
    }

    #[test]
    fn entry_is_late_after_two_working_days_across_a_weekend() {
        let cal = WorkingCalendar::default();
        // Collected Friday 2026-11-20 10:00 Shanghai (02:00 UTC): due by the end of Tuesday.
        let collected = at(2026, 11, 20, 2);
        assert!(!entry_late(&cal, collected, at(2026, 11, 24, 15))); // Tue 23:00 local
        assert!(entry_late(&cal, collected, at(2026, 11, 24, 16))); // Wed 00:00 local
        assert!(!entry_late(&cal, collected, at(2026, 11, 22, 8))); // Sunday
    }

    #[test]
    fn holidays_extend_the_entry_deadline() {
        let holidays = (1..=7).filter_map(|d| chrono::NaiveDate::from_ymd_opt(2026, 10, d));
        let cal = WorkingCalendar::new("Asia/Shanghai", holidays, []).unwrap_or_default();
        // Collected Wed Sep 30: due by the end of Fri Oct 9 (Oct 8 and 9 are the first working days).
        let collected = at(2026, 9, 30, 2);
        assert!(!entry_late(&cal, collected, at(2026, 10, 9, 15)));
        assert!(entry_late(&cal, collected, at(2026, 10, 9, 16)));
    }

    /// CUS-4: only an overdue first contact frees a customer; inside the
    /// window, after contact, and for the registering owner an override is
    /// needed.
    #[test]
    fn only_an_overdue_first_contact_frees_a_customer() {
        let assigned = at(2026, 11, 2, 2);
        let mut c = crate::model::sample_customer("s1", "bj");
        c.assigned_at = Some(assigned);
        c.first_contact_due = Some(first_contact_due(assigned));
        let inside = assigned + Duration::days(6);
        let overdue = assigned + Duration::days(7);
        let reason = |r: Result<Reassignment, RuleViolation>| r.map_err(|v| v.reason);
        assert_eq!(reason(may_reassign(&c, inside, false)), Err("FIRST_CONTACT_WINDOW_OPEN"));
        assert_eq!(reason(may_reassign(&c, inside, true)), Ok(Reassignment::Override));
        assert_eq!(reason(may_reassign(&c, overdue, false)), Ok(Reassignment::Free));
        assert_eq!(reason(may_reassign(&c, overdue, true)), Ok(Reassignment::Free));

        // Contact made inside the window protects the owner for good.
        c.first_contact_at = Some(assigned + Duration::days(1));
        assert_eq!(reason(may_reassign(&c, overdue + Duration::days(30), false)), Err("OWNER_IN_CONTACT"));
        assert_eq!(reason(may_reassign(&c, overdue, true)), Ok(Reassignment::Override));

        // The owner who registered the customer has no clock and is in contact.
        let own = crate::model::sample_customer("s1", "bj");
        assert_eq!(reason(may_reassign(&own, overdue, false)), Err("OWNER_IN_CONTACT"));
    }

    #[test]
    fn the_target_rises_half_a_point_a_year() {
        assert!((satisfaction_target(2026) - 0.95).abs() < 1e-9);
        assert!((satisfaction_target(2028) - 0.96).abs() < 1e-9);
        assert!((satisfaction_target(2040) - 1.0).abs() < 1e-9);
    }
}

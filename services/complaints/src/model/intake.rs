//! CMP-1 intake and CMP-2 appeal window: what a new complaint is, its
//! number, and whether a complaint against a report came too late.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use crm_domain::{WorkingCalendar, ids::CustomerId};

use super::{
    Category, Channel, Complaint, ComplaintId, CustomerTier, EscalationLevel, References, RejectionReason,
    RuleViolation, ServiceLevel, State, Urgency,
};

/// CMP-2: days after receiving a report within which it may be appealed.
pub const APPEAL_WINDOW_DAYS: i64 = 10;

/// CMP-1: complaints are registered only for customers still served.
pub fn customer_terminated() -> RuleViolation {
    RuleViolation::new(
        "CUSTOMER_TERMINATED",
        "the customer is terminated; complaints are registered for customers being served (CMP-1)",
    )
}

/// A validated registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComplaint {
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub category: Category,
    pub department: String,
    pub urgency: Urgency,
    pub description: String,
    pub references: References,
    pub report_received_on: Option<NaiveDate>,
}

/// What the customers service says about the customer at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSnapshot {
    /// The customer as the customers service answered: a merged-away id's
    /// survivor (CUS-2).
    pub id: CustomerId,
    pub name: String,
    pub service_level: ServiceLevel,
    pub tier: CustomerTier,
}

/// CMP-2: a complaint against a report must be lodged within 10 days of
/// receiving it (the day of receipt is day 0).
pub fn appeal_window_closed(received: NaiveDate, lodged: NaiveDate) -> bool {
    (lodged - received).num_days() > APPEAL_WINDOW_DAYS
}

/// Only written channels count as "lodged in writing" (CMP-2).
pub fn is_written(channel: Channel) -> bool {
    matches!(channel, Channel::Email | Channel::Letter | Channel::Web)
}

/// `CMP-2026-000123`.
pub fn number(year: i32, seq: i32) -> String {
    format!("CMP-{year}-{seq:06}")
}

/// The numbering year: the local business year of registration.
pub fn numbering_year(cal: &WorkingCalendar, at: DateTime<Utc>) -> i32 {
    cal.local_date(at).year()
}

impl Complaint {
    /// A registered complaint; one against a report lodged too late is
    /// recorded as rejected right away (CMP-2), not lost.
    pub fn register(
        new: NewComplaint,
        customer: CustomerSnapshot,
        year: i32,
        seq: i32,
        by: &str,
        at: DateTime<Utc>,
        cal: &WorkingCalendar,
    ) -> Complaint {
        let late = new.category == Category::TestResult
            && new.report_received_on.is_some_and(|r| appeal_window_closed(r, cal.local_date(at)));
        let (state, reason, note, rejected_by, rejected_at) = if late {
            (
                State::Rejected,
                Some(RejectionReason::AppealWindowClosed),
                format!(
                    "lodged more than {APPEAL_WINDOW_DAYS} days after the report was received; the appeal window is \
                     closed (CMP-2)"
                ),
                Some(by.to_string()),
                Some(at),
            )
        } else {
            (State::Registered, None, String::new(), None, None)
        };
        Complaint {
            id: ComplaintId::new(),
            number: number(year, seq),
            year,
            seq,
            customer_id: new.customer_id,
            customer_name: customer.name,
            service_level: customer.service_level,
            customer_tier: customer.tier,
            channel: new.channel,
            category: new.category,
            department: new.department,
            urgency: new.urgency,
            description: new.description,
            references: new.references,
            report_received_on: new.report_received_on,
            state,
            escalation_level: EscalationLevel::Department,
            rejection_reason: reason,
            rejection_note: note,
            round: 0,
            reopen_count: 0,
            registered_by: by.to_string(),
            registered_at: at,
            accepted_by: None,
            accepted_at: None,
            rejected_by,
            rejected_at,
            closed_at: None,
            updated_at: at,
            version: 1,
            rounds: vec![],
            escalations: vec![],
            compensation: None,
            history: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn new(category: Category, received: Option<NaiveDate>) -> NewComplaint {
        NewComplaint {
            customer_id: CustomerId::new(),
            channel: Channel::Letter,
            category,
            department: "lab".into(),
            urgency: Urgency::Normal,
            description: "wrong value".into(),
            references: References::default(),
            report_received_on: received,
        }
    }

    fn snapshot() -> CustomerSnapshot {
        CustomerSnapshot {
            id: CustomerId::new(),
            name: "甲".into(),
            service_level: ServiceLevel::General,
            tier: CustomerTier::General,
        }
    }

    #[test]
    fn the_window_is_ten_days_after_receipt() {
        assert!(!appeal_window_closed(d("2026-11-01"), d("2026-11-11")));
        assert!(appeal_window_closed(d("2026-11-01"), d("2026-11-12")));
        assert!(!appeal_window_closed(d("2026-11-01"), d("2026-11-01")));
    }

    #[test]
    fn a_late_appeal_is_recorded_as_rejected() {
        let cal = WorkingCalendar::default();
        // 2026-11-12 10:00 in Shanghai.
        let at = Utc.with_ymd_and_hms(2026, 11, 12, 2, 0, 0).single().unwrap_or_default();
        let late =
            Complaint::register(new(Category::TestResult, Some(d("2026-11-01"))), snapshot(), 2026, 7, "d", at, &cal);
        assert_eq!(late.state, State::Rejected);
        assert_eq!(late.rejection_reason, Some(RejectionReason::AppealWindowClosed));
        assert_eq!(late.number, "CMP-2026-000007");
        let in_time =
            Complaint::register(new(Category::TestResult, Some(d("2026-11-02"))), snapshot(), 2026, 8, "d", at, &cal);
        assert_eq!(in_time.state, State::Registered);
        // The window is only for test results.
        let billing =
            Complaint::register(new(Category::Billing, Some(d("2026-01-01"))), snapshot(), 2026, 9, "d", at, &cal);
        assert_eq!(billing.state, State::Registered);
    }

    #[test]
    fn numbers_and_years_are_local() {
        assert_eq!(number(2026, 123), "CMP-2026-000123");
        let cal = WorkingCalendar::default();
        // 2026-12-31 17:00 UTC is already 2027 in Shanghai.
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 17, 0, 0).single().unwrap_or_default();
        assert_eq!(numbering_year(&cal, at), 2027);
        assert!(is_written(Channel::Letter) && !is_written(Channel::Phone));
    }
}

//! The complaint model: vocabulary, the complaint with its rounds,
//! escalations and compensation, the lifecycle, deadlines, intake rules and
//! who may do what. Pure: no SQL, no protobuf.

pub mod access;
pub mod deadline;
pub mod escalation;
pub mod intake;
pub mod lifecycle;
pub mod rules;
pub mod termination;

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Money, ids::CustomerId};

crm_domain::typed_id!(
    /// A complaint (CMP-1).
    ComplaintId
);

pub(crate) use crm_domain::vocabulary;

vocabulary!(
    /// CMP-3..CMP-7 lifecycle state.
    State {
        Registered = "registered",
        Accepted = "accepted",
        Rejected = "rejected",
        Investigating = "investigating",
        Resolved = "resolved",
        Answered = "answered",
        Closed = "closed",
    }
);
vocabulary!(Channel {
    Phone = "phone",
    Email = "email",
    Letter = "letter",
    InPerson = "in_person",
    Web = "web",
    SocialMedia = "social_media",
});
vocabulary!(Category {
    ServiceAttitude = "service_attitude",
    ServiceQuality = "service_quality",
    ProductFunction = "product_function",
    Billing = "billing",
    FieldWork = "field_work",
    TestResult = "test_result",
});
vocabulary!(Urgency { Normal = "normal", Urgent = "urgent" });
vocabulary!(
    /// The customer's CUS-8 service level at intake.
    ServiceLevel { General = "general", Key = "key", Special = "special" }
);
vocabulary!(
    /// The customer's CUS-8 value tier at intake.
    CustomerTier { Potential = "potential", General = "general", Key = "key", Vip = "vip" }
);
vocabulary!(
    /// CMP-4: who handles the complaint.
    EscalationLevel { Department = "department", Office = "office", SeniorManagement = "senior_management" }
);
vocabulary!(RejectionReason {
    AppealWindowClosed = "appeal_window_closed",
    NotAComplaint = "not_a_complaint",
    Duplicate = "duplicate",
    OutOfScope = "out_of_scope",
    InsufficientInformation = "insufficient_information",
});
vocabulary!(Verdict { Justified = "justified", Unjustified = "unjustified" });
vocabulary!(RetestOutcome { Upheld = "upheld", Amended = "amended" });
vocabulary!(
    /// CMP-6 unit of an answer deadline.
    DeadlineUnit { CalendarDays = "calendar_days", WorkingDays = "working_days", WorkingHours = "working_hours" }
);

pub use crm_domain::RuleViolation;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub work_order_ids: Vec<String>,
    pub invoice_ids: Vec<String>,
    pub report_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub id: ComplaintId,
    pub number: String,
    pub year: i32,
    pub seq: i32,
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub service_level: ServiceLevel,
    pub customer_tier: CustomerTier,
    pub channel: Channel,
    pub category: Category,
    pub department: String,
    pub urgency: Urgency,
    pub description: String,
    pub references: References,
    pub report_received_on: Option<NaiveDate>,
    pub state: State,
    pub escalation_level: EscalationLevel,
    pub rejection_reason: Option<RejectionReason>,
    pub rejection_note: String,
    /// The current round (0 before acceptance).
    pub round: i32,
    pub reopen_count: i32,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub rejected_by: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Loaded for a single complaint; empty in lists.
    pub rounds: Vec<Round>,
    pub escalations: Vec<Escalation>,
    pub compensation: Option<Compensation>,
    pub history: Vec<Step>,
}

impl Complaint {
    pub fn etag(&self) -> String {
        crm_domain::etag(self.version)
    }

    /// The round under way, if the complaint was accepted.
    pub fn current_round(&self) -> Option<&Round> {
        self.rounds.iter().find(|r| r.number == self.round)
    }

    pub fn current_round_mut(&mut self) -> Option<&mut Round> {
        let n = self.round;
        self.rounds.iter_mut().find(|r| r.number == n)
    }
}

/// One investigation round (CMP-4, CMP-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub number: i32,
    pub opened_at: DateTime<Utc>,
    pub answer_due_at: DateTime<Utc>,
    pub committed_answer_at: Option<DateTime<Utc>>,
    pub investigated_by: Option<String>,
    pub investigation_started_at: Option<DateTime<Utc>>,
    pub findings: Option<Findings>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub retest: Option<Retest>,
    pub answer: String,
    pub answered_by: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub satisfied: Option<bool>,
    pub feedback: String,
    pub feedback_by: Option<String>,
    pub feedback_at: Option<DateTime<Utc>>,
}

impl Round {
    pub fn open(number: i32, at: DateTime<Utc>, answer_due_at: DateTime<Utc>) -> Self {
        Self {
            number,
            opened_at: at,
            answer_due_at,
            committed_answer_at: None,
            investigated_by: None,
            investigation_started_at: None,
            findings: None,
            resolved_by: None,
            resolved_at: None,
            retest: None,
            answer: String::new(),
            answered_by: None,
            answered_at: None,
            satisfied: None,
            feedback: String::new(),
            feedback_by: None,
            feedback_at: None,
        }
    }

    /// The deadline that counts: a promise made to the customer can only
    /// bring it forward (CMP-6).
    pub fn due_at(&self) -> DateTime<Utc> {
        match self.committed_answer_at {
            Some(c) if c < self.answer_due_at => c,
            _ => self.answer_due_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub verdict: Verdict,
    pub facts: String,
    pub root_cause: String,
    pub corrective_actions: String,
    pub preventive_actions: String,
}

/// CMP-5 review of the original records and re-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retest {
    pub records_review: String,
    pub retested: bool,
    pub testers: Vec<String>,
    pub outcome: RetestOutcome,
    pub revoked_report_id: Option<String>,
    pub corrected_report_id: Option<String>,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub round: i32,
    pub from_level: EscalationLevel,
    pub to_level: EscalationLevel,
    pub reason: String,
    pub team_members: Vec<String>,
    pub escalated_by: String,
    pub escalated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compensation {
    pub amount: Money,
    pub reason: String,
    pub proposed_by: String,
    pub proposed_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
}

/// One recorded step (CMP-9).
pub type Step = crm_domain::history::Step<State>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip_through_their_stored_form() {
        use crm_domain::check::vocabulary_round_trips;
        vocabulary_round_trips(State::ALL, State::as_str, State::from_db);
        vocabulary_round_trips(Channel::ALL, Channel::as_str, Channel::from_db);
        vocabulary_round_trips(Category::ALL, Category::as_str, Category::from_db);
        vocabulary_round_trips(EscalationLevel::ALL, EscalationLevel::as_str, EscalationLevel::from_db);
        vocabulary_round_trips(RejectionReason::ALL, RejectionReason::as_str, RejectionReason::from_db);
        vocabulary_round_trips(DeadlineUnit::ALL, DeadlineUnit::as_str, DeadlineUnit::from_db);
        assert_eq!(State::from_db("archived"), None);
    }

    #[test]
    fn a_commitment_only_brings_the_deadline_forward() {
        let t = |h: i64| DateTime::<Utc>::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap_or_default();
        let mut r = Round::open(1, t(0), t(48));
        assert_eq!(r.due_at(), t(48));
        r.committed_answer_at = Some(t(24));
        assert_eq!(r.due_at(), t(24));
        r.committed_answer_at = Some(t(72));
        assert_eq!(r.due_at(), t(48));
    }
}

//! The sales workflow's records: interactions and follow-ups (CUS-6), visits
//! (CUS-7), survey answers (CUS-10) and account plans (CUS-12).

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Money, ids::CustomerId};
use uuid::Uuid;

use super::{contact_rules::InteractionChannel, plan::ContractStage, visit::VisitState};

#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub channel: InteractionChannel,
    pub occurred_at: DateTime<Utc>,
    pub contact_name: String,
    pub summary: String,
    pub outcome: String,
    pub recorded_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub owner_id: String,
    pub due_at: DateTime<Utc>,
    pub repeat_every_days: i32,
    pub note: String,
    pub done_at: Option<DateTime<Utc>>,
}

impl FollowUp {
    /// The next occurrence of a periodic follow-up done at `done_at`.
    pub fn next_after(&self, done_at: DateTime<Utc>) -> Option<FollowUp> {
        (self.repeat_every_days > 0).then(|| FollowUp {
            id: Uuid::now_v7(),
            due_at: done_at + chrono::Duration::days(i64::from(self.repeat_every_days)),
            done_at: None,
            ..self.clone()
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub state: VisitState,
    pub purpose: String,
    pub goals: String,
    pub attendees: Vec<String>,
    pub planned_for: DateTime<Utc>,
    pub planned_by: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub visited_at: Option<DateTime<Utc>>,
    pub minutes: String,
    pub minutes_due: Option<DateTime<Utc>>,
    pub minutes_submitted_at: Option<DateTime<Utc>>,
    pub minutes_late: bool,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub receipt_confirmed_by: Option<String>,
    pub receipt_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SurveyAnswer {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub score: i16,
    pub channel: String,
    pub answered_on: NaiveDate,
    pub comments: String,
    pub recorded_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanTarget {
    pub description: String,
    pub amount: Option<Money>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanReview {
    pub quarter: i16,
    pub summary: String,
    pub reviewed_by: String,
    pub reviewed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountPlan {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub year: i32,
    pub strategy: String,
    pub activities: Vec<String>,
    pub targets: Vec<PlanTarget>,
    pub contract_stage: ContractStage,
    pub reviews: Vec<PlanReview>,
    pub created_by: String,
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_follow_ups_come_back_after_their_interval() {
        let f = FollowUp {
            id: Uuid::now_v7(),
            customer_id: CustomerId::new(),
            owner_id: "s1".into(),
            due_at: Utc::now(),
            repeat_every_days: 30,
            note: "monthly call".into(),
            done_at: None,
        };
        let done = Utc::now();
        let next = f.next_after(done).expect("periodic");
        assert_eq!(next.due_at, done + chrono::Duration::days(30));
        assert_ne!(next.id, f.id);
        assert!(FollowUp { repeat_every_days: 0, ..f }.next_after(done).is_none());
    }
}

//! A complaint's rounds, escalations, compensation, history, and the outbox.

use chrono::{DateTime, Utc};
use crm_domain::{Currency, Money};
use sqlx::PgConnection;
use uuid::Uuid;

use super::parse;
use crate::{
    error::{Error, Result},
    model::{
        Compensation, ComplaintId, Escalation, EscalationLevel, Findings, Retest, RetestOutcome, Round, State, Step,
        Verdict,
    },
};

#[derive(sqlx::FromRow)]
struct RoundRow {
    number: i32,
    opened_at: DateTime<Utc>,
    answer_due_at: DateTime<Utc>,
    committed_answer_at: Option<DateTime<Utc>>,
    investigated_by: Option<String>,
    investigation_started_at: Option<DateTime<Utc>>,
    verdict: Option<String>,
    facts: String,
    root_cause: String,
    corrective_actions: String,
    preventive_actions: String,
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    records_review: Option<String>,
    retested: bool,
    testers: Vec<String>,
    retest_outcome: Option<String>,
    revoked_report_id: Option<String>,
    corrected_report_id: Option<String>,
    retest_recorded_by: Option<String>,
    retest_recorded_at: Option<DateTime<Utc>>,
    amendment_approved_by: Option<String>,
    amendment_approved_at: Option<DateTime<Utc>>,
    answer: String,
    answered_by: Option<String>,
    answered_at: Option<DateTime<Utc>>,
    satisfied: Option<bool>,
    feedback: String,
    feedback_by: Option<String>,
    feedback_at: Option<DateTime<Utc>>,
}

impl RoundRow {
    fn into_model(self) -> Result<Round> {
        let findings = match self.verdict.as_deref() {
            Some(v) => Some(Findings {
                verdict: parse("verdict", v, Verdict::from_db)?,
                facts: self.facts,
                root_cause: self.root_cause,
                corrective_actions: self.corrective_actions,
                preventive_actions: self.preventive_actions,
            }),
            None => None,
        };
        let retest = match (self.records_review, self.retest_outcome.as_deref()) {
            (Some(review), Some(outcome)) => Some(Retest {
                records_review: review,
                retested: self.retested,
                testers: self.testers,
                outcome: parse("retest outcome", outcome, RetestOutcome::from_db)?,
                revoked_report_id: self.revoked_report_id,
                corrected_report_id: self.corrected_report_id,
                recorded_by: self.retest_recorded_by.unwrap_or_default(),
                recorded_at: self.retest_recorded_at.unwrap_or(self.opened_at),
                approved_by: self.amendment_approved_by,
                approved_at: self.amendment_approved_at,
            }),
            _ => None,
        };
        Ok(Round {
            number: self.number,
            opened_at: self.opened_at,
            answer_due_at: self.answer_due_at,
            committed_answer_at: self.committed_answer_at,
            investigated_by: self.investigated_by,
            investigation_started_at: self.investigation_started_at,
            findings,
            resolved_by: self.resolved_by,
            resolved_at: self.resolved_at,
            retest,
            answer: self.answer,
            answered_by: self.answered_by,
            answered_at: self.answered_at,
            satisfied: self.satisfied,
            feedback: self.feedback,
            feedback_by: self.feedback_by,
            feedback_at: self.feedback_at,
        })
    }
}

pub async fn load_rounds(conn: &mut PgConnection, id: ComplaintId) -> Result<Vec<Round>> {
    let rows: Vec<RoundRow> = sqlx::query_as(
        "SELECT number, opened_at, answer_due_at, committed_answer_at, investigated_by, investigation_started_at, \
         verdict, facts, root_cause, corrective_actions, preventive_actions, resolved_by, resolved_at, \
         records_review, retested, testers, retest_outcome, revoked_report_id, corrected_report_id, \
         retest_recorded_by, retest_recorded_at, amendment_approved_by, amendment_approved_at, answer, answered_by, \
         answered_at, satisfied, feedback, feedback_by, feedback_at \
         FROM complaints.rounds WHERE complaint_id = $1 ORDER BY number",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(RoundRow::into_model).collect()
}

pub async fn insert_round(conn: &mut PgConnection, id: ComplaintId, r: &Round) -> Result<()> {
    sqlx::query(
        "INSERT INTO complaints.rounds (complaint_id, number, opened_at, answer_due_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.0)
    .bind(r.number)
    .bind(r.opened_at)
    .bind(r.answer_due_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves everything a step may have recorded in a round.
pub async fn save_round(conn: &mut PgConnection, id: ComplaintId, r: &Round) -> Result<()> {
    let f = r.findings.as_ref();
    let t = r.retest.as_ref();
    sqlx::query(
        "UPDATE complaints.rounds SET committed_answer_at = $3, investigated_by = $4, investigation_started_at = $5, \
         verdict = $6, facts = $7, root_cause = $8, corrective_actions = $9, preventive_actions = $10, \
         resolved_by = $11, resolved_at = $12, records_review = $13, retested = $14, testers = $15, \
         retest_outcome = $16, revoked_report_id = $17, corrected_report_id = $18, retest_recorded_by = $19, \
         retest_recorded_at = $20, amendment_approved_by = $21, amendment_approved_at = $22, answer = $23, \
         answered_by = $24, answered_at = $25, satisfied = $26, feedback = $27, feedback_by = $28, \
         feedback_at = $29 WHERE complaint_id = $1 AND number = $2",
    )
    .bind(id.0)
    .bind(r.number)
    .bind(r.committed_answer_at)
    .bind(&r.investigated_by)
    .bind(r.investigation_started_at)
    .bind(f.map(|f| f.verdict.as_str()))
    .bind(f.map(|f| f.facts.as_str()).unwrap_or_default())
    .bind(f.map(|f| f.root_cause.as_str()).unwrap_or_default())
    .bind(f.map(|f| f.corrective_actions.as_str()).unwrap_or_default())
    .bind(f.map(|f| f.preventive_actions.as_str()).unwrap_or_default())
    .bind(&r.resolved_by)
    .bind(r.resolved_at)
    .bind(t.map(|t| t.records_review.as_str()))
    .bind(t.is_some_and(|t| t.retested))
    .bind(t.map(|t| t.testers.clone()).unwrap_or_default())
    .bind(t.map(|t| t.outcome.as_str()))
    .bind(t.and_then(|t| t.revoked_report_id.as_deref()))
    .bind(t.and_then(|t| t.corrected_report_id.as_deref()))
    .bind(t.map(|t| t.recorded_by.as_str()))
    .bind(t.map(|t| t.recorded_at))
    .bind(t.and_then(|t| t.approved_by.as_deref()))
    .bind(t.and_then(|t| t.approved_at))
    .bind(&r.answer)
    .bind(&r.answered_by)
    .bind(r.answered_at)
    .bind(r.satisfied)
    .bind(&r.feedback)
    .bind(&r.feedback_by)
    .bind(r.feedback_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EscalationRow {
    round: i32,
    from_level: String,
    to_level: String,
    reason: String,
    team_members: Vec<String>,
    escalated_by: String,
    escalated_at: DateTime<Utc>,
}

pub async fn load_escalations(conn: &mut PgConnection, id: ComplaintId) -> Result<Vec<Escalation>> {
    let rows: Vec<EscalationRow> = sqlx::query_as(
        "SELECT round, from_level, to_level, reason, team_members, escalated_by, escalated_at \
         FROM complaints.escalations WHERE complaint_id = $1 ORDER BY escalated_at, id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Escalation {
                round: r.round,
                from_level: parse("escalation level", &r.from_level, EscalationLevel::from_db)?,
                to_level: parse("escalation level", &r.to_level, EscalationLevel::from_db)?,
                reason: r.reason,
                team_members: r.team_members,
                escalated_by: r.escalated_by,
                escalated_at: r.escalated_at,
            })
        })
        .collect()
}

pub async fn insert_escalation(conn: &mut PgConnection, id: ComplaintId, e: &Escalation) -> Result<()> {
    sqlx::query(
        "INSERT INTO complaints.escalations (id, complaint_id, round, from_level, to_level, reason, team_members, \
         escalated_by, escalated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(id.0)
    .bind(e.round)
    .bind(e.from_level.as_str())
    .bind(e.to_level.as_str())
    .bind(&e.reason)
    .bind(&e.team_members)
    .bind(&e.escalated_by)
    .bind(e.escalated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CompensationRow {
    amount_minor: i64,
    currency_code: String,
    reason: String,
    proposed_by: String,
    proposed_at: DateTime<Utc>,
    approved_by: Option<String>,
    approved_at: Option<DateTime<Utc>>,
}

pub async fn load_compensation(conn: &mut PgConnection, id: ComplaintId) -> Result<Option<Compensation>> {
    let row: Option<CompensationRow> = sqlx::query_as(
        "SELECT amount_minor, currency_code, reason, proposed_by, proposed_at, approved_by, approved_at \
         FROM complaints.compensations WHERE complaint_id = $1",
    )
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        let currency = Currency::parse(&r.currency_code).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Compensation {
            amount: Money::new(r.amount_minor, currency),
            reason: r.reason,
            proposed_by: r.proposed_by,
            proposed_at: r.proposed_at,
            approved_by: r.approved_by,
            approved_at: r.approved_at,
        })
    })
    .transpose()
}

/// A new proposal replaces an unapproved one; approval is saved the same way.
pub async fn save_compensation(conn: &mut PgConnection, id: ComplaintId, c: &Compensation) -> Result<()> {
    sqlx::query(
        "INSERT INTO complaints.compensations (complaint_id, amount_minor, currency_code, reason, proposed_by, \
         proposed_at, approved_by, approved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (complaint_id) DO UPDATE SET amount_minor = EXCLUDED.amount_minor, \
         currency_code = EXCLUDED.currency_code, reason = EXCLUDED.reason, proposed_by = EXCLUDED.proposed_by, \
         proposed_at = EXCLUDED.proposed_at, approved_by = EXCLUDED.approved_by, approved_at = EXCLUDED.approved_at",
    )
    .bind(id.0)
    .bind(c.amount.amount_minor())
    .bind(c.amount.currency().code())
    .bind(&c.reason)
    .bind(&c.proposed_by)
    .bind(c.proposed_at)
    .bind(&c.approved_by)
    .bind(c.approved_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct StepRow {
    action: String,
    from_state: Option<String>,
    to_state: String,
    actor: String,
    at: DateTime<Utc>,
    note: String,
}

pub async fn load_history(conn: &mut PgConnection, id: ComplaintId) -> Result<Vec<Step>> {
    let rows: Vec<StepRow> = sqlx::query_as(
        "SELECT action, from_state, to_state, actor, at, note FROM complaints.history \
         WHERE complaint_id = $1 ORDER BY at, id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Step {
                action: r.action,
                from_state: r.from_state.as_deref().map(|s| parse("state", s, State::from_db)).transpose()?,
                to_state: parse("state", &r.to_state, State::from_db)?,
                actor: r.actor,
                at: r.at,
                note: r.note,
            })
        })
        .collect()
}

/// CMP-9: records one step, who and when.
pub async fn record_step(conn: &mut PgConnection, id: ComplaintId, step: &Step) -> Result<()> {
    sqlx::query(
        "INSERT INTO complaints.history (id, complaint_id, action, from_state, to_state, actor, at, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(id.0)
    .bind(&step.action)
    .bind(step.from_state.map(|s| s.as_str()))
    .bind(step.to_state.as_str())
    .bind(&step.actor)
    .bind(step.at)
    .bind(&step.note)
    .execute(conn)
    .await?;
    Ok(())
}

//! CMP-6 automatic escalation: a complaint whose answer is overdue goes one
//! level up (department → office → senior management), once per round.
//! Every replica runs the job; rows are claimed with `FOR UPDATE SKIP
//! LOCKED` and marked in the same transaction, so concurrent passes never
//! escalate a complaint twice and never wait on each other or on handlers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_platform::Clock;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        ComplaintId,
        escalation::{self, Cause},
    },
    store,
};

/// How often each replica looks for overdue answers.
pub const EVERY: Duration = Duration::from_secs(60);
/// Who the history names for automatic escalations.
pub const ACTOR: &str = "system:complaints-escalation";
/// Complaints escalated per transaction, so a backlog does not hold many
/// row locks at once.
const BATCH: i64 = 100;

/// Runs a pass every `every` until the pool closes.
pub async fn run(pool: PgPool, every: Duration, clock: Clock) {
    crm_platform::jobs::every("complaints escalation", pool, every, move |pool| {
        let now = clock.now();
        async move { escalate_overdue_once(&pool, now).await }
    })
    .await;
}

/// One pass: escalates every complaint overdue at `now` that no other pass
/// holds; returns how many it handled.
pub async fn escalate_overdue_once(pool: &PgPool, now: DateTime<Utc>) -> Result<u64> {
    let mut handled = 0;
    loop {
        let n = escalate_batch(pool, now).await?;
        handled += n;
        if n < BATCH as u64 {
            return Ok(handled);
        }
    }
}

async fn escalate_batch(pool: &PgPool, now: DateTime<Utc>) -> Result<u64> {
    let mut tx = pool.begin().await?;
    // The states the lifecycle lets an overdue answer escalate in.
    let states: Vec<&str> = escalation::overdue_states().iter().map(|s| s.as_str()).collect();
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT c.id FROM complaints.complaints c \
         JOIN complaints.rounds r ON r.complaint_id = c.id AND r.number = c.round \
         WHERE c.state = ANY($3) AND r.answered_at IS NULL \
           AND r.overdue_escalated_at IS NULL \
           AND LEAST(r.answer_due_at, COALESCE(r.committed_answer_at, r.answer_due_at)) < $1 \
         ORDER BY c.id LIMIT $2 FOR UPDATE OF c, r SKIP LOCKED",
    )
    .bind(now)
    .bind(BATCH)
    .bind(&states)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        let id = ComplaintId(*id);
        let mut c = store::load(&mut tx, id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("complaint {id} vanished under its lock")))?;
        // The same rule as EscalateComplaint, for the overdue cause (CMP-6).
        let escalation::Escalated { record, step } = escalation::escalate(&mut c, Cause::AnswerOverdue, ACTOR, now)?;
        if let Some(e) = &record {
            store::insert_escalation(&mut tx, id, e).await?;
        }
        sqlx::query("UPDATE complaints.rounds SET overdue_escalated_at = $3 WHERE complaint_id = $1 AND number = $2")
            .bind(id.0)
            .bind(c.round)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        store::save_complaint(&mut tx, &c, now).await?;
        store::record_step(&mut tx, id, &step).await?;
    }
    tx.commit().await?;
    Ok(ids.len() as u64)
}

//! CUS-11 the termination saga's own steps: clearing starts when the notice
//! has run out (a job on every replica), each participant's report is
//! recorded, and the last one done terminates the customer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_events::{Payload, pb as ev};
use crm_platform::proto_time;
use sqlx::{PgConnection, PgPool};

use super::publish::emit;
use crate::{
    error::{Error, Result},
    model::{
        Stage,
        access::Scope,
        termination::{Step, Termination},
    },
    store,
};

/// CUS-11: a participant reports its part; the last one done terminates the
/// customer, in this transaction.
/// `t` (locked) takes `step`; returns whether it changed anything.
pub async fn report_step(conn: &mut PgConnection, t: &mut Termination, step: Step) -> Result<bool> {
    let now = step.updated_at;
    if !t.report(step) {
        return Ok(false);
    }
    if t.all_done() {
        finish(conn, t, now).await?;
    } else {
        store::save_termination(conn, t).await?;
    }
    Ok(true)
}

/// Every part is cleared: the customer becomes terminated — do-not-contact,
/// do-not-market, no new work — and the world is told.
async fn finish(conn: &mut PgConnection, t: &mut Termination, now: DateTime<Utc>) -> Result<()> {
    t.finish(now)?;
    store::save_termination(conn, t).await?;
    let mut c = store::load(conn, t.customer_id, &Scope::All, true)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("terminated customer {} is missing", t.customer_id)))?;
    let from = c.stage;
    // The termination process is the one way into `terminated` (lifecycle.rs).
    c.stage = Stage::Terminated;
    store::save_customer(conn, &c).await?;
    store::record_stage(conn, c.id, Some(from), Stage::Terminated, "system:termination", t.reason.as_str()).await?;
    emit(
        conn,
        c.id.0,
        Payload::CustomerStageChanged(ev::CustomerStageChanged {
            customer_id: c.id.to_string(),
            from_stage: from.as_str().into(),
            to_stage: Stage::Terminated.as_str().into(),
            changed_by: "system:termination".into(),
        }),
    )
    .await?;
    emit(
        conn,
        c.id.0,
        Payload::CustomerTerminated(ev::CustomerTerminated {
            saga_id: t.id.to_string(),
            customer_id: c.id.to_string(),
            reason: t.reason.as_str().into(),
        }),
    )
    .await
}

/// The saga job: every `every`, terminations whose notice has run out start
/// clearing (customer.termination_started). Safe on several replicas: rows
/// are claimed with SKIP LOCKED.
pub async fn run_saga(pool: PgPool, every: Duration) {
    crm_platform::jobs::every("termination saga", pool, every, |pool| async move { start_due(&pool).await }).await;
}

/// Starts clearing every termination whose notice has ended; returns how many.
pub async fn start_due(pool: &PgPool) -> Result<u64> {
    let mut tx = pool.begin().await?;
    store::set_actor(&mut tx, "system:termination", "StartClearing", None).await?;
    let now = proto_time::now();
    let due = store::claim_due_notices(&mut tx, now, 100).await?;
    for mut t in due.iter().cloned() {
        t.start_clearing(now)?;
        store::save_termination(&mut tx, &t).await?;
        emit(
            &mut tx,
            t.id,
            Payload::TerminationStarted(ev::TerminationStarted {
                saga_id: t.id.to_string(),
                customer_id: t.customer_id.to_string(),
                reason: t.reason.as_str().into(),
            }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len() as u64)
}

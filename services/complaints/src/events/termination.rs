//! Complaints' part of a customer's termination (CUS-11, X-2): when the
//! notice has ended (customer.termination_started) the termination is
//! recorded as pending and answered at once — DONE when the customer has no
//! open complaint, else HELD (OPEN_COMPLAINTS) naming them. A background
//! re-check looks at pending terminations every `saga_retry` and reports
//! DONE once none is open (HELD again only when the reason changed). Each
//! report commits with the state it reports: in the consumer's transaction,
//! or in the re-check's under the termination's row lock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use crm_events::{ApplyError, ApplyFuture, Handler, pb, saga};
use crm_platform::Clock;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::outgoing::emit;
use crate::{
    error::Result,
    model::termination::{HOLD_CODE, StepReport, step_report},
    store::{self, PendingTermination},
};

/// This service's name in the saga's reports.
const PARTICIPANT: &str = "complaints";
/// Pending terminations looked at per transaction.
const BATCH: i64 = 100;

/// Applies customer.termination_started.
pub(super) struct TerminationStarted(pub(super) Clock);

impl Handler for TerminationStarted {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let saga::Started { saga, customer } = saga::started(event)?;
            start(conn, saga, customer, self.0.now()).await.map_err(ApplyError::of)
        })
    }
}

/// Records the termination and answers the saga, whatever was answered
/// before: a fresh TerminationStarted asks again.
async fn start(conn: &mut PgConnection, saga: Uuid, customer: CustomerId, at: DateTime<Utc>) -> Result<()> {
    let pending = store::open_termination(conn, saga, customer, at).await?;
    // Once done, done: the saga has moved on with that answer.
    let report = if pending.done_at.is_some() {
        StepReport::Done
    } else {
        step_report(&store::open_complaint_numbers(conn, customer).await?)
    };
    report_step(conn, &pending, &report, at).await
}

/// Emits the report and records it, on the termination's locked row.
async fn report_step(
    conn: &mut PgConnection,
    t: &PendingTermination,
    report: &StepReport,
    at: DateTime<Utc>,
) -> Result<()> {
    let (step, held) = match report {
        StepReport::Done => (saga::Step::done(), None),
        StepReport::Held { reason } => {
            (saga::Step::Held { code: HOLD_CODE.into(), reason: reason.clone() }, Some(reason.as_str()))
        }
    };
    let payload = saga::step_reported(PARTICIPANT, t.saga_id, CustomerId(t.customer_id), step);
    emit(conn, t.saga_id, at, payload).await?;
    store::mark_reported(conn, t.saga_id, held, at).await
}

/// Runs the re-check every `every` until the pool closes. Every replica
/// runs it; `FOR UPDATE SKIP LOCKED` shares the pending terminations out.
pub async fn run(pool: PgPool, every: Duration, clock: Clock) {
    crm_platform::jobs::every("complaints termination re-check", pool, every, move |pool| {
        let now = clock.now();
        async move { recheck_once(&pool, now).await }
    })
    .await;
}

/// One pass over the pending terminations no other pass holds, a batch per
/// transaction so a backlog holds few locks at once; returns how many
/// reports it made.
pub async fn recheck_once(pool: &PgPool, now: DateTime<Utc>) -> Result<u64> {
    let mut reported = 0;
    let mut after = None;
    loop {
        let mut tx = pool.begin().await?;
        let pending = store::claim_pending_terminations(&mut tx, after, BATCH).await?;
        for t in &pending {
            let open = store::open_complaint_numbers(&mut tx, CustomerId(t.customer_id)).await?;
            let report = step_report(&open);
            if report.worth_reporting(&t.held_reason) {
                report_step(&mut tx, t, &report, now).await?;
                reported += 1;
            }
        }
        tx.commit().await?;
        match pending.last() {
            Some(last) if pending.len() as i64 == BATCH => after = Some((last.started_at, last.saga_id)),
            _ => return Ok(reported),
        }
    }
}

//! Billing's part of the CUS-11 termination saga (X-2 "termination → …
//! account cleared"): a termination is recorded when customer.termination_started
//! arrives; billing closes the customer's account once it is clear and
//! reports DONE, or reports HELD with the reason and looks again every
//! `ServiceContext::saga_retry` until it is clear. Every report goes out in
//! the transaction of the state it reports.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_events::{Payload, pb as ev};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    error::Result,
    model::{
        AccountStatus,
        standing::{Standing, TerminationStep, termination_step, work_step},
        states::AccountEvent,
    },
    store::{self, Termination},
    usecases::posting,
};

/// This service's name in TerminationStepReported.
pub const PARTICIPANT: &str = "billing";

/// Whether billing must answer even if nothing changed: the saga asked
/// (termination_started), or a re-check (report only a new hold, or DONE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Started,
    Recheck,
}

fn report(t: &Termination, outcome: ev::TerminationStepOutcome, code: &str, reason: &str) -> Payload {
    Payload::TerminationStepReported(ev::TerminationStepReported {
        saga_id: t.saga_id.to_string(),
        customer_id: t.customer_id.to_string(),
        participant: PARTICIPANT.to_string(),
        outcome: outcome as i32,
        reason: reason.to_string(),
        code: code.to_string(),
        billable_work_order_ids: vec![],
    })
}

/// Looks at termination `t` (its row locked by the caller) in the caller's
/// transaction: no account, a closed one, or a clear one (closed here, with
/// account.closed carrying the saga id) → DONE; otherwise HELD, reported
/// when asked or when the hold's code or reason changed.
pub async fn check(conn: &mut PgConnection, t: &Termination, asked: Asked, now: DateTime<Utc>) -> Result<()> {
    if !t.asked {
        // Only dispatch's report so far: nothing to answer until customers asks.
        return Ok(());
    }
    if t.status == "done" {
        if asked == Asked::Started {
            // The saga asked again (e.g. after a restart): the answer stands.
            let done = report(t, ev::TerminationStepOutcome::Done, "", "");
            crm_events::emit(conn, posting::SOURCE, t.saga_id, now, done).await?;
        }
        return Ok(());
    }
    let account = store::lock_account_of_customer(conn, t.customer_id).await?;
    let open = match &account {
        Some(a) if a.status != AccountStatus::Closed => Some((a, store::standing(conn, a.id).await?)),
        _ => None,
    };
    let uninvoiced = store::uninvoiced(conn, &t.billable_work_orders).await?;
    let step = match (work_step(t.dispatch_reported, &uninvoiced), &open) {
        (Some(held), _) => held,
        (None, Some((a, s))) => termination_step(*s, &a.currency, &a.id.to_string()),
        (None, None) => TerminationStep::Clear,
    };
    match step {
        TerminationStep::Clear => {
            if let Some((a, Standing { balance_minor, open_invoices })) = open {
                a.status.transition(AccountEvent::Close { balance_minor, open_invoices })?;
                posting::close_account(conn, a, Some(t.saga_id)).await?;
            }
            store::save_termination(conn, t.saga_id, account.as_ref().map(|a| a.id), None, now).await?;
            let done = report(t, ev::TerminationStepOutcome::Done, "", "");
            crm_events::emit(conn, posting::SOURCE, t.saga_id, now, done).await?;
        }
        TerminationStep::Held { code, reason } => {
            let changed = t.hold_code.as_deref() != Some(code) || t.hold_reason.as_deref() != Some(reason.as_str());
            store::save_termination(conn, t.saga_id, account.as_ref().map(|a| a.id), Some((code, &reason)), now)
                .await?;
            if asked == Asked::Started || changed {
                let held = report(t, ev::TerminationStepOutcome::Held, code, &reason);
                crm_events::emit(conn, posting::SOURCE, t.saga_id, now, held).await?;
            }
        }
    }
    Ok(())
}

/// Records dispatch's report of a saga and, if billing was already asked,
/// looks again (the awaited list may now be complete).
pub async fn dispatch_reported(conn: &mut PgConnection, saga: Uuid, customer: Uuid, billable: &[Uuid]) -> Result<()> {
    let t = store::record_dispatch_report(conn, saga, customer, billable).await?;
    check(conn, &t, Asked::Recheck, crm_platform::proto_time::now()).await
}

/// Records a started termination and answers it, in the consumer's transaction.
pub async fn start(conn: &mut PgConnection, saga: Uuid, customer: Uuid) -> Result<()> {
    let t = store::start_termination(conn, saga, customer).await?;
    check(conn, &t, Asked::Started, crm_platform::proto_time::now()).await
}

/// One pass over the pending terminations, each in its own transaction;
/// rows another replica holds are skipped (SKIP LOCKED), and each row is
/// looked at once per pass. Returns how many were looked at.
pub async fn recheck_once(pool: &PgPool) -> Result<u64> {
    let pass_start = crm_platform::proto_time::now();
    let mut looked = 0;
    loop {
        let mut tx = pool.begin().await?;
        let Some(t) = store::next_pending_termination(&mut tx, pass_start).await? else {
            return Ok(looked);
        };
        looked += 1;
        let now = crm_platform::proto_time::now();
        match check(&mut tx, &t, Asked::Recheck, now).await {
            Ok(()) => tx.commit().await?,
            Err(e) => {
                drop(tx);
                tracing::warn!(saga = %t.saga_id, error = %e, "termination re-check failed; trying again later");
                // Moves it behind the others so one failing row cannot stall the pass.
                let mut conn = pool.acquire().await?;
                store::touch_termination(&mut conn, t.saga_id, now).await?;
            }
        }
    }
}

/// Re-checks pending terminations every `every` until the pool closes.
pub async fn run(pool: PgPool, every: Duration) {
    crm_platform::jobs::every(
        "billing termination re-check",
        pool,
        every,
        |pool| async move { recheck_once(&pool).await },
    )
    .await;
}

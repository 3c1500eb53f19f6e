//! The customers service's part in the events between services (SPEC X-1,
//! what it publishes, the feeds it follows, and the termination saga's
//! job.
//!
//! - From billing (invoice.issued, payment.received, credit_note.issued) and
//!   complaints (complaint.filed): behaviour facts (CUS-8), and — when the
//!   tier policy is automatic — the tier recomputed in the same transaction.
//! - From dispatch, complaints and billing (termination.step_reported): each
//!   participant's part of a termination (CUS-11); the last one done
//!   terminates the customer.
//! - The saga job starts clearing once a notice has run out.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use crm_events::{
    ApplyError, ApplyFuture, Handler, Payload, Subscription, consumer::read, pb as ev, pb::TerminationStepOutcome,
};
use crm_platform::{ServiceContext, proto_time};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        Stage, ValueTier,
        access::Scope,
        termination::{Step, StepOutcome, Termination},
    },
    store,
};

pub(crate) const SCHEMA: &str = "customers";

/// Writes `payload` into `customers.outbox` on `conn`, the transaction of the
/// change it reports.
pub async fn emit(conn: &mut PgConnection, aggregate: Uuid, payload: Payload) -> Result<()> {
    crm_events::emit(conn, SCHEMA, aggregate, proto_time::now(), payload).await?;
    Ok(())
}

/// The peers' feeds this service follows.
pub fn subscriptions(_ctx: &ServiceContext) -> Vec<Subscription> {
    let handler: Arc<dyn Handler> = Arc::new(Apply);
    vec![
        Subscription {
            source: "billing",
            types: &["invoice.issued", "payment.received", "credit_note.issued", "termination.step_reported"],
            handler: Arc::clone(&handler),
        },
        Subscription {
            source: "complaints",
            types: &["complaint.filed", "termination.step_reported"],
            handler: Arc::clone(&handler),
        },
        Subscription { source: "dispatch", types: &["termination.step_reported"], handler },
    ]
}

struct Apply;

impl Handler for Apply {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a ev::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            // The audit trail (CUS-13) names the feed as the actor.
            store::set_actor(conn, &format!("system:{}", event.source), "ApplyEvent", Some(&event.id))
                .await
                .map_err(retry)?;
            let at = event.occurred_at.as_ref().and_then(|t| proto_time::from_proto(t).ok()).unwrap_or_else(Utc::now);
            let event_id = read::id("event id", &event.id)?;
            match &event.payload {
                Some(Payload::InvoiceIssued(p)) => {
                    let money = p.total.clone().unwrap_or_default();
                    fact(conn, event_id, &p.customer_id, "purchase", &money, at).await
                }
                Some(Payload::PaymentReceived(p)) => {
                    let money = p.amount.clone().unwrap_or_default();
                    fact(conn, event_id, &p.customer_id, "payment", &money, at).await
                }
                Some(Payload::CreditNoteIssued(p)) => {
                    let money = p.amount.clone().unwrap_or_default();
                    fact(conn, event_id, &p.customer_id, "credit", &money, at).await
                }
                Some(Payload::ComplaintFiled(p)) => {
                    fact(conn, event_id, &p.customer_id, "complaint", &Default::default(), at).await
                }
                Some(Payload::TerminationStepReported(p)) => step_reported(conn, p, &event.source).await,
                _ => Err(read::wrong(event)),
            }
        })
    }
}

fn retry(e: Error) -> ApplyError {
    match e {
        Error::Db(e) => ApplyError::Retry(e.to_string()),
        other => ApplyError::Poison(other.to_string()),
    }
}

async fn customer(conn: &mut PgConnection, raw: &str) -> Result<CustomerId, ApplyError> {
    let id = read::id("customer_id", raw)?;
    store::resolve_customer(conn, id)
        .await
        .map_err(retry)?
        .ok_or_else(|| ApplyError::Poison(format!("no customer {raw}")))
}

/// CUS-8: one behaviour fact, then the tier recomputed if the policy says so.
async fn fact(
    conn: &mut PgConnection,
    event_id: Uuid,
    customer_id: &str,
    kind: &str,
    money: &crm_proto::common::v1::Money,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let id = customer(conn, customer_id).await?;
    store::insert_fact(conn, event_id, id, kind, money.amount_minor, &money.currency_code, at).await.map_err(retry)?;
    recompute_tier(conn, id).await.map_err(retry)
}

/// Applies the policy's tier when the policy is automatic and the tier
/// differs; a terminated customer keeps its record unchanged.
async fn recompute_tier(conn: &mut PgConnection, id: CustomerId) -> Result<()> {
    let policy = store::tier_policy(conn).await?.policy;
    if !policy.automatic {
        return Ok(());
    }
    let Some(mut c) = store::load(conn, id, &Scope::All, true).await? else { return Ok(()) };
    if c.stage == Stage::Terminated {
        return Ok(());
    }
    let figures = store::behaviour(conn, id, &policy.currency, proto_time::now()).await?.figures;
    let tier = policy.tier(&figures);
    if tier == c.classification.value_tier {
        return Ok(());
    }
    let from = c.classification.value_tier;
    c.classification.value_tier = tier;
    store::save_customer(conn, &c).await?;
    store::record_classification(conn, &c, "system:tiering", "recomputed from behaviour (CUS-8)").await?;
    emit(conn, id.0, tier_changed(id, from, tier, true, "system:tiering")).await
}

/// The event for a registration, by CreateCustomer or ImportCustomers.
pub fn registered(c: &crate::model::Customer, by: &str) -> Payload {
    Payload::CustomerRegistered(ev::CustomerRegistered {
        customer_id: c.id.to_string(),
        display_name: c.display_name.clone(),
        branch: c.branch.clone(),
        owner_id: c.owner_id.clone(),
        region: c.region.clone(),
        registered_by: by.into(),
    })
}

/// The event for a tier change.
pub fn tier_changed(id: CustomerId, from: ValueTier, to: ValueTier, automatic: bool, by: &str) -> Payload {
    Payload::CustomerTierChanged(ev::CustomerTierChanged {
        customer_id: id.to_string(),
        from_tier: from.as_str().into(),
        to_tier: to.as_str().into(),
        automatic,
        changed_by: by.into(),
    })
}

/// CUS-11: a participant reports its part; the last one done terminates the
/// customer, in this transaction.
async fn step_reported(
    conn: &mut PgConnection,
    p: &ev::TerminationStepReported,
    source: &str,
) -> Result<(), ApplyError> {
    if p.participant != source {
        return Err(ApplyError::Poison(format!("{source} reported for {}", p.participant)));
    }
    let saga = read::id("saga_id", &p.saga_id)?;
    let Some(mut t) = store::load_termination(conn, saga, true).await.map_err(retry)? else {
        return Err(ApplyError::Poison(format!("no termination {saga}")));
    };
    let outcome = match TerminationStepOutcome::try_from(p.outcome) {
        Ok(TerminationStepOutcome::Done) => StepOutcome::Done,
        Ok(TerminationStepOutcome::Held) => StepOutcome::Held,
        _ => return Err(ApplyError::Poison(format!("step outcome {} is not done or held", p.outcome))),
    };
    let now = proto_time::now();
    let changed = t.report(Step {
        participant: p.participant.clone(),
        outcome,
        code: p.code.clone(),
        reason: p.reason.clone(),
        updated_at: now,
    });
    if !changed {
        return Ok(());
    }
    if t.all_done() {
        finish(conn, &mut t, now).await.map_err(retry)?;
    } else {
        store::save_termination(conn, &t).await.map_err(retry)?;
    }
    Ok(())
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

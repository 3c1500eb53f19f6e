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
//!
//! What it publishes, the behaviour facts and the saga's steps (and its job)
//! are use cases (`crate::usecases`); this module reads the feeds.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use crm_events::{
    ApplyError, ApplyFuture, Handler, Payload, Subscription, consumer::read, pb as ev, pb::TerminationStepOutcome,
};
use crm_platform::{ServiceContext, proto_time};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    model::termination::{Step, StepOutcome},
    store,
    usecases::{behaviour, termination},
};

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
                .map_err(ApplyError::of)?;
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

async fn customer(conn: &mut PgConnection, raw: &str) -> Result<CustomerId, ApplyError> {
    let id = read::id("customer_id", raw)?;
    store::resolve_customer(conn, id)
        .await
        .map_err(ApplyError::of)?
        .ok_or_else(|| ApplyError::Poison(format!("no customer {raw}")))
}

/// CUS-8: one behaviour fact about the (surviving) customer.
async fn fact(
    conn: &mut PgConnection,
    event_id: Uuid,
    customer_id: &str,
    kind: &str,
    money: &crm_proto::common::v1::Money,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let id = customer(conn, customer_id).await?;
    behaviour::record_fact(conn, event_id, id, kind, money, at).await.map_err(ApplyError::of)
}

/// CUS-11: a participant reports its part of a termination.
async fn step_reported(
    conn: &mut PgConnection,
    p: &ev::TerminationStepReported,
    source: &str,
) -> Result<(), ApplyError> {
    if p.participant != source {
        return Err(ApplyError::Poison(format!("{source} reported for {}", p.participant)));
    }
    let saga = read::id("saga_id", &p.saga_id)?;
    let Some(mut t) = store::load_termination(conn, saga, true).await.map_err(ApplyError::of)? else {
        return Err(ApplyError::Poison(format!("no termination {saga}")));
    };
    let outcome = match TerminationStepOutcome::try_from(p.outcome) {
        Ok(TerminationStepOutcome::Done) => StepOutcome::Done,
        Ok(TerminationStepOutcome::Held) => StepOutcome::Held,
        _ => return Err(ApplyError::Poison(format!("step outcome {} is not done or held", p.outcome))),
    };
    let step = Step {
        participant: p.participant.clone(),
        outcome,
        code: p.code.clone(),
        reason: p.reason.clone(),
        updated_at: proto_time::now(),
    };
    termination::report_step(conn, &mut t, step).await.map_err(ApplyError::of)?;
    Ok(())
}

//! This service's part in the events between services (SPEC ): what
//! it publishes (`outgoing`) and the peers' feeds it follows (`termination`,
//! with its background re-check of held steps).

mod merges;
mod outgoing;
pub mod termination;

use std::sync::Arc;

use crm_events::{ApplyFuture, Handler, Payload, Subscription, consumer::read, pb};
use crm_platform::ServiceContext;
use sqlx::PgConnection;

pub(crate) use outgoing::*;

/// The peers' feeds this service follows: the customers' termination saga
/// (CUS-11, X-2), whose complaints part is confirming none is open, and
/// merges (CUS-2), which move complaints to the survivor.
pub fn subscriptions(_ctx: &ServiceContext) -> Vec<Subscription> {
    vec![Subscription {
        source: "customers",
        types: &["customer.termination_started", "customer.merged"],
        handler: Arc::new(Customers),
    }]
}

/// The customers feed, by event type.
struct Customers;

impl Handler for Customers {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        match &event.payload {
            Some(Payload::TerminationStarted(_)) => termination::TerminationStarted.apply(conn, event),
            Some(Payload::CustomersMerged(_)) => merges::CustomersMerged.apply(conn, event),
            _ => Box::pin(async move { Err(read::wrong(event)) }),
        }
    }
}

//! This service's part in the events between services (SPEC ): what
//! it publishes (`outgoing`) and the peers' feeds it follows (`termination`).

mod invoices;
mod merges;
mod outgoing;
mod termination;

use std::sync::Arc;

use crm_events::{ApplyFuture, Handler, Payload, Subscription, consumer::read, pb};
use crm_platform::ServiceContext;
use sqlx::PgConnection;

pub(crate) use outgoing::*;

/// The peers' feeds this service follows: the customers' termination saga
/// (CUS-11, X-2), whose dispatch part is cancelling the customer's open work,
/// merges (CUS-2), which move work orders, devices and meters to the
/// survivor, and billing's invoices of completed work orders.
pub fn subscriptions(_ctx: &ServiceContext) -> Vec<Subscription> {
    vec![
        Subscription {
            source: "customers",
            types: &["customer.termination_started", "customer.merged"],
            handler: Arc::new(Customers),
        },
        Subscription {
            source: "billing",
            types: &["invoice.payment_changed"],
            handler: Arc::new(invoices::InvoicePaymentChanged),
        },
    ]
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

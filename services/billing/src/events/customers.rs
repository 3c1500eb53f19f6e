//! customer.termination_started → billing's step of the CUS-11 saga.

use crm_events::{ApplyFuture, Handler, Payload, consumer::read, pb};
use sqlx::PgConnection;

use super::apply_error;
use crate::termination;

pub struct Customers;

impl Handler for Customers {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let Some(Payload::TerminationStarted(e)) = &event.payload else { return Err(read::wrong(event)) };
            let saga = read::id("saga_id", &e.saga_id)?;
            let customer = read::id("customer_id", &e.customer_id)?;
            termination::start(conn, saga, customer).await.map_err(apply_error)
        })
    }
}

//! The customers feed: customer.termination_started → billing's step of the
//! CUS-11 saga; customer.merged → the merged-away customer's accounts move to
//! the survivor (CUS-2).

use crm_events::{ApplyError, ApplyFuture, Handler, Payload, aliases, consumer::read, pb};
use sqlx::PgConnection;

use crate::{store, termination};

pub struct Customers;

impl Handler for Customers {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            match &event.payload {
                Some(Payload::TerminationStarted(e)) => {
                    let saga = read::id("saga_id", &e.saga_id)?;
                    let customer = read::id("customer_id", &e.customer_id)?;
                    termination::start(conn, saga, customer).await.map_err(ApplyError::of)
                }
                Some(Payload::CustomersMerged(_)) => {
                    let (merged, survivor) = aliases::merged_ids(event)?;
                    aliases::record_merge(conn, "billing", merged, survivor).await?;
                    let moved = store::move_accounts(conn, merged, survivor).await.map_err(ApplyError::of)?;
                    tracing::info!(%merged, %survivor, moved, "accounts moved to the surviving customer");
                    Ok(())
                }
                _ => Err(read::wrong(event)),
            }
        })
    }
}

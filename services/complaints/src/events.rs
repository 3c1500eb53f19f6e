//! This service's part in the events between services (SPEC ): what
//! it publishes (`outgoing`) and the peers' feeds it follows (`termination`,
//! with its background re-check of held steps).

mod merges;
mod outgoing;
pub mod termination;

use std::sync::Arc;

use crm_events::{ByType, Subscription};
use crm_platform::ServiceContext;

pub(crate) use outgoing::*;

/// The peers' feeds this service follows: the customers' termination saga
/// (CUS-11, X-2), whose complaints part is confirming none is open, and
/// merges (CUS-2), which move complaints to the survivor.
pub fn subscriptions(ctx: &ServiceContext) -> Vec<Subscription> {
    vec![Subscription {
        source: "customers",
        types: &["customer.termination_started", "customer.merged"],
        handler: Arc::new(ByType(vec![
            ("customer.termination_started", Arc::new(termination::TerminationStarted(ctx.clock.clone()))),
            ("customer.merged", Arc::new(merges::CUSTOMERS_MERGED)),
        ])),
    }]
}

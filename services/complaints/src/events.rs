//! This service's part in the events between services (SPEC ): what
//! it publishes (`outgoing`) and the peers' feeds it follows (`termination`,
//! with its background re-check of held steps).

mod outgoing;
pub mod termination;

use std::sync::Arc;

use crm_events::Subscription;
use crm_platform::ServiceContext;

pub(crate) use outgoing::*;

/// The peers' feeds this service follows: the customers' termination saga
/// (CUS-11, X-2), whose complaints part is confirming none is open.
pub fn subscriptions(_ctx: &ServiceContext) -> Vec<Subscription> {
    vec![Subscription {
        source: "customers",
        types: &["customer.termination_started"],
        handler: Arc::new(termination::TerminationStarted),
    }]
}

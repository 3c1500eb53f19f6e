//! This service's part in the events between services (SPEC ): the
//! feeds it consumes and what it does with each event.

use crm_events::Subscription;
use crm_platform::ServiceContext;

/// The peers' feeds this service follows.
pub fn subscriptions(_ctx: &ServiceContext) -> Vec<Subscription> {
    vec![]
}

//! This service's part in the events between services (SPEC ): what
//! the peers' feeds it follows (what it publishes is `usecases::publish`).

mod catalogue;
mod invoices;
mod merges;
mod termination;

use std::sync::Arc;

use crm_events::{ByType, Subscription};
use crm_platform::ServiceContext;

/// The peers' feeds this service follows: the customers' termination saga
/// (CUS-11, X-2), whose dispatch part is cancelling the customer's open work,
/// merges (CUS-2), which move work orders, devices and meters to the
/// survivor, and billing's invoices of completed work orders.
pub fn subscriptions(ctx: &ServiceContext) -> Vec<Subscription> {
    vec![
        Subscription {
            source: "customers",
            types: &["customer.termination_started", "customer.merged"],
            handler: Arc::new(ByType(vec![
                ("customer.termination_started", Arc::new(termination::TerminationStarted(ctx.clock.clone()))),
                ("customer.merged", Arc::new(merges::CUSTOMERS_MERGED)),
            ])),
        },
        Subscription {
            source: "billing",
            types: &["invoice.payment_changed", "catalogue_item.changed"],
            handler: Arc::new(ByType(vec![
                ("invoice.payment_changed", Arc::new(invoices::InvoicePaymentChanged)),
                ("catalogue_item.changed", Arc::new(catalogue::CatalogueItemChanged(ctx.clock.clone()))),
            ])),
        },
    ]
}

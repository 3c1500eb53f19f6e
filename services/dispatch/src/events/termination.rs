//! Dispatch's part of a customer's termination (CUS-11, X-2): when the
//! notice has ended (customer.termination_started), every open work order
//! of the customer is cancelled and dispatch reports its step done — all in
//! the consumer's transaction, so the event id, the cancellations and the
//! report commit together or not at all.
//!
//! "Open" is what the lifecycle still lets be cancelled: draft, pending
//! approval, approved, assigned, en route and on site (`State::is_open`).
//! Work in progress is cancelled too — the relationship has ended — and the
//! technician's booked day gets its slot back. Completed orders are done
//! work (billing invoices them); closed and cancelled ones are finished. The
//! report lists the customer's completed orders with an amount due, so
//! billing can wait until it has invoiced each before closing the account.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use crm_events::{ApplyError, ApplyFuture, Handler, pb, saga};
use crm_platform::Clock;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::usecases::publish::emit;
use crate::{error::Result, model::lifecycle::Event, store, usecases::cancellation};

/// The reason every cancelled order carries.
pub(crate) const REASON: &str = "customer terminated";
/// Who the history names for these cancellations.
pub(crate) const ACTOR: &str = "system:customer-termination";
/// This service's name in the saga's reports.
const PARTICIPANT: &str = "dispatch";

/// Applies customer.termination_started.
pub(super) struct TerminationStarted(pub(super) Clock);

impl Handler for TerminationStarted {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let saga::Started { saga, customer } = saga::started(event)?;
            clear_customer(conn, saga, customer, self.0.now()).await.map_err(ApplyError::of)
        })
    }
}

/// Cancels the customer's open orders and reports the step done.
async fn clear_customer(conn: &mut PgConnection, saga: Uuid, customer: CustomerId, at: DateTime<Utc>) -> Result<()> {
    // First, so no order for the customer can be created from here on.
    store::record_termination(conn, customer, saga, at).await?;
    for id in store::open_order_ids_for_update(conn, customer).await? {
        let mut w = store::load_for_change(conn, id, None).await?;
        let to = w.state.transition(Event::Cancel)?;
        let step = cancellation::cancel(conn, &mut w, to, REASON.into(), ACTOR, at, Some(saga)).await?;
        store::save_work_order(conn, &w, at).await?;
        store::record_step(conn, w.id, &step).await?;
    }
    // After the cancellations: these row locks waited for any completion in
    // flight, so the list is final — no order of the customer can complete
    // or be created from here on.
    let billable = store::billable_order_ids(conn, customer).await?;
    let step = saga::Step::Done { billable_work_orders: billable.iter().map(ToString::to_string).collect() };
    emit(conn, saga, at, saga::step_reported(PARTICIPANT, saga, customer, step)).await
}

//! This service's part in the events between services (SPEC ): the
//! feeds it consumes and what it does with each event. Every handler writes
//! on the consumer's transaction only (the event id and the cursor commit
//! with it), and answers a billing refusal — no account, a closed account,
//! a reading below the previous one — as poison with billing's reason, so
//! the event is parked for an admin instead of retried.

mod complaints;
mod customers;
mod dispatch;

use std::sync::Arc;

use crm_events::{ApplyError, Subscription};
use crm_platform::ServiceContext;

/// The peers' feeds this service follows.
pub fn subscriptions(ctx: &ServiceContext) -> Vec<Subscription> {
    vec![
        Subscription {
            source: "dispatch",
            types: &["work_order.completed", "meter.read", "termination.step_reported"],
            handler: Arc::new(dispatch::Dispatch { calendar: ctx.calendar.clone() }),
        },
        Subscription {
            source: "complaints",
            types: &["complaint.compensation_agreed"],
            handler: Arc::new(complaints::Complaints),
        },
        Subscription {
            source: "customers",
            types: &["customer.termination_started", "customer.merged"],
            handler: Arc::new(customers::Customers),
        },
    ]
}

fn poison(message: impl Into<String>) -> ApplyError {
    ApplyError::Poison(message.into())
}

/// Who a posting made for an event is recorded as: the peer's actor when
/// the event names one, else the peer itself.
fn actor(source: &str, named: &str) -> String {
    let named = named.trim();
    if named.is_empty() { format!("system:{source}") } else { named.to_string() }
}

/// An amount of an event in the account's currency; `None` when absent.
fn amount(field: &str, m: Option<&crm_proto::common::v1::Money>, currency: &str) -> Result<Option<i64>, ApplyError> {
    let Some(m) = m else { return Ok(None) };
    if m.amount_minor != 0 && m.currency_code != currency {
        return Err(poison(format!("{field} is in {:?}, the account is in {currency}", m.currency_code)));
    }
    if m.amount_minor < 0 {
        return Err(poison(format!("{field} is negative")));
    }
    Ok(Some(m.amount_minor))
}

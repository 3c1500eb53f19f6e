//! What the customers service tells the others: events written into
//! `customers.outbox` on the transaction of the change they report.

use crm_domain::ids::CustomerId;
use crm_events::{Payload, pb as ev};
use crm_platform::proto_time;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{error::Result, model::ValueTier};

pub(crate) const SCHEMA: &str = "customers";

/// Writes `payload` into `customers.outbox` on `conn`, the transaction of the
/// change it reports.
pub async fn emit(conn: &mut PgConnection, aggregate: Uuid, payload: Payload) -> Result<()> {
    crm_events::emit(conn, SCHEMA, aggregate, proto_time::now(), payload).await?;
    Ok(())
}

/// The event for a registration, by CreateCustomer or ImportCustomers.
pub fn registered(c: &crate::model::Customer, by: &str) -> Payload {
    Payload::CustomerRegistered(ev::CustomerRegistered {
        customer_id: c.id.to_string(),
        display_name: c.display_name.clone(),
        branch: c.branch.clone(),
        owner_id: c.owner_id.clone(),
        region: c.region.clone(),
        registered_by: by.into(),
    })
}

/// The event for a tier change.
pub fn tier_changed(id: CustomerId, from: ValueTier, to: ValueTier, automatic: bool, by: &str) -> Payload {
    Payload::CustomerTierChanged(ev::CustomerTierChanged {
        customer_id: id.to_string(),
        from_tier: from.as_str().into(),
        to_tier: to.as_str().into(),
        automatic,
        changed_by: by.into(),
    })
}

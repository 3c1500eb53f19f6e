//! Cancelling a work order (DSP-2), by a supervisor (CancelWorkOrder) or by
//! the customer's termination (CUS-11): one way for both, so either gives
//! the technician's day its slot back, keeps the step in the history and
//! tells the other services (work_order.cancelled) in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    model::{State, Step, WorkOrder},
    store,
    usecases::publish,
};

/// Cancels `w` (already locked, `to` = the state the lifecycle allowed for
/// `Cancel`) with `reason`; the caller saves the order and records the
/// returned step. `saga` is the termination behind it, if any.
pub(crate) async fn cancel(
    conn: &mut PgConnection,
    w: &mut WorkOrder,
    to: State,
    reason: String,
    actor: &str,
    at: DateTime<Utc>,
    saga: Option<Uuid>,
) -> Result<Step> {
    // The order keeps who it was assigned to and for which day, for the
    // record; only the booking is given back.
    if let (Some(t), Some(day)) = (w.technician_id, w.scheduled_on) {
        store::release(conn, t, day).await?;
    }
    let from = w.state;
    w.state = to;
    w.cancel_reason = reason.clone();
    publish::emit(conn, w.id.0, at, publish::cancelled(w, saga)).await?;
    Ok(Step {
        action: "cancelled".into(),
        from_state: Some(from),
        to_state: to,
        actor: actor.to_string(),
        at,
        note: reason,
    })
}

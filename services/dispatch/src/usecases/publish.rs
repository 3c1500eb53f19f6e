//! What dispatch publishes: the protobuf payloads of its events, built
//! from the model, and writing them into `dispatch.outbox` on the
//! connection of the change they report.

use chrono::{DateTime, Utc};
use crm_domain::Money;
use crm_events::{Payload, pb};
use crm_platform::proto_time;
use crm_proto::common::v1 as common;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    model::{
        Completion, WorkOrder,
        metering::{Accepted, Meter, Outcome, RegisterChange},
    },
};

/// This service's schema, whose outbox its events go to.
pub(crate) const SCHEMA: &str = "dispatch";

/// Writes one event about `aggregate` in the transaction of its change.
pub(crate) async fn emit(conn: &mut PgConnection, aggregate: Uuid, at: DateTime<Utc>, payload: Payload) -> Result<()> {
    crm_events::emit(conn, SCHEMA, aggregate, at, payload).await?;
    Ok(())
}

fn money_out(m: Money) -> common::Money {
    common::Money { amount_minor: m.amount_minor(), currency_code: m.currency().code().to_string() }
}

/// work_order.approved (DSP-2).
pub(crate) fn approved(w: &WorkOrder, by: &str) -> Payload {
    Payload::WorkOrderApproved(pb::WorkOrderApproved {
        work_order_id: w.id.to_string(),
        customer_id: w.customer_id.to_string(),
        kind: w.kind().as_str().to_string(),
        approved_by: by.to_string(),
    })
}

/// work_order.completed (DSP-5, DSP-6): billing invoices `amount_due` when
/// it is not zero and records what was collected on site against it.
pub(crate) fn completed(w: &WorkOrder, c: &Completion, by: &str) -> Payload {
    Payload::WorkOrderCompleted(pb::WorkOrderCompleted {
        work_order_id: w.id.to_string(),
        customer_id: w.customer_id.to_string(),
        kind: w.kind().as_str().to_string(),
        technician_id: w.technician_id.map(|t| t.to_string()).unwrap_or_default(),
        device_id: c.device_id.map(|d| d.to_string()).unwrap_or_default(),
        in_warranty: c.in_warranty,
        parts: c
            .parts
            .iter()
            .map(|l| pb::PartUsed {
                part_code: l.code.clone(),
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: Some(money_out(l.unit_price)),
                vat_rate_bp: l.vat_rate_bp,
            })
            .collect(),
        amount_due: Some(money_out(c.amount_due)),
        collected_on_site: Some(money_out(c.collected)),
        completed_by: by.to_string(),
        labour_minutes: c.labour_minutes,
        labour_charge: c.labour_charge.map(money_out),
    })
}

/// work_order.cancelled (DSP-2); `saga` is the termination that cancelled
/// it (CUS-11), if any.
pub(crate) fn cancelled(w: &WorkOrder, saga: Option<Uuid>) -> Payload {
    Payload::WorkOrderCancelled(pb::WorkOrderCancelled {
        work_order_id: w.id.to_string(),
        customer_id: w.customer_id.to_string(),
        reason: w.cancel_reason.clone(),
        saga_id: saga.map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// meter.read (DSP-7): an accepted read reading, for billing's usage
/// charges (X-2, BIL-3); a missed reading has nothing to bill and no event.
/// The register change lets billing see why a register went down without
/// ever computing negative usage.
pub(crate) fn meter_read(
    reading_id: Uuid,
    meter: &Meter,
    period: &str,
    read_at: DateTime<Utc>,
    outcome: &Outcome,
    a: &Accepted,
) -> Option<Payload> {
    let Outcome::Read { cumulative_volume, change, .. } = outcome else { return None };
    let (meter_replaced, old_meter_final_litres, rolled_over, meter_max_litres) = match *change {
        RegisterChange::None => (false, 0, false, 0),
        RegisterChange::MeterReplaced { old_final } => (true, old_final, false, 0),
        RegisterChange::RolledOver { max } => (false, 0, true, max),
    };
    Some(Payload::MeterRead(pb::MeterRead {
        reading_id: reading_id.to_string(),
        meter_id: meter.id.to_string(),
        meter_number: meter.number.clone(),
        customer_id: meter.customer_id.to_string(),
        period: period.to_string(),
        read_at: Some(proto_time::to_proto(read_at)),
        reading_litres: *cumulative_volume,
        // The first reading of a meter has nothing to measure against.
        consumption_litres: a.consumption.unwrap_or(0),
        meter_replaced,
        old_meter_final_litres,
        rolled_over,
        meter_max_litres,
        anomaly: a.anomaly.map(|x| x.as_str().to_string()).unwrap_or_default(),
    }))
}

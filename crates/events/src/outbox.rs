//! Writing events: each goes into the producing service's `<schema>.outbox`
//! on the connection of the change it reports, so both commit or neither
//! does. A statement trigger NOTIFYs `<schema>_outbox` on commit, which wakes
//! the feed.

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::pb::{self, event::Payload};

/// The version of every payload schema today (`Event.schema_version`).
pub const SCHEMA_VERSION: u32 = 1;

/// The event type naming `payload`, e.g. `customer.registered`.
pub fn type_of(payload: &Payload) -> &'static str {
    match payload {
        Payload::CustomerRegistered(_) => "customer.registered",
        Payload::CustomerUpdated(_) => "customer.updated",
        Payload::CustomerTierChanged(_) => "customer.tier_changed",
        Payload::CustomerStageChanged(_) => "customer.stage_changed",
        Payload::CustomersMerged(_) => "customer.merged",
        Payload::TerminationRequested(_) => "customer.termination_requested",
        Payload::TerminationApproved(_) => "customer.termination_approved",
        Payload::TerminationStarted(_) => "customer.termination_started",
        Payload::CustomerTerminated(_) => "customer.terminated",
        Payload::ComplaintFiled(_) => "complaint.filed",
        Payload::ComplaintAccepted(_) => "complaint.accepted",
        Payload::ComplaintResolved(_) => "complaint.resolved",
        Payload::ComplaintClosed(_) => "complaint.closed",
        Payload::CompensationAgreed(_) => "complaint.compensation_agreed",
        Payload::ComplaintReportAmended(_) => "complaint.report_amended",
        Payload::WorkOrderApproved(_) => "work_order.approved",
        Payload::WorkOrderCompleted(_) => "work_order.completed",
        Payload::WorkOrderCancelled(_) => "work_order.cancelled",
        Payload::MeterRead(_) => "meter.read",
        Payload::InvoiceIssued(_) => "invoice.issued",
        Payload::InvoicePaymentChanged(_) => "invoice.payment_changed",
        Payload::CatalogueItemChanged(_) => "catalogue_item.changed",
        Payload::PaymentReceived(_) => "payment.received",
        Payload::CreditNoteIssued(_) => "credit_note.issued",
        Payload::AccountCleared(_) => "account.cleared",
        Payload::AccountClosed(_) => "account.closed",
        Payload::TerminationStepReported(_) => "termination.step_reported",
    }
}

/// Every event type, in catalogue order (docs/events.md).
pub const ALL_TYPES: &[&str] = &[
    "customer.registered",
    "customer.updated",
    "customer.tier_changed",
    "customer.stage_changed",
    "customer.merged",
    "customer.termination_requested",
    "customer.termination_approved",
    "customer.termination_started",
    "customer.terminated",
    "complaint.filed",
    "complaint.accepted",
    "complaint.resolved",
    "complaint.closed",
    "complaint.compensation_agreed",
    "complaint.report_amended",
    "work_order.approved",
    "work_order.completed",
    "work_order.cancelled",
    "meter.read",
    "invoice.issued",
    "invoice.payment_changed",
    "catalogue_item.changed",
    "payment.received",
    "credit_note.issued",
    "account.cleared",
    "account.closed",
    "termination.step_reported",
];

/// The stored body of an event: an `Event` carrying only its payload (the
/// envelope lives in the outbox's columns).
fn body(payload: Payload) -> Vec<u8> {
    pb::Event { payload: Some(payload), ..Default::default() }.encode_to_vec()
}

/// Writes one event into `schema`'s outbox on `conn` (the transaction of the
/// change it reports). Returns the event id.
pub async fn emit(
    conn: &mut PgConnection,
    schema: &'static str,
    aggregate_id: Uuid,
    at: DateTime<Utc>,
    payload: Payload,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    let kind = type_of(&payload);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.outbox (id, event_type, aggregate_id, schema_version, body, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )))
    .bind(id)
    .bind(kind)
    .bind(aggregate_id)
    .bind(SCHEMA_VERSION as i32)
    .bind(body(payload))
    .bind(at)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Writes many events in one statement (bulk work such as meter readings).
pub async fn emit_many(
    conn: &mut PgConnection,
    schema: &'static str,
    at: DateTime<Utc>,
    events: Vec<(Uuid, Payload)>,
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut aggregates = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for (aggregate, payload) in events {
        ids.push(Uuid::now_v7());
        kinds.push(type_of(&payload).to_string());
        aggregates.push(aggregate);
        bodies.push(body(payload));
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.outbox (id, event_type, aggregate_id, schema_version, body, occurred_at) \
         SELECT u.id, u.kind, u.agg, $5, u.body, $6 \
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bytea[]) AS u(id, kind, agg, body)"
    )))
    .bind(&ids)
    .bind(&kinds)
    .bind(&aggregates)
    .bind(&bodies)
    .bind(SCHEMA_VERSION as i32)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The SQL a service's migration runs to make `schema` a producer and a
/// consumer of events; kept here so the four migrations stay identical. (Each
/// service's migration file holds a copy; a unit test compares them.)
pub fn migration_sql(schema: &str) -> String {
    include_str!("events.sql.in").replace("@schema@", schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_catalogued_once() {
        let mut sorted = ALL_TYPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL_TYPES.len());
        let sample = Payload::MeterRead(pb::MeterRead::default());
        assert!(ALL_TYPES.contains(&type_of(&sample)));
    }

    #[test]
    fn bodies_round_trip() {
        let p = Payload::AccountCleared(pb::AccountCleared { account_id: "a".into(), customer_id: "c".into() });
        let decoded = pb::Event::decode(body(p.clone()).as_slice()).map(|e| e.payload);
        assert_eq!(decoded.ok().flatten(), Some(p));
    }
}

//! Persistence of the `complaints` schema. Every function takes the
//! connection or transaction it runs in, so the API composes them into one
//! transaction with the idempotency key. Schema-qualified SQL only.

mod parts;
mod query;
mod terminations;

pub use parts::*;
pub use query::*;
pub use terminations::*;

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::ids::CustomerId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        Category, Channel, Complaint, ComplaintId, CustomerTier, EscalationLevel, References, RejectionReason,
        ServiceLevel, State, Urgency,
    },
};

/// The idempotency table of this schema.
pub const IDEMPOTENCY_TABLE: &str = "complaints.idempotency_keys";

macro_rules! complaint_columns {
    () => {
        "c.id, c.number, c.year, c.seq, c.customer_id, c.customer_name, c.service_level, c.customer_tier, \
         c.channel, c.category, c.department, c.urgency, c.description, c.work_order_ids, c.invoice_ids, \
         c.report_ids, c.report_received_on, c.state, c.escalation_level, c.rejection_reason, c.rejection_note, \
         c.round, c.reopen_count, c.registered_by, c.registered_at, c.accepted_by, c.accepted_at, c.rejected_by, \
         c.rejected_at, c.closed_at, c.updated_at, c.version"
    };
}
pub(crate) use complaint_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct ComplaintRow {
    id: Uuid,
    number: String,
    year: i32,
    seq: i32,
    customer_id: Uuid,
    customer_name: String,
    service_level: String,
    customer_tier: String,
    channel: String,
    category: String,
    department: String,
    urgency: String,
    description: String,
    work_order_ids: Vec<String>,
    invoice_ids: Vec<String>,
    report_ids: Vec<String>,
    report_received_on: Option<NaiveDate>,
    state: String,
    escalation_level: String,
    rejection_reason: Option<String>,
    rejection_note: String,
    round: i32,
    reopen_count: i32,
    registered_by: String,
    registered_at: DateTime<Utc>,
    accepted_by: Option<String>,
    accepted_at: Option<DateTime<Utc>>,
    rejected_by: Option<String>,
    rejected_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    version: i64,
}

pub(crate) fn parse<T>(what: &str, v: &str, f: fn(&str) -> Option<T>) -> Result<T> {
    f(v).ok_or_else(|| Error::Corrupt(format!("unknown {what} {v:?}")))
}

impl ComplaintRow {
    pub(crate) fn into_model(self) -> Result<Complaint> {
        Ok(Complaint {
            id: ComplaintId(self.id),
            number: self.number,
            year: self.year,
            seq: self.seq,
            customer_id: CustomerId(self.customer_id),
            customer_name: self.customer_name,
            service_level: parse("service level", &self.service_level, ServiceLevel::from_db)?,
            customer_tier: parse("customer tier", &self.customer_tier, CustomerTier::from_db)?,
            channel: parse("channel", &self.channel, Channel::from_db)?,
            category: parse("category", &self.category, Category::from_db)?,
            department: self.department,
            urgency: parse("urgency", &self.urgency, Urgency::from_db)?,
            description: self.description,
            references: References {
                work_order_ids: self.work_order_ids,
                invoice_ids: self.invoice_ids,
                report_ids: self.report_ids,
            },
            report_received_on: self.report_received_on,
            state: parse("state", &self.state, State::from_db)?,
            escalation_level: parse("escalation level", &self.escalation_level, EscalationLevel::from_db)?,
            rejection_reason: self
                .rejection_reason
                .as_deref()
                .map(|r| parse("rejection reason", r, RejectionReason::from_db))
                .transpose()?,
            rejection_note: self.rejection_note,
            round: self.round,
            reopen_count: self.reopen_count,
            registered_by: self.registered_by,
            registered_at: self.registered_at,
            accepted_by: self.accepted_by,
            accepted_at: self.accepted_at,
            rejected_by: self.rejected_by,
            rejected_at: self.rejected_at,
            closed_at: self.closed_at,
            updated_at: self.updated_at,
            version: self.version,
            rounds: vec![],
            escalations: vec![],
            compensation: None,
            history: vec![],
        })
    }
}

/// CMP-1: the next number of `year`, taken in the caller's transaction so a
/// rolled-back intake gives it back (gap-free). Concurrent intakes queue on
/// the year's row.
#[tracing::instrument(skip(conn))]
pub async fn next_number(conn: &mut PgConnection, year: i32) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "INSERT INTO complaints.number_counters (year, last) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last = complaints.number_counters.last + 1 RETURNING last",
    )
    .bind(year)
    .fetch_one(conn)
    .await?)
}

#[tracing::instrument(skip_all, fields(complaint = %c.id))]
pub async fn insert_complaint(conn: &mut PgConnection, c: &Complaint) -> Result<()> {
    sqlx::query(
        "INSERT INTO complaints.complaints (id, number, year, seq, customer_id, customer_name, service_level, \
         customer_tier, channel, category, department, urgency, description, work_order_ids, invoice_ids, \
         report_ids, report_received_on, state, escalation_level, rejection_reason, rejection_note, round, \
         reopen_count, registered_by, registered_at, rejected_by, rejected_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
         $22, $23, $24, $25, $26, $27, $28, $29)",
    )
    .bind(c.id.0)
    .bind(&c.number)
    .bind(c.year)
    .bind(c.seq)
    .bind(c.customer_id.0)
    .bind(&c.customer_name)
    .bind(c.service_level.as_str())
    .bind(c.customer_tier.as_str())
    .bind(c.channel.as_str())
    .bind(c.category.as_str())
    .bind(&c.department)
    .bind(c.urgency.as_str())
    .bind(&c.description)
    .bind(&c.references.work_order_ids)
    .bind(&c.references.invoice_ids)
    .bind(&c.references.report_ids)
    .bind(c.report_received_on)
    .bind(c.state.as_str())
    .bind(c.escalation_level.as_str())
    .bind(c.rejection_reason.map(|r| r.as_str()))
    .bind(&c.rejection_note)
    .bind(c.round)
    .bind(c.reopen_count)
    .bind(&c.registered_by)
    .bind(c.registered_at)
    .bind(&c.rejected_by)
    .bind(c.rejected_at)
    .bind(c.updated_at)
    .bind(c.version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves what a step may change and bumps the version (the etag).
#[tracing::instrument(skip_all, fields(complaint = %c.id))]
pub async fn save_complaint(conn: &mut PgConnection, c: &Complaint, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE complaints.complaints SET state = $2, escalation_level = $3, rejection_reason = $4, \
         rejection_note = $5, round = $6, reopen_count = $7, accepted_by = $8, accepted_at = $9, rejected_by = $10, \
         rejected_at = $11, closed_at = $12, updated_at = $13, version = version + 1 WHERE id = $1",
    )
    .bind(c.id.0)
    .bind(c.state.as_str())
    .bind(c.escalation_level.as_str())
    .bind(c.rejection_reason.map(|r| r.as_str()))
    .bind(&c.rejection_note)
    .bind(c.round)
    .bind(c.reopen_count)
    .bind(&c.accepted_by)
    .bind(c.accepted_at)
    .bind(&c.rejected_by)
    .bind(c.rejected_at)
    .bind(c.closed_at)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One complaint with its rounds, escalations, compensation and history;
/// `lock` takes its row lock for a change.
#[tracing::instrument(skip(conn))]
/// The id of the complaint numbered `number` (CMP-2026-000123), if any.
pub async fn id_by_number(conn: &mut PgConnection, number: &str) -> Result<Option<ComplaintId>> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM complaints.complaints WHERE number = $1")
        .bind(number)
        .fetch_optional(conn)
        .await?;
    Ok(id.map(ComplaintId))
}

pub async fn load(conn: &mut PgConnection, id: ComplaintId, lock: bool) -> Result<Option<Complaint>> {
    let sql = if lock {
        concat!("SELECT ", complaint_columns!(), " FROM complaints.complaints c WHERE c.id = $1 FOR UPDATE")
    } else {
        concat!("SELECT ", complaint_columns!(), " FROM complaints.complaints c WHERE c.id = $1")
    };
    let Some(row) = sqlx::query_as::<_, ComplaintRow>(sql).bind(id.0).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut c = row.into_model()?;
    c.rounds = load_rounds(conn, id).await?;
    c.escalations = load_escalations(conn, id).await?;
    c.compensation = load_compensation(conn, id).await?;
    c.history = load_history(conn, id).await?;
    Ok(Some(c))
}

/// Loads for a change: NOT_FOUND if absent, ABORTED on a stale etag.
pub async fn load_for_change(conn: &mut PgConnection, id: ComplaintId, etag: Option<&str>) -> Result<Complaint> {
    let c = load(conn, id, true).await?.ok_or_else(|| Error::NotFound { resource: "complaint", id: id.to_string() })?;
    if let Some(want) = etag
        && want != c.etag()
    {
        return Err(Error::StaleEtag { current: c.etag() });
    }
    Ok(c)
}

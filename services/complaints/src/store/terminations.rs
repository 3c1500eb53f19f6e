//! Pending terminations (CUS-11): the customers whose termination waits on
//! their open complaints, and the open complaints themselves.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{error::Result, model::State};

/// A termination as the re-check sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingTermination {
    pub saga_id: Uuid,
    pub customer_id: Uuid,
    pub started_at: DateTime<Utc>,
    /// The held reason last reported; empty before any.
    pub held_reason: String,
    pub done_at: Option<DateTime<Utc>>,
}

/// Records the termination (once per saga) and returns it locked.
#[tracing::instrument(skip(conn))]
pub async fn open_termination(
    conn: &mut PgConnection,
    saga: Uuid,
    customer: CustomerId,
    at: DateTime<Utc>,
) -> Result<PendingTermination> {
    sqlx::query(
        "INSERT INTO complaints.pending_terminations (saga_id, customer_id, started_at) VALUES ($1, $2, $3) \
         ON CONFLICT (saga_id) DO NOTHING",
    )
    .bind(saga)
    .bind(customer.0)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_as(
        "SELECT saga_id, customer_id, started_at, held_reason, done_at FROM complaints.pending_terminations \
         WHERE saga_id = $1 FOR UPDATE",
    )
    .bind(saga)
    .fetch_one(conn)
    .await?)
}

/// Up to `limit` pending terminations after `after` (started at, saga) that
/// no one else holds, locked, oldest first (replicas skip each other's).
#[tracing::instrument(skip(conn))]
pub async fn claim_pending_terminations(
    conn: &mut PgConnection,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<PendingTermination>> {
    Ok(sqlx::query_as(
        "SELECT saga_id, customer_id, started_at, held_reason, done_at FROM complaints.pending_terminations \
         WHERE done_at IS NULL AND ($1::timestamptz IS NULL OR (started_at, saga_id) > ($1, $2)) \
         ORDER BY started_at, saga_id LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records what was reported: held with `reason`, or done (`reason` None).
#[tracing::instrument(skip(conn))]
/// Takes back the "none open" answer of the customer's terminations.
pub async fn reopen_terminations(conn: &mut PgConnection, customer: CustomerId) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE complaints.pending_terminations SET done_at = NULL, held_reason = '' \
         WHERE customer_id = $1 AND done_at IS NOT NULL",
    )
    .bind(customer.0)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn mark_reported(conn: &mut PgConnection, saga: Uuid, held: Option<&str>, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE complaints.pending_terminations SET held_reason = COALESCE($2, held_reason), reported_at = $3, \
         done_at = CASE WHEN $2::text IS NULL THEN $3 ELSE done_at END WHERE saga_id = $1",
    )
    .bind(saga)
    .bind(held)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The numbers of the customer's open complaints (`State::is_open`), in
/// numbering order.
#[tracing::instrument(skip(conn))]
pub async fn open_complaint_numbers(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<String>> {
    let open: Vec<&str> = State::ALL.iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect();
    Ok(sqlx::query_scalar(
        "SELECT number FROM complaints.complaints WHERE customer_id = $1 AND state = ANY($2) ORDER BY year, seq",
    )
    .bind(customer.0)
    .bind(&open)
    .fetch_all(conn)
    .await?)
}

//! Customers whose termination has started (CUS-11): no new work is taken
//! for them. Creating an order and recording a termination take the same
//! per-customer advisory lock (shared and exclusive), so an order created
//! concurrently is either seen and cancelled by the termination or refused.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    model::{State, WorkOrderId},
};

/// Records the termination under the exclusive lock (kept until commit).
#[tracing::instrument(skip(conn))]
pub async fn record_termination(
    conn: &mut PgConnection,
    customer: CustomerId,
    saga: Uuid,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('dispatch.customer:' || $1::text, 0))")
        .bind(customer.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO dispatch.customer_terminations (customer_id, saga_id, started_at) VALUES ($1, $2, $3) \
         ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer.0)
    .bind(saga)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the customer's termination has started, under the shared lock
/// (kept until commit) so a termination cannot slip in before the order is.
#[tracing::instrument(skip(conn))]
pub async fn is_terminating(conn: &mut PgConnection, customer: CustomerId) -> Result<bool> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended('dispatch.customer:' || $1::text, 0))")
        .bind(customer.0)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM dispatch.customer_terminations WHERE customer_id = $1)")
        .bind(customer.0)
        .fetch_one(conn)
        .await?)
}

/// The customer's open orders (`State::is_open`), locked in id order.
#[tracing::instrument(skip(conn))]
/// The customer's finished work with an amount due: billing must have
/// invoiced each of these before it closes the account (CUS-11).
pub async fn billable_order_ids(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM dispatch.work_orders WHERE customer_id = $1 AND state IN ('completed', 'closed') \
         AND amount_due_minor > 0 ORDER BY id",
    )
    .bind(customer.0)
    .fetch_all(conn)
    .await?)
}

pub async fn open_order_ids_for_update(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<WorkOrderId>> {
    let open: Vec<&str> = State::ALL.iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect();
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM dispatch.work_orders WHERE customer_id = $1 AND state = ANY($2) ORDER BY id FOR UPDATE",
    )
    .bind(customer.0)
    .bind(&open)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(WorkOrderId).collect())
}

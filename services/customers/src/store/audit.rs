//! CUS-13 audit trail: who did what when. Changes are recorded by triggers
//! (migration 3) from the actor the API sets on each transaction; reads of
//! contact details are recorded here.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

/// Names the caller, the RPC and its request id for the audit triggers of
/// this transaction (transaction-local settings).
pub async fn set_actor(conn: &mut PgConnection, actor: &str, action: &str, request_id: Option<&str>) -> Result<()> {
    sqlx::query(
        "SELECT set_config('crm.actor', $1, true), set_config('crm.action', $2, true), \
         set_config('crm.request_id', $3, true)",
    )
    .bind(actor)
    .bind(action)
    .bind(request_id.unwrap_or(""))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that `actor` read the contact details of `customers`.
pub async fn record_reads(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    customers: &[Uuid],
    request_id: Option<&str>,
) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id) \
         SELECT $1, $2, 'read', 'customers', c, c::text, $4 FROM unnest($3::uuid[]) AS c",
    )
    .bind(actor)
    .bind(action)
    .bind(customers)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub operation: String,
    pub table_name: String,
    pub row_id: Option<String>,
    pub changed: Option<Vec<String>>,
    pub request_id: Option<String>,
}

/// The trail of a customer (and of the records merged into it), newest first,
/// before event `before` when paging.
pub async fn audit_events(
    conn: &mut PgConnection,
    customer: CustomerId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    Ok(sqlx::query_as(
        "SELECT id, occurred_at, actor, action, operation, table_name, row_id, changed, request_id \
         FROM customers.audit_log \
         WHERE (customer_id = $1 OR customer_id IN (SELECT id FROM customers.customers WHERE merged_into = $1)) \
           AND ($2::bigint IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(customer.0)
    .bind(before)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?)
}

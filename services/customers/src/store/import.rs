//! CUS-14 imports: one row per import (its request id), holding how far it
//! got and its summary so far. Each batch locks the row, so two sends of one
//! import never write the same rows, and commits its progress with its rows.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

#[derive(Debug, sqlx::FromRow)]
pub struct ImportState {
    pub principal: String,
    pub options: Vec<u8>,
    pub rows_done: i64,
    pub summary: Vec<u8>,
    pub finished: bool,
}

/// The import's state, if an earlier send registered it.
pub async fn find_import(conn: &mut PgConnection, request_id: Uuid) -> Result<Option<ImportState>> {
    Ok(sqlx::query_as(
        "SELECT principal, options, rows_done, summary, finished FROM customers.imports WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(conn)
    .await?)
}

/// Registers the import if it is new, inside the transaction of its first
/// batch (so a send refused before any row is written leaves nothing), and
/// returns its state under its row lock.
pub async fn claim_import(
    conn: &mut PgConnection,
    request_id: Uuid,
    principal: &str,
    options: &[u8],
    empty_summary: &[u8],
) -> Result<ImportState> {
    sqlx::query(
        "INSERT INTO customers.imports (request_id, principal, options, summary) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(principal)
    .bind(options)
    .bind(empty_summary)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_as(
        "SELECT principal, options, rows_done, summary, finished FROM customers.imports WHERE request_id = $1 \
         FOR UPDATE",
    )
    .bind(request_id)
    .fetch_one(conn)
    .await?)
}

pub async fn save_import(
    conn: &mut PgConnection,
    request_id: Uuid,
    rows_done: i64,
    summary: &[u8],
    finished: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE customers.imports SET rows_done = greatest(rows_done, $2), summary = $3, finished = finished OR $4, \
         update_time = now() WHERE request_id = $1",
    )
    .bind(request_id)
    .bind(rows_done)
    .bind(summary)
    .bind(finished)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which of `ids` exist (referrals of imported rows may point at any
/// customer).
pub async fn existing_customers(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT id FROM customers.customers WHERE id = ANY($1)").bind(ids).fetch_all(conn).await?)
}

/// Identities of `points` (phones, emails) and `registration_numbers` that
/// registered customers hold: (value, kind, customer id, its row if it came
/// from the import `import_id`).
pub async fn identities_taken(
    conn: &mut PgConnection,
    points: &[String],
    registration_numbers: &[String],
    import_id: Uuid,
) -> Result<Vec<(String, String, Uuid, Option<i64>)>> {
    if points.is_empty() && registration_numbers.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT p.value, p.kind, c.id, CASE WHEN c.import_id = $3 THEN c.import_row END FROM customers.contact_points p \
         JOIN customers.customers c ON c.id = p.customer_id WHERE p.value = ANY($1) AND c.merged_into IS NULL \
         UNION ALL \
         SELECT c.registration_number, 'registration_number', c.id, CASE WHEN c.import_id = $3 THEN c.import_row END \
         FROM customers.customers c WHERE c.registration_number = ANY($2)",
    )
    .bind(points)
    .bind(registration_numbers)
    .bind(import_id)
    .fetch_all(conn)
    .await?)
}

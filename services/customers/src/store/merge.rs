//! CUS-2 merging: everything that hangs off the merged record moves to the
//! survivor in one transaction; the merged row stays (history, old ids) and
//! points at its survivor; a `customer.merged` event goes to the outbox
//! (`crate::usecases::publish::emit`).

use crm_domain::ids::CustomerId;
use sqlx::PgConnection;

use crate::error::Result;

/// Tables whose rows belong to a customer and move with a merge.
const MOVED: [&str; 7] = ["contacts", "addresses", "interactions", "follow_ups", "visits", "surveys", "account_plans"];

/// Years in which both customers have an account plan (one plan per year).
pub async fn conflicting_plan_years(conn: &mut PgConnection, a: CustomerId, b: CustomerId) -> Result<Vec<i32>> {
    Ok(sqlx::query_scalar(
        "SELECT p.year FROM customers.account_plans p JOIN customers.account_plans q ON q.year = p.year \
         WHERE p.customer_id = $1 AND q.customer_id = $2 ORDER BY p.year",
    )
    .bind(a.0)
    .bind(b.0)
    .fetch_all(conn)
    .await?)
}

pub async fn move_children(conn: &mut PgConnection, from: CustomerId, to: CustomerId) -> Result<()> {
    for table in MOVED {
        // Table names are the constants above.
        let sql = format!("UPDATE customers.{table} SET customer_id = $2 WHERE customer_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from.0).bind(to.0).execute(&mut *conn).await?;
    }
    // Ownership claims move too, except a pending one whose claimant has
    // one pending on the survivor already (one open claim per claimant):
    // it stays on the merged id, which still resolves to the survivor.
    sqlx::query(
        "UPDATE customers.ownership_claims k SET customer_id = $2 WHERE k.customer_id = $1 AND NOT ( \
           k.state = 'pending' AND EXISTS (SELECT 1 FROM customers.ownership_claims o \
             WHERE o.customer_id = $2 AND o.claimant_id = k.claimant_id AND o.state = 'pending'))",
    )
    .bind(from.0)
    .bind(to.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Points the merged record, and every record merged into it earlier, at the
/// survivor; frees its registration number for the survivor.
pub async fn mark_merged(conn: &mut PgConnection, merged: CustomerId, survivor: CustomerId) -> Result<()> {
    sqlx::query(
        "UPDATE customers.customers SET merged_into = $2, registration_number = NULL, updated_at = now(), \
         version = version + 1 WHERE id = $1 OR merged_into = $1",
    )
    .bind(merged.0)
    .bind(survivor.0)
    .execute(conn)
    .await?;
    Ok(())
}

//! The read model of GetCustomer: each customer row carries the customer as
//! the API returns it (`doc`, encoded `crm.customers.v1.Customer` with its
//! contacts and addresses) and the `version` it was built from. A read is
//! one primary-key lookup; a document older than its row is never served
//! (the caller rebuilds it from the tables and stores it again).

use crm_domain::ids::CustomerId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

#[derive(Debug, sqlx::FromRow)]
pub struct DocRow {
    pub id: Uuid,
    /// The stored document, if it was built from the row's current version.
    pub doc: Option<Vec<u8>>,
    pub version: i64,
    pub merged_into: Option<Uuid>,
    pub branch: String,
    pub owner_id: String,
}

/// The row of `id` as the read model needs it (no scope applied).
pub async fn read_doc(conn: &mut PgConnection, id: CustomerId) -> Result<Option<DocRow>> {
    Ok(sqlx::query_as(
        "SELECT id, CASE WHEN doc_version = version THEN doc END AS doc, version, merged_into, branch, owner_id \
         FROM customers.customers WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(conn)
    .await?)
}

/// Stores the document of `id` built from `version`, unless the row has
/// changed since.
pub async fn write_doc(conn: &mut PgConnection, id: CustomerId, version: i64, doc: &[u8]) -> Result<()> {
    sqlx::query("UPDATE customers.customers SET doc = $2, doc_version = $3 WHERE id = $1 AND version = $3")
        .bind(id.0)
        .bind(doc)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// The rows of `ids` as the read model needs them, in no particular order.
pub async fn read_docs(conn: &mut PgConnection, ids: &[CustomerId]) -> Result<Vec<DocRow>> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
    Ok(sqlx::query_as(
        "SELECT id, CASE WHEN doc_version = version THEN doc END AS doc, version, merged_into, branch, owner_id \
         FROM customers.customers WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?)
}

//! CUS-2 merges in the services that keep customer ids (complaints,
//! dispatch, billing). Applying `customer.merged` records the merged id as
//! an alias of its survivor ([`record_merge`]) in the transaction that
//! re-points the service's own rows; every place that takes a customer id
//! from outside (a request, another service's event) resolves it first
//! ([`resolve`]).
//!
//! The two take the same advisory lock on the merged id, exclusive and
//! shared: a row written with the old id by a transaction that started
//! before the merge commits before the merge re-points (and is re-pointed),
//! or waits and then sees the alias. No row can keep a merged-away id.

use sqlx::PgConnection;
use uuid::Uuid;

fn lock_key(id: Uuid) -> String {
    format!("customer-alias:{id}")
}

/// Records `merged` → `survivor` (and re-points older aliases of `merged`,
/// so a chain A → B → C resolves A to C), under the exclusive lock on
/// `merged`. The caller re-points its rows in the same transaction.
pub async fn record_merge(conn: &mut PgConnection, schema: &str, merged: Uuid, survivor: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(lock_key(merged))
        .execute(&mut *conn)
        .await?;
    // The schema is one of the services' own names, never input.
    let insert = format!(
        "INSERT INTO {schema}.customer_aliases (merged_id, survivor_id) VALUES ($1, $2) \
         ON CONFLICT (merged_id) DO UPDATE SET survivor_id = EXCLUDED.survivor_id"
    );
    sqlx::query(sqlx::AssertSqlSafe(insert)).bind(merged).bind(survivor).execute(&mut *conn).await?;
    let chain = format!("UPDATE {schema}.customer_aliases SET survivor_id = $2 WHERE survivor_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(chain)).bind(merged).bind(survivor).execute(&mut *conn).await?;
    Ok(())
}

/// The id to store for customer `id`: its survivor when it was merged away,
/// else itself. Holds the shared lock on `id` until the transaction ends.
pub async fn resolve(conn: &mut PgConnection, schema: &str, id: Uuid) -> sqlx::Result<Uuid> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))")
        .bind(lock_key(id))
        .execute(&mut *conn)
        .await?;
    let sql = format!("SELECT survivor_id FROM {schema}.customer_aliases WHERE merged_id = $1");
    let survivor: Option<Uuid> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    Ok(survivor.unwrap_or(id))
}

/// Every id that resolves to `survivor` (itself first), for reads that
/// must also find rows written under a merged-away id.
pub async fn ids_of(conn: &mut PgConnection, schema: &str, survivor: Uuid) -> sqlx::Result<Vec<Uuid>> {
    let sql = format!("SELECT merged_id FROM {schema}.customer_aliases WHERE survivor_id = $1 ORDER BY merged_id");
    let mut ids = vec![survivor];
    ids.extend(sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql)).bind(survivor).fetch_all(conn).await?);
    Ok(ids)
}

/// The merged-away customer and its survivor of a customer.merged event;
/// anything else, or a malformed id, is poison.
pub fn merged_ids(event: &crate::pb::Event) -> Result<(Uuid, Uuid), crate::ApplyError> {
    use crate::consumer::read;
    let Some(crate::Payload::CustomersMerged(m)) = &event.payload else { return Err(read::wrong(event)) };
    Ok((read::id("merged_id", &m.merged_id)?, read::id("survivor_id", &m.survivor_id)?))
}

/// Applies customer.merged in a service whose rows only need re-pointing:
/// records the alias, then moves every row of `tables` that names the
/// merged-away customer to the survivor.
pub struct Repoint {
    /// The service's schema, also its name in the alias table.
    pub schema: &'static str,
    /// Each table with what else its moved rows get (a new version, so
    /// their etags change; an update time), as SQL `SET` items. Constants
    /// of the service, never input.
    pub tables: &'static [(&'static str, &'static str)],
}

impl crate::Handler for Repoint {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a crate::pb::Event) -> crate::ApplyFuture<'a> {
        Box::pin(async move {
            let (merged, survivor) = merged_ids(event)?;
            record_merge(conn, self.schema, merged, survivor).await?;
            for (table, also) in self.tables {
                let sql = format!("UPDATE {}.{table} SET customer_id = $2{also} WHERE customer_id = $1", self.schema);
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(merged).bind(survivor).execute(&mut *conn).await?;
            }
            Ok(())
        })
    }
}

/// The SQL a service's migration runs to keep aliases (each service's
/// migration holds a copy; a unit test compares them).
pub fn migration_sql(schema: &str) -> String {
    include_str!("aliases.sql.in").replace("@schema@", schema)
}

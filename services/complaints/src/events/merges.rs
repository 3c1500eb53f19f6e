//! customer.merged (CUS-2): the merged-away customer's complaints, and its
//! terminations waiting on them, belong to the survivor from now on.

use crm_events::{ApplyFuture, Handler, aliases, pb};
use sqlx::PgConnection;
use uuid::Uuid;

pub(super) struct CustomersMerged;

impl Handler for CustomersMerged {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let (merged, survivor) = aliases::merged_ids(event)?;
            repoint(conn, merged, survivor).await.map_err(crm_events::ApplyError::from)
        })
    }
}

/// Re-points every complaint of `merged` (a new version: its etag changes).
async fn repoint(conn: &mut PgConnection, merged: Uuid, survivor: Uuid) -> sqlx::Result<()> {
    aliases::record_merge(conn, "complaints", merged, survivor).await?;
    sqlx::query(
        "UPDATE complaints.complaints SET customer_id = $2, version = version + 1, updated_at = now() \
         WHERE customer_id = $1",
    )
    .bind(merged)
    .bind(survivor)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE complaints.pending_terminations SET customer_id = $2 WHERE customer_id = $1")
        .bind(merged)
        .bind(survivor)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

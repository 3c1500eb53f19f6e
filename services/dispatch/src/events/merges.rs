//! customer.merged (CUS-2): the merged-away customer's work orders, devices
//! and meters belong to the survivor from now on.

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

/// Tables whose rows name a customer and move with a merge, with whether
/// they are versioned (a moved row then gets a new version and etag).
const MOVED: [(&str, bool); 3] = [("work_orders", true), ("devices", true), ("meters", false)];

async fn repoint(conn: &mut PgConnection, merged: Uuid, survivor: Uuid) -> sqlx::Result<()> {
    aliases::record_merge(conn, "dispatch", merged, survivor).await?;
    for (table, versioned) in MOVED {
        // Table names are the constants above.
        let bump = if versioned { ", version = version + 1" } else { "" };
        let sql = format!("UPDATE dispatch.{table} SET customer_id = $2{bump} WHERE customer_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(merged).bind(survivor).execute(&mut *conn).await?;
    }
    // A termination started for the merged-away record stays with it: the
    // survivor is a customer being served.
    Ok(())
}

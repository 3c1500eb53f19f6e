//! The one price catalogue (BIL-2, DSP-5): billing owns it, and every change
//! of an item is published as `catalogue_item.changed` in the transaction of
//! the change, so dispatch prices completed work from the same prices and
//! VAT rates. Items set before the catalogue was published are announced
//! once when the service starts.

use crm_events::{Payload, pb as ev};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    error::Result,
    store::{self, CatalogueItem},
    usecases::posting::{SOURCE, money},
};

/// The aggregate id of an item's events: stable per code.
pub fn aggregate_id(code: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("crm.billing.catalogue/{code}").as_bytes())
}

/// Writes `item` at `revision` as catalogue_item.changed and records it as
/// announced, on `conn` (the change's transaction).
pub async fn publish(conn: &mut PgConnection, item: &CatalogueItem, revision: i64) -> Result<()> {
    crm_events::emit(
        conn,
        SOURCE,
        aggregate_id(&item.code),
        crm_platform::proto_time::now(),
        Payload::CatalogueItemChanged(ev::CatalogueItemChanged {
            code: item.code.clone(),
            description: item.description.clone(),
            kind: item.kind.as_str().to_string(),
            unit_price: Some(money(item.unit_price_minor, &item.currency)),
            vat_rate_bp: item.vat_rate_bp,
            active: item.active,
            revision,
        }),
    )
    .await?;
    store::mark_item_announced(conn, &item.code, revision).await
}

/// Publishes every item whose latest revision was never published, in
/// batches; several instances starting together skip each other's rows.
/// Returns how many were announced.
pub async fn announce_pending(pool: &PgPool) -> Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let pending = store::lock_unannounced_items(&mut tx, 500).await?;
        if pending.is_empty() {
            return Ok(total);
        }
        for (item, revision) in &pending {
            publish(&mut tx, item, *revision).await?;
        }
        tx.commit().await?;
        total += pending.len();
    }
}

/// Runs `announce_pending` at start-up, retrying while the database is not
/// reachable.
pub async fn announce_at_start(pool: PgPool) {
    let mut wait = std::time::Duration::from_millis(200);
    loop {
        match announce_pending(&pool).await {
            Ok(0) => return,
            Ok(n) => {
                tracing::info!(items = n, "announced catalogue items set before the catalogue was published");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "announcing the catalogue failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

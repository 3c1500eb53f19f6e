//! CUS-8 behaviour: facts reported by billing and complaints, and the value
//! tier recomputed from them when the tier policy is automatic.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use crm_platform::proto_time;
use sqlx::PgConnection;
use uuid::Uuid;

use super::publish::{emit, tier_changed};
use crate::{
    error::Result,
    model::{Stage, access::Scope},
    store,
};

/// CUS-8: one behaviour fact, then the tier recomputed if the policy says so.
pub async fn record_fact(
    conn: &mut PgConnection,
    event_id: Uuid,
    id: CustomerId,
    kind: &str,
    money: &crm_proto::common::v1::Money,
    at: DateTime<Utc>,
) -> Result<()> {
    store::insert_fact(conn, event_id, id, kind, money.amount_minor, &money.currency_code, at).await?;
    recompute_tier(conn, id).await
}

/// Applies the policy's tier when the policy is automatic and the tier
/// differs; a terminated customer keeps its record unchanged.
async fn recompute_tier(conn: &mut PgConnection, id: CustomerId) -> Result<()> {
    let policy = store::tier_policy(conn).await?.policy;
    if !policy.automatic {
        return Ok(());
    }
    let Some(mut c) = store::load(conn, id, &Scope::All, true).await? else { return Ok(()) };
    if c.stage == Stage::Terminated {
        return Ok(());
    }
    let figures = store::behaviour(conn, id, &policy.currency, proto_time::now()).await?.figures;
    let tier = policy.tier(&figures);
    if tier == c.classification.value_tier {
        return Ok(());
    }
    let from = c.classification.value_tier;
    c.classification.value_tier = tier;
    store::save_customer(conn, &c).await?;
    store::record_classification(conn, &c, "system:tiering", "recomputed from behaviour (CUS-8)").await?;
    emit(conn, id.0, tier_changed(id, from, tier, true, "system:tiering")).await
}

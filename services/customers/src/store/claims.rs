//! CUS-2/CUS-3 ownership claims.

use crm_domain::ids::CustomerId;
use sqlx::{PgConnection, QueryBuilder, Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        access::Scope,
        claims::{ClaimState, OwnershipClaim},
    },
};

const CLAIM_COLUMNS: &str = "k.id, k.customer_id, k.claimant_id, k.claimant_branch, k.owner_id, k.reason, k.state, \
     k.filed_at, k.decided_by, k.decided_at, k.decision_reason, k.version";

fn claim_from(row: &PgRow) -> Result<OwnershipClaim> {
    let state: String = row.try_get("state")?;
    Ok(OwnershipClaim {
        id: row.try_get("id")?,
        customer_id: CustomerId(row.try_get("customer_id")?),
        claimant_id: row.try_get("claimant_id")?,
        claimant_branch: row.try_get("claimant_branch")?,
        owner_id: row.try_get("owner_id")?,
        reason: row.try_get("reason")?,
        state: ClaimState::from_db(&state)
            .ok_or_else(|| Error::Corrupt(format!("unknown claim state {state:?} in customers.ownership_claims")))?,
        filed_at: row.try_get("filed_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        decision_reason: row.try_get("decision_reason")?,
        version: row.try_get("version")?,
    })
}

/// Files the claim; false when the claimant already has one pending on the
/// customer (the caller then names it).
pub async fn insert_claim(conn: &mut PgConnection, k: &OwnershipClaim) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO customers.ownership_claims (id, customer_id, claimant_id, claimant_branch, owner_id, reason, \
         state, filed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(k.id)
    .bind(k.customer_id.0)
    .bind(&k.claimant_id)
    .bind(&k.claimant_branch)
    .bind(&k.owner_id)
    .bind(&k.reason)
    .bind(k.state.as_str())
    .bind(k.filed_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The claimant's pending claim on the customer, if any.
pub async fn pending_claim(
    conn: &mut PgConnection,
    customer: CustomerId,
    claimant: &str,
) -> Result<Option<OwnershipClaim>> {
    let sql = format!(
        "SELECT {CLAIM_COLUMNS} FROM customers.ownership_claims k \
         WHERE k.customer_id = $1 AND k.claimant_id = $2 AND k.state = 'pending'"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(customer.0).bind(claimant).fetch_optional(conn).await?;
    row.as_ref().map(claim_from).transpose()
}

pub async fn load_claim(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<OwnershipClaim>> {
    let sql = format!(
        "SELECT {CLAIM_COLUMNS} FROM customers.ownership_claims k WHERE k.id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(claim_from).transpose()
}

/// Saves a decision (the claim's version goes up by one).
pub async fn save_claim(conn: &mut PgConnection, k: &OwnershipClaim) -> Result<()> {
    sqlx::query(
        "UPDATE customers.ownership_claims SET state = $2, decided_by = $3, decided_at = $4, decision_reason = $5, \
         version = version + 1 WHERE id = $1",
    )
    .bind(k.id)
    .bind(k.state.as_str())
    .bind(&k.decided_by)
    .bind(k.decided_at)
    .bind(&k.decision_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whom a list of claims is for: a salesperson sees the claims they filed;
/// a branch's managers the claims on its customers or from it; the rest all.
pub enum ClaimsOf {
    Claimant(String),
    Branch(String),
    All,
}

impl ClaimsOf {
    pub fn of(scope: &Scope) -> ClaimsOf {
        match scope {
            Scope::Own(sub) => ClaimsOf::Claimant(sub.clone()),
            Scope::Branch(b) => ClaimsOf::Branch(b.clone()),
            Scope::All => ClaimsOf::All,
        }
    }
}

/// Claims oldest first, after `after`, at most `limit + 1` (the caller
/// sees whether there is a next page).
pub async fn list_claims(
    conn: &mut PgConnection,
    of: &ClaimsOf,
    customer: Option<CustomerId>,
    state: Option<ClaimState>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OwnershipClaim>> {
    let mut q = QueryBuilder::new(format!(
        "SELECT {CLAIM_COLUMNS} FROM customers.ownership_claims k \
         JOIN customers.customers c ON c.id = k.customer_id WHERE true"
    ));
    match of {
        ClaimsOf::Claimant(sub) => {
            q.push(" AND k.claimant_id = ").push_bind(sub.clone());
        }
        ClaimsOf::Branch(b) => {
            q.push(" AND (c.branch = ").push_bind(b.clone()).push(" OR k.claimant_branch = ").push_bind(b.clone());
            q.push(")");
        }
        ClaimsOf::All => {}
    }
    if let Some(c) = customer {
        q.push(" AND k.customer_id = ").push_bind(c.0);
    }
    if let Some(s) = state {
        q.push(" AND k.state = ").push_bind(s.as_str());
    }
    if let Some(a) = after {
        q.push(" AND k.id > ").push_bind(a);
    }
    q.push(" ORDER BY k.id LIMIT ").push_bind(limit + 1);
    let rows = q.build().fetch_all(conn).await?;
    rows.iter().map(claim_from).collect()
}

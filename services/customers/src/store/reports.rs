//! Read models over customers: ownership history (CUS-3), overdue first
//! contacts (CUS-4), entry timeliness (CUS-5) and owned-customer counts for
//! lead distribution.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::push_scope;
use crate::{error::Result, model::access::Scope};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OwnershipRecord {
    pub owner_id: String,
    pub branch: String,
    pub assigned_by: String,
    pub reason: String,
    pub assigned_at: DateTime<Utc>,
    pub first_contact_override: bool,
}

/// Every owner the customer (and the records merged into it) had, oldest first.
pub async fn ownership_history(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<OwnershipRecord>> {
    Ok(sqlx::query_as(
        "SELECT owner_id, branch, assigned_by, reason, assigned_at, first_contact_override FROM customers.ownership_history \
         WHERE customer_id = $1 OR customer_id IN (SELECT id FROM customers.customers WHERE merged_into = $1) \
         ORDER BY assigned_at, id",
    )
    .bind(customer.0)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OverdueFirstContact {
    pub id: Uuid,
    pub display_name: String,
    pub owner_id: String,
    pub assigned_at: Option<DateTime<Utc>>,
    pub first_contact_due: Option<DateTime<Utc>>,
}

/// Customers whose owner has not made first contact by the deadline (CUS-4),
/// in id order after `after`.
pub async fn overdue_first_contacts(
    conn: &mut PgConnection,
    scope: &Scope,
    owner: Option<&str>,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<OverdueFirstContact>> {
    let mut q = QueryBuilder::new(
        "SELECT c.id, c.display_name, c.owner_id, c.assigned_at, c.first_contact_due FROM customers.customers c \
         WHERE c.merged_into IS NULL AND c.stage <> 'terminated' AND c.first_contact_at IS NULL \
         AND c.first_contact_due < ",
    );
    q.push_bind(now);
    push_scope(&mut q, scope);
    if let Some(o) = owner {
        q.push(" AND c.owner_id = ").push_bind(o.to_string());
    }
    if let Some(a) = after {
        q.push(" AND c.id > ").push_bind(a);
    }
    q.push(" ORDER BY c.id LIMIT ").push_bind(i64::from(limit) + 1);
    Ok(q.build_query_as().fetch_all(conn).await?)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Timeliness {
    pub salesperson: String,
    pub entries: i64,
    pub late: i64,
}

/// Registrations in `[from, to)` per registrar (CUS-5). Salespeople see their
/// own registrations, branch roles their branch's.
pub async fn entry_timeliness(
    conn: &mut PgConnection,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    salesperson: Option<&str>,
) -> Result<Vec<Timeliness>> {
    let mut q = QueryBuilder::new(
        "SELECT c.created_by AS salesperson, count(*) AS entries, count(*) FILTER (WHERE c.entry_late) AS late \
         FROM customers.customers c WHERE c.created_at >= ",
    );
    q.push_bind(from).push(" AND c.created_at < ").push_bind(to);
    match scope {
        Scope::Own(sub) => {
            q.push(" AND c.created_by = ").push_bind(sub.clone());
        }
        other => push_scope(&mut q, other),
    }
    if let Some(s) = salesperson {
        q.push(" AND c.created_by = ").push_bind(s.to_string());
    }
    q.push(" GROUP BY c.created_by ORDER BY c.created_by");
    Ok(q.build_query_as().fetch_all(conn).await?)
}

/// How many live customers each of `owners` owns now.
pub async fn owned_counts(conn: &mut PgConnection, owners: &[String]) -> Result<Vec<i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT owner_id, count(*) FROM customers.customers \
         WHERE owner_id = ANY($1) AND merged_into IS NULL AND stage <> 'terminated' GROUP BY owner_id",
    )
    .bind(owners)
    .fetch_all(conn)
    .await?;
    Ok(owners.iter().map(|o| rows.iter().find(|(x, _)| x == o).map_or(0, |(_, n)| *n)).collect())
}

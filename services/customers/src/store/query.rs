//! Reads over many customers: filtered keyset listing. Search and duplicate
//! detection are in `search.rs`.

use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::{CustomerRow, attach_children, customer_columns, push_scope};
use crate::{
    error::Result,
    model::{Customer, DemandGrade, ServiceLevel, Stage, ValueTier, access::Scope},
};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub owner_id: Option<String>,
    pub branch: Option<String>,
    pub grade: Option<DemandGrade>,
    pub value_tier: Option<ValueTier>,
    pub service_level: Option<ServiceLevel>,
    pub stage: Option<Stage>,
    pub region: Option<String>,
    pub industry: Option<String>,
    pub tag: Option<String>,
}

/// One page in id order (UUIDv7: creation order), after `after`. Returns up
/// to `limit + 1` rows so the caller knows whether another page follows.
#[tracing::instrument(skip(conn))]
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &ListFilter,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Customer>> {
    let mut q = QueryBuilder::new(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers.customers c WHERE c.merged_into IS NULL"
    ));
    push_scope(&mut q, scope);
    if let Some(v) = &f.owner_id {
        q.push(" AND c.owner_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.branch {
        q.push(" AND c.branch = ").push_bind(v.clone());
    }
    if let Some(v) = f.grade {
        q.push(" AND c.grade = ").push_bind(v.as_str());
    }
    if let Some(v) = f.value_tier {
        q.push(" AND c.value_tier = ").push_bind(v.as_str());
    }
    if let Some(v) = f.service_level {
        q.push(" AND c.service_level = ").push_bind(v.as_str());
    }
    if let Some(v) = f.stage {
        q.push(" AND c.stage = ").push_bind(v.as_str());
    }
    if let Some(v) = &f.region {
        q.push(" AND c.region = ").push_bind(v.clone());
    }
    if let Some(v) = &f.industry {
        q.push(" AND c.industry = ").push_bind(v.clone());
    }
    if let Some(v) = &f.tag {
        q.push(" AND c.tags @> ARRAY[").push_bind(v.clone()).push("]::text[]");
    }
    if let Some(a) = after {
        q.push(" AND c.id > ").push_bind(a);
    }
    q.push(" ORDER BY c.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<CustomerRow> = q.build_query_as().fetch_all(&mut *conn).await?;
    let mut customers = rows.into_iter().map(CustomerRow::into_model).collect::<Result<Vec<_>>>()?;
    attach_children(conn, &mut customers).await?;
    Ok(customers)
}

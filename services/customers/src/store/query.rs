//! Reads over many customers: filtered keyset listing, fuzzy search and
//! duplicate detection (CUS-2). All of them honour the caller's scope except
//! duplicate detection, which must see every record to keep one per customer
//! and therefore returns only what identifies the match.

use crm_domain::ids::CustomerId;
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::{CustomerRow, attach_children, customer_columns, push_scope};
use crate::{
    error::Result,
    model::{
        Customer, DUPLICATE_NAME_SIMILARITY, DemandGrade, DuplicateCandidate, DuplicateReason, ServiceLevel, Stage,
        ValueTier, access::Scope, input::DuplicateProbe,
    },
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

/// What a search looks for, prepared by the API from the raw query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchTerms {
    /// normalize_for_match(query).
    pub name: String,
    /// The query as a canonical phone number, when it is one.
    pub phone: Option<String>,
    /// Four or more digits typed: part of a phone number.
    pub digits: Option<String>,
    /// The query as an email address, when it is one.
    pub email: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ScoredRow {
    #[sqlx(flatten)]
    customer: CustomerRow,
    score: f64,
}

/// Ranked fuzzy search (pg_trgm similarity and word similarity on the
/// normalised names, substring matches, phone and email matches including
/// contacts'), best first, ties by id.
#[tracing::instrument(skip(conn))]
pub async fn search(
    conn: &mut PgConnection,
    scope: &Scope,
    t: &SearchTerms,
    limit: u32,
) -> Result<Vec<(Customer, f64)>> {
    // The four search terms are $1..$4; the scope's value, if any, is $5.
    let scope_sql = match scope {
        Scope::All => "",
        Scope::Branch(_) => " AND c.branch = $5",
        Scope::Own(_) => " AND c.owner_id = $5",
    };
    let sql = format!(
        "SELECT * FROM (SELECT {cols}, GREATEST( \
           similarity(c.name_norm, $1), word_similarity($1, c.name_norm), \
           similarity(c.legal_name_norm, $1), word_similarity($1, c.legal_name_norm), \
           CASE WHEN strpos(c.name_norm, $1) > 0 OR strpos(c.legal_name_norm, $1) > 0 THEN 0.8 ELSE 0 END, \
           CASE WHEN c.phone = $2 OR c.email = $4 OR EXISTS (SELECT 1 FROM customers.contacts k \
                WHERE k.customer_id = c.id AND (k.phones @> ARRAY[$2]::text[] OR k.email = $4)) THEN 1.0 ELSE 0 END, \
           CASE WHEN $3 <> '' AND strpos(c.phone, $3) > 0 THEN 0.7 ELSE 0 END)::float8 AS score \
         FROM customers.customers c \
         WHERE c.merged_into IS NULL AND (c.name_norm % $1 OR $1 <% c.name_norm OR c.legal_name_norm % $1 OR $1 <% c.legal_name_norm \
            OR strpos(c.name_norm, $1) > 0 OR strpos(c.legal_name_norm, $1) > 0 \
            OR c.phone = $2 OR c.email = $4 OR ($3 <> '' AND strpos(c.phone, $3) > 0) \
            OR c.id IN (SELECT k.customer_id FROM customers.contacts k \
                        WHERE k.phones @> ARRAY[$2]::text[] OR k.email = $4)){scope_sql}) s \
         ORDER BY score DESC, id LIMIT {limit}",
        cols = customer_columns!(),
    );
    // Only constants and an integer are formatted in; every value is bound.
    let mut query = sqlx::query_as::<_, ScoredRow>(sqlx::AssertSqlSafe(sql))
        .bind(&t.name)
        .bind(t.phone.clone().unwrap_or_default())
        .bind(t.digits.clone().unwrap_or_default())
        .bind(t.email.clone().unwrap_or_default());
    match scope {
        Scope::All => {}
        Scope::Branch(b) => query = query.bind(b.clone()),
        Scope::Own(o) => query = query.bind(o.clone()),
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut scores = Vec::with_capacity(rows.len());
    let mut customers = Vec::with_capacity(rows.len());
    for r in rows {
        scores.push(r.score);
        customers.push(r.customer.into_model()?);
    }
    attach_children(conn, &mut customers).await?;
    Ok(customers.into_iter().zip(scores).collect())
}

#[derive(sqlx::FromRow)]
struct DuplicateRow {
    id: Uuid,
    display_name: String,
    region: String,
    owner_id: String,
    phone_match: bool,
    email_match: bool,
    reg_match: bool,
    same_region: bool,
    name_sim: f64,
}

/// Likely duplicates of a customer about to be registered (CUS-2): same
/// phone or email (the customer's or any contact's), same registration
/// number, or a very similar name in the same region. At most 10, strongest
/// first.
#[tracing::instrument(skip(conn))]
pub async fn find_duplicates(conn: &mut PgConnection, p: &DuplicateProbe) -> Result<Vec<DuplicateCandidate>> {
    let rows: Vec<DuplicateRow> = sqlx::query_as(
        "SELECT c.id, c.display_name, c.region, c.owner_id, \
           coalesce(c.phone = ANY($1), false) OR EXISTS (SELECT 1 FROM customers.contacts k \
              WHERE k.customer_id = c.id AND k.phones && $1) AS phone_match, \
           coalesce(c.email = ANY($2), false) OR EXISTS (SELECT 1 FROM customers.contacts k \
              WHERE k.customer_id = c.id AND coalesce(k.email = ANY($2), false)) AS email_match, \
           coalesce(c.registration_number = $3, false) AS reg_match, \
           (c.region = $6) AS same_region, \
           GREATEST(similarity(c.name_norm, $4), \
                    CASE WHEN $5 <> '' THEN similarity(c.legal_name_norm, $5) ELSE 0 END)::float8 AS name_sim \
         FROM customers.customers c \
         WHERE c.merged_into IS NULL AND (c.phone = ANY($1) OR c.email = ANY($2) OR c.registration_number = $3 \
            OR c.id IN (SELECT k.customer_id FROM customers.contacts k WHERE k.phones && $1 OR k.email = ANY($2)) \
            OR (c.region = $6 AND (c.name_norm % $4 OR ($5 <> '' AND c.legal_name_norm % $5)))) \
         ORDER BY coalesce(c.registration_number = $3, false) DESC, c.id LIMIT 200",
    )
    .bind(&p.phones)
    .bind(&p.emails)
    .bind(&p.registration_number)
    .bind(&p.name_norm)
    .bind(&p.legal_name_norm)
    .bind(&p.region)
    .fetch_all(conn)
    .await?;

    let mut out: Vec<DuplicateCandidate> = rows
        .into_iter()
        .filter_map(|r| {
            let mut reasons = Vec::new();
            if r.reg_match {
                reasons.push(DuplicateReason::RegistrationNumber);
            }
            if r.phone_match {
                reasons.push(DuplicateReason::Phone);
            }
            if r.email_match {
                reasons.push(DuplicateReason::Email);
            }
            if r.same_region && r.name_sim >= DUPLICATE_NAME_SIMILARITY {
                reasons.push(DuplicateReason::SimilarName);
            }
            (!reasons.is_empty()).then_some(DuplicateCandidate {
                customer_id: CustomerId(r.id),
                display_name: r.display_name,
                region: r.region,
                owner_id: r.owner_id,
                reasons,
                name_similarity: r.name_sim,
            })
        })
        .collect();
    // A registration-number match decides the outcome (CUS-3), so it always
    // survives the cut; then the strongest evidence first.
    let key = |d: &DuplicateCandidate| d.reasons.contains(&DuplicateReason::RegistrationNumber);
    out.sort_by(|a, b| {
        key(b)
            .cmp(&key(a))
            .then(b.reasons.len().cmp(&a.reasons.len()))
            .then(b.name_similarity.total_cmp(&a.name_similarity))
    });
    out.truncate(10);
    Ok(out)
}

//! Persistence of the `customers` schema. Every function takes the
//! connection or transaction it runs in, so the API composes them into one
//! transaction with the idempotency key. Schema-qualified SQL only.

mod audit;
mod bulk;
mod children;
mod claims;
mod docs;
mod import;
mod merge;
mod query;
mod relationship;
mod reports;
mod search;
mod workflow;

pub use audit::*;
pub use bulk::*;
pub use children::*;
pub use claims::*;
pub use docs::*;
pub use import::*;
pub use merge::*;
pub use query::*;
pub use relationship::*;
pub use reports::*;
pub use search::*;
pub use workflow::*;

use chrono::{DateTime, Utc};
use crm_domain::ids::{AddressId, ContactId, CustomerId};
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        AddressKind, Classification, Customer, DemandGrade, PartyKind, ServiceLevel, SizeBand, SourceChannel, Stage,
        ValueTier,
        access::Scope,
        search::{NameTerms, SEARCH_VERSION},
    },
};

/// The idempotency table of this schema.
pub const IDEMPOTENCY_TABLE: &str = "customers.idempotency_keys";

macro_rules! customer_columns {
    () => {
        "c.id, c.kind, c.display_name, c.legal_name, c.registration_number, c.industry, c.size_band, c.region, \
         c.summary, c.source_channel, c.tags, c.phone, c.email, c.owner_id, c.branch, c.grade, c.value_tier, \
         c.service_level, c.stage, c.referred_by, c.created_by, c.created_at, c.updated_at, c.version, \
         c.collected_at, c.entry_late, c.assigned_at, c.first_contact_due, c.first_contact_at"
    };
}
pub(crate) use customer_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct CustomerRow {
    id: Uuid,
    kind: String,
    display_name: String,
    legal_name: String,
    registration_number: Option<String>,
    industry: String,
    size_band: Option<String>,
    region: String,
    summary: String,
    source_channel: Option<String>,
    tags: Vec<String>,
    phone: Option<String>,
    email: Option<String>,
    owner_id: String,
    branch: String,
    grade: String,
    value_tier: String,
    service_level: String,
    stage: String,
    referred_by: Option<Uuid>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    collected_at: Option<DateTime<Utc>>,
    entry_late: bool,
    assigned_at: Option<DateTime<Utc>>,
    first_contact_due: Option<DateTime<Utc>>,
    first_contact_at: Option<DateTime<Utc>>,
}

pub(crate) fn parse<T>(what: &str, v: &str, f: fn(&str) -> Option<T>) -> Result<T> {
    f(v).ok_or_else(|| Error::Corrupt(format!("unknown {what} {v:?}")))
}

fn parse_opt<T>(what: &str, v: Option<&str>, f: fn(&str) -> Option<T>) -> Result<Option<T>> {
    v.map(|s| parse(what, s, f)).transpose()
}

impl CustomerRow {
    pub(crate) fn into_model(self) -> Result<Customer> {
        Ok(Customer {
            id: CustomerId(self.id),
            kind: parse("kind", &self.kind, PartyKind::from_db)?,
            display_name: self.display_name,
            legal_name: self.legal_name,
            registration_number: self.registration_number,
            industry: self.industry,
            size_band: parse_opt("size_band", self.size_band.as_deref(), SizeBand::from_db)?,
            region: self.region,
            summary: self.summary,
            source_channel: parse_opt("source_channel", self.source_channel.as_deref(), SourceChannel::from_db)?,
            tags: self.tags,
            phone: self.phone,
            email: self.email,
            owner_id: self.owner_id,
            branch: self.branch,
            classification: Classification {
                grade: parse("grade", &self.grade, DemandGrade::from_db)?,
                value_tier: parse("value_tier", &self.value_tier, ValueTier::from_db)?,
                service_level: parse("service_level", &self.service_level, ServiceLevel::from_db)?,
            },
            stage: parse("stage", &self.stage, Stage::from_db)?,
            referred_by: self.referred_by.map(CustomerId),
            contacts: Vec::new(),
            addresses: Vec::new(),
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            collected_at: self.collected_at,
            entry_late: self.entry_late,
            assigned_at: self.assigned_at,
            first_contact_due: self.first_contact_due,
            first_contact_at: self.first_contact_at,
            merged_from: Vec::new(),
        })
    }
}

/// Appends the visibility predicate of `scope` (CUS-13) to a query whose
/// customers table is aliased `c`.
pub(crate) fn push_scope(q: &mut QueryBuilder<sqlx::Postgres>, scope: &Scope) {
    match scope {
        Scope::All => {}
        Scope::Branch(b) => {
            q.push(" AND c.branch = ").push_bind(b.clone());
        }
        Scope::Own(sub) => {
            q.push(" AND c.owner_id = ").push_bind(sub.clone());
        }
    }
}

/// Reads one customer, with contacts and addresses, if `scope` covers it. A
/// merged id reads its survivor.
/// `lock` takes a row lock for a read-modify-write in the caller's
/// transaction.
#[tracing::instrument(skip(conn))]
pub async fn load(conn: &mut PgConnection, id: CustomerId, scope: &Scope, lock: bool) -> Result<Option<Customer>> {
    // A merged id resolves to its survivor (CUS-2).
    let mut q = QueryBuilder::new(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers.customers c WHERE c.merged_into IS NULL AND c.id = \
         (SELECT coalesce(m.merged_into, m.id) FROM customers.customers m WHERE m.id = "
    ));
    q.push_bind(id.0);
    q.push(")");
    push_scope(&mut q, scope);
    if lock {
        q.push(" FOR UPDATE");
    }
    let Some(row) = q.build_query_as::<CustomerRow>().fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut customers = vec![row.into_model()?];
    attach_children(conn, &mut customers).await?;
    Ok(customers.pop())
}

/// Loads for a change: NOT_FOUND outside the scope, ABORTED on a stale etag.
pub async fn load_for_change(
    conn: &mut PgConnection,
    id: CustomerId,
    scope: &Scope,
    etag: Option<&str>,
) -> Result<Customer> {
    let c = load(conn, id, scope, true)
        .await?
        .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })?;
    if let Some(want) = etag
        && want != c.etag()
    {
        return Err(Error::StaleEtag { current: c.etag() });
    }
    Ok(c)
}

/// Whether a customer exists at all, whoever owns it (referral targets).
pub async fn exists(conn: &mut PgConnection, id: CustomerId) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers.customers WHERE id = $1)")
        .bind(id.0)
        .fetch_one(conn)
        .await?)
}

/// Owner of the customer holding a registration number, if any.
pub async fn registered_as(conn: &mut PgConnection, registration_number: &str) -> Result<Option<(Uuid, String)>> {
    Ok(sqlx::query_as("SELECT id, owner_id FROM customers.customers WHERE registration_number = $1")
        .bind(registration_number)
        .fetch_optional(conn)
        .await?)
}

/// Maps the unique registration number to the CUS-3 outcome.
fn registration_conflict(e: sqlx::Error) -> Error {
    if crm_platform::error::violated_constraint(&e) == Some("customers_registration_number_key") {
        Error::AlreadyRegistered { customer_id: None, owner_id: None, matched: vec!["registration_number"] }
    } else {
        Error::Db(e)
    }
}

/// Binds the customer's id ($1), every mutable column ($2..$27) and the
/// search terms derived from the names ($28..$32) in the order both
/// `insert_customer` and `save_customer` name them.
fn bind_profile<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    c: &'q Customer,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let terms = NameTerms::of(&c.display_name, &c.legal_name);
    q.bind(c.id.0)
        .bind(c.kind.as_str())
        .bind(&c.display_name)
        .bind(crm_domain::normalize_for_match(&c.display_name))
        .bind(&c.legal_name)
        .bind(crm_domain::normalize_for_match(&c.legal_name))
        .bind(&c.registration_number)
        .bind(&c.industry)
        .bind(c.size_band.map(|s| s.as_str()))
        .bind(&c.region)
        .bind(&c.summary)
        .bind(c.source_channel.map(|s| s.as_str()))
        .bind(&c.tags)
        .bind(&c.phone)
        .bind(&c.email)
        .bind(&c.owner_id)
        .bind(&c.branch)
        .bind(c.classification.grade.as_str())
        .bind(c.classification.value_tier.as_str())
        .bind(c.classification.service_level.as_str())
        .bind(c.stage.as_str())
        .bind(c.referred_by.map(|r| r.0))
        .bind(c.collected_at)
        .bind(c.entry_late)
        .bind(c.assigned_at)
        .bind(c.first_contact_due)
        .bind(c.first_contact_at)
        .bind(terms.search_grams)
        .bind(terms.core_grams)
        .bind(terms.name_core)
        .bind(terms.search_text)
        .bind(SEARCH_VERSION)
}

/// Inserts a new customer with its read document (`doc`, version 1).
#[tracing::instrument(skip_all, fields(id = %c.id))]
pub async fn insert_customer(conn: &mut PgConnection, c: &Customer, doc: &[u8]) -> Result<()> {
    let q = sqlx::query(
        "INSERT INTO customers.customers (id, kind, display_name, name_norm, legal_name, legal_name_norm, \
         registration_number, industry, size_band, region, summary, source_channel, tags, phone, email, owner_id, \
         branch, grade, value_tier, service_level, stage, referred_by, collected_at, entry_late, assigned_at, \
         first_contact_due, first_contact_at, search_grams, core_grams, name_core, search_text, search_version, \
         created_by, created_at, updated_at, version, doc, doc_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
         $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $34, 1, $35, 1)",
    );
    bind_profile(q, c)
        .bind(&c.created_by)
        .bind(c.created_at)
        .bind(doc)
        .execute(conn)
        .await
        .map_err(registration_conflict)?;
    Ok(())
}

/// Writes every mutable column of `c` and bumps the version (new etag).
#[tracing::instrument(skip_all, fields(id = %c.id))]
pub async fn save_customer(conn: &mut PgConnection, c: &Customer) -> Result<()> {
    let q = sqlx::query(
        "UPDATE customers.customers SET kind = $2, display_name = $3, name_norm = $4, legal_name = $5, \
         legal_name_norm = $6, registration_number = $7, industry = $8, size_band = $9, region = $10, summary = $11, \
         source_channel = $12, tags = $13, phone = $14, email = $15, owner_id = $16, branch = $17, grade = $18, \
         value_tier = $19, service_level = $20, stage = $21, referred_by = $22, collected_at = $23, \
         entry_late = $24, assigned_at = $25, first_contact_due = $26, first_contact_at = $27, search_grams = $28, \
         core_grams = $29, name_core = $30, search_text = $31, search_version = $32, updated_at = now(), \
         version = version + 1 WHERE id = $1",
    );
    bind_profile(q, c).execute(conn).await.map_err(registration_conflict)?;
    Ok(())
}

/// Bumps the version after a change to contacts or addresses: the etag covers
/// the whole aggregate.
pub async fn touch(conn: &mut PgConnection, id: CustomerId) -> Result<()> {
    sqlx::query("UPDATE customers.customers SET updated_at = now(), version = version + 1 WHERE id = $1")
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// One entry of the ownership history (CUS-3); `first_contact_override`
/// says the owner's CUS-4 protection was overridden (with `reason`).
pub async fn record_owner(
    conn: &mut PgConnection,
    c: &Customer,
    by: &str,
    reason: &str,
    first_contact_override: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.ownership_history (customer_id, owner_id, branch, assigned_by, reason, \
         first_contact_override) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id.0)
    .bind(&c.owner_id)
    .bind(&c.branch)
    .bind(by)
    .bind(reason)
    .bind(first_contact_override)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_classification(conn: &mut PgConnection, c: &Customer, by: &str, reason: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.classification_history (customer_id, grade, value_tier, service_level, changed_by, \
         reason) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id.0)
    .bind(c.classification.grade.as_str())
    .bind(c.classification.value_tier.as_str())
    .bind(c.classification.service_level.as_str())
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_stage(
    conn: &mut PgConnection,
    id: CustomerId,
    from: Option<Stage>,
    to: Stage,
    by: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.stage_history (customer_id, from_stage, to_stage, changed_by, reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.0)
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) fn address_kind(s: &str) -> Result<AddressKind> {
    parse("address kind", s, AddressKind::from_db)
}

pub(crate) fn contact_id(u: Uuid) -> ContactId {
    ContactId(u)
}

pub(crate) fn address_id(u: Uuid) -> AddressId {
    AddressId(u)
}

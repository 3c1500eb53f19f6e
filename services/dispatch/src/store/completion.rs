//! Completion's money side (DSP-5, DSP-6): the parts catalogue, parts used
//! and cash collected and handed over.

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Currency, Money};
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        TechnicianId, WorkOrderId,
        cash::{Collection, Handover},
        charges::{Part, PartLine},
    },
};

fn currency(code: &str) -> Result<Currency> {
    Currency::parse(code).map_err(|e| Error::Corrupt(e.to_string()))
}

/// One change of billing's catalogue (catalogue_item.changed), applied
/// only when `revision` is newer than the copy's. Returns whether it applied.
#[tracing::instrument(skip_all, fields(part = %p.code, revision))]
pub async fn apply_catalogue_change(conn: &mut PgConnection, p: &Part, revision: i64) -> Result<bool> {
    let applied = sqlx::query(
        "INSERT INTO dispatch.parts (id, code, name, price_minor, currency, created_by, created_at, kind, \
         vat_rate_bp, active, revision, changed_at) VALUES ($1, $2, $3, $4, $5, 'billing', $6, $7, $8, $9, $10, $6) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, price_minor = EXCLUDED.price_minor, \
         currency = EXCLUDED.currency, kind = EXCLUDED.kind, vat_rate_bp = EXCLUDED.vat_rate_bp, \
         active = EXCLUDED.active, revision = EXCLUDED.revision, changed_at = EXCLUDED.changed_at \
         WHERE parts.revision < EXCLUDED.revision",
    )
    .bind(p.id)
    .bind(&p.code)
    .bind(&p.name)
    .bind(p.unit_price.amount_minor())
    .bind(p.unit_price.currency().code())
    .bind(p.created_at)
    .bind(if p.is_part { "part" } else { "service" })
    .bind(p.vat_rate_bp)
    .bind(p.active)
    .bind(revision)
    .execute(conn)
    .await?;
    Ok(applied.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct PartRow {
    id: Uuid,
    code: String,
    name: String,
    price_minor: i64,
    currency: String,
    kind: String,
    vat_rate_bp: i32,
    active: bool,
    created_at: DateTime<Utc>,
    changed_at: Option<DateTime<Utc>>,
}

const PART_COLUMNS: &str =
    "id, code, name, price_minor, currency, kind, vat_rate_bp, active, created_at, changed_at FROM dispatch.parts";

fn part(r: PartRow) -> Result<Part> {
    Ok(Part {
        id: r.id,
        code: r.code,
        name: r.name,
        unit_price: Money::new(r.price_minor, currency(&r.currency)?),
        vat_rate_bp: r.vat_rate_bp,
        is_part: r.kind == "part",
        active: r.active,
        created_at: r.created_at,
        changed_at: r.changed_at,
    })
}

/// A page of the parts (not services) in id order, one more than `limit`
/// when there is a next page; withdrawn parts only when asked for.
pub async fn list_parts(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: u32,
    include_inactive: bool,
) -> Result<Vec<Part>> {
    let rows: Vec<PartRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PART_COLUMNS} WHERE kind = 'part' AND ($3 OR active) AND ($1::uuid IS NULL OR id > $1) \
         ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(i64::from(limit) + 1)
    .bind(include_inactive)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(part).collect()
}

/// The catalogue entries with these codes, whatever their kind and state.
pub async fn parts_by_code(conn: &mut PgConnection, codes: &[String]) -> Result<Vec<Part>> {
    let rows: Vec<PartRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PART_COLUMNS} WHERE code = ANY($1)")))
        .bind(codes)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(part).collect()
}

pub(super) async fn insert_order_parts(conn: &mut PgConnection, id: WorkOrderId, lines: &[PartLine]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::new(
        "INSERT INTO dispatch.work_order_parts (work_order_id, line_no, part_id, part_code, name, quantity, \
         unit_price_minor, currency, vat_rate_bp) ",
    );
    q.push_values(lines.iter().enumerate(), |mut b, (i, l)| {
        b.push_bind(id.0)
            .push_bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .push_bind(l.part_id)
            .push_bind(&l.code)
            .push_bind(&l.name)
            .push_bind(l.quantity)
            .push_bind(l.unit_price.amount_minor())
            .push_bind(l.unit_price.currency().code())
            .push_bind(l.vat_rate_bp);
    });
    q.build().execute(conn).await?;
    Ok(())
}

pub(super) async fn load_order_parts(conn: &mut PgConnection, id: WorkOrderId) -> Result<Vec<PartLine>> {
    let rows: Vec<(Uuid, String, String, i32, i64, String, i32)> = sqlx::query_as(
        "SELECT part_id, part_code, name, quantity, unit_price_minor, currency, vat_rate_bp FROM dispatch.work_order_parts \
         WHERE work_order_id = $1 ORDER BY line_no",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(part_id, code, name, quantity, price, cur, vat_rate_bp)| {
            Ok(PartLine { part_id, code, name, quantity, unit_price: Money::new(price, currency(&cur)?), vat_rate_bp })
        })
        .collect()
}

#[tracing::instrument(skip_all, fields(work_order = %c.work_order_id))]
pub async fn insert_collection(conn: &mut PgConnection, c: &Collection) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.cash_collections (id, work_order_id, technician_id, amount_minor, currency, \
         collected_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id)
    .bind(c.work_order_id.0)
    .bind(c.technician_id.0)
    .bind(c.amount.amount_minor())
    .bind(c.amount.currency().code())
    .bind(c.collected_at)
    .execute(conn)
    .await?;
    Ok(())
}

type CollectionRow = (Uuid, Uuid, Uuid, i64, String, DateTime<Utc>, Option<Uuid>);

fn collection(r: CollectionRow) -> Result<Collection> {
    let (id, work_order_id, technician_id, amount, cur, collected_at, handover_id) = r;
    Ok(Collection {
        id,
        work_order_id: WorkOrderId(work_order_id),
        technician_id: TechnicianId(technician_id),
        amount: Money::new(amount, currency(&cur)?),
        collected_at,
        handover_id,
    })
}

const COLLECTION_COLUMNS: &str = "id, work_order_id, technician_id, amount_minor, currency, collected_at, handover_id";

/// A technician's collections not yet handed over, locked so two hand-overs
/// cannot settle the same cash.
pub async fn open_collections_for_update(conn: &mut PgConnection, t: TechnicianId) -> Result<Vec<Collection>> {
    let sql = format!(
        "SELECT {COLLECTION_COLUMNS} FROM dispatch.cash_collections WHERE technician_id = $1 \
         AND handover_id IS NULL ORDER BY id FOR UPDATE"
    );
    let rows: Vec<CollectionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(t.0).fetch_all(conn).await?;
    rows.into_iter().map(collection).collect()
}

/// Open collections, optionally of one technician, in id order; one more
/// than `limit` when there is a next page.
pub async fn list_open_collections(
    conn: &mut PgConnection,
    t: Option<TechnicianId>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Collection>> {
    let sql = format!(
        "SELECT {COLLECTION_COLUMNS} FROM dispatch.cash_collections WHERE handover_id IS NULL \
         AND ($1::uuid IS NULL OR technician_id = $1) AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    let rows: Vec<CollectionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(t.map(|t| t.0))
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(collection).collect()
}

/// Records the hand-over and marks its collections as handed over.
#[tracing::instrument(skip_all, fields(handover = %h.id))]
pub async fn insert_handover(conn: &mut PgConnection, h: &Handover) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.cash_handovers (id, technician_id, currency, expected_minor, counted_minor, \
         received_by, received_at, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(h.id)
    .bind(h.technician_id.0)
    .bind(h.counted.currency().code())
    .bind(h.expected.amount_minor())
    .bind(h.counted.amount_minor())
    .bind(&h.received_by)
    .bind(h.received_at)
    .bind(&h.note)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE dispatch.cash_collections SET handover_id = $1 WHERE id = ANY($2)")
        .bind(h.id)
        .bind(&h.collection_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// A labour rate and who set it (DSP-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabourRate {
    pub hourly: Money,
    pub effective_from: NaiveDate,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// Sets the labour rate from `effective_from` on (replacing one set for the
/// same day).
pub async fn set_labour_rate(conn: &mut PgConnection, hourly: Money, from: NaiveDate, by: &str) -> Result<LabourRate> {
    let (set_at,): (DateTime<Utc>,) = sqlx::query_as(
        "INSERT INTO dispatch.labour_rates (effective_from, hourly_minor, currency, set_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (effective_from) DO UPDATE SET hourly_minor = EXCLUDED.hourly_minor, \
         currency = EXCLUDED.currency, set_by = EXCLUDED.set_by, set_at = now() RETURNING set_at",
    )
    .bind(from)
    .bind(hourly.amount_minor())
    .bind(hourly.currency().code())
    .bind(by)
    .fetch_one(conn)
    .await?;
    Ok(LabourRate { hourly, effective_from: from, set_by: by.to_string(), set_at })
}

/// The labour rate in force on `day`, if any.
pub async fn labour_rate(conn: &mut PgConnection, day: NaiveDate) -> Result<Option<LabourRate>> {
    let row: Option<(NaiveDate, i64, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT effective_from, hourly_minor, currency, set_by, set_at FROM dispatch.labour_rates \
         WHERE effective_from <= $1 ORDER BY effective_from DESC LIMIT 1",
    )
    .bind(day)
    .fetch_optional(conn)
    .await?;
    row.map(|(effective_from, minor, code, set_by, set_at)| {
        Ok(LabourRate { hourly: Money::new(minor, currency(&code)?), effective_from, set_by, set_at })
    })
    .transpose()
}

/// The hourly labour rate charged on `day`: none when no rate is set or the
/// rate in force is zero.
pub async fn labour_rate_on(conn: &mut PgConnection, day: NaiveDate) -> Result<Option<Money>> {
    Ok(labour_rate(conn, day).await?.map(|r| r.hourly).filter(|m| m.amount_minor() > 0))
}

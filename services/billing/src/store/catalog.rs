//! Tariffs (versioned by effective date, tiered) and the price catalogue.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::parse;
use crate::{
    error::{Error, Result},
    model::{CatalogueKind, CustomerClass, RuleViolation, pricing::Block},
};

#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    pub id: Uuid,
    pub customer_class: CustomerClass,
    pub effective_from: NaiveDate,
    pub vat_rate_bp: i32,
    pub currency: String,
    pub blocks: Vec<Block>,
    pub created_by: String,
}

pub async fn insert_tariff(conn: &mut PgConnection, t: &Tariff) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing.tariffs (id, customer_class, effective_from, vat_rate_bp, currency, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.id)
    .bind(t.customer_class.as_str())
    .bind(t.effective_from)
    .bind(t.vat_rate_bp)
    .bind(&t.currency)
    .bind(&t.created_by)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if crm_platform::error::violated_constraint(&e) == Some("tariffs_class_from_key") {
            Error::Rule(RuleViolation::new(
                "TARIFF_EXISTS",
                "a tariff for this class already takes effect on that date; versions are never changed",
            ))
        } else {
            Error::Db(e)
        }
    })?;
    for (i, b) in t.blocks.iter().enumerate() {
        sqlx::query(
            "INSERT INTO billing.tariff_blocks (tariff_id, position, up_to_m3, price_minor_per_m3) VALUES ($1, $2, $3, $4)",
        )
        .bind(t.id)
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(b.up_to_m3)
        .bind(b.price_minor_per_m3)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct TariffRow {
    id: Uuid,
    customer_class: String,
    effective_from: NaiveDate,
    vat_rate_bp: i32,
    currency: String,
    created_by: String,
}

async fn with_blocks(conn: &mut PgConnection, rows: Vec<TariffRow>) -> Result<Vec<Tariff>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let blocks: Vec<(Option<i64>, i64)> = sqlx::query_as(
            "SELECT up_to_m3, price_minor_per_m3 FROM billing.tariff_blocks WHERE tariff_id = $1 ORDER BY position",
        )
        .bind(r.id)
        .fetch_all(&mut *conn)
        .await?;
        out.push(Tariff {
            id: r.id,
            customer_class: parse("customer class", &r.customer_class, CustomerClass::from_db)?,
            effective_from: r.effective_from,
            vat_rate_bp: r.vat_rate_bp,
            currency: r.currency,
            blocks: blocks
                .into_iter()
                .map(|(up_to_m3, price_minor_per_m3)| Block { up_to_m3, price_minor_per_m3 })
                .collect(),
            created_by: r.created_by,
        });
    }
    Ok(out)
}

pub async fn list_tariffs(conn: &mut PgConnection, class: Option<CustomerClass>) -> Result<Vec<Tariff>> {
    let rows: Vec<TariffRow> = sqlx::query_as(
        "SELECT id, customer_class, effective_from, vat_rate_bp, currency, created_by FROM billing.tariffs \
         WHERE $1::text IS NULL OR customer_class = $1 ORDER BY effective_from DESC, customer_class",
    )
    .bind(class.map(|c| c.as_str()))
    .fetch_all(&mut *conn)
    .await?;
    with_blocks(conn, rows).await
}

/// The version in force on `day` for `class`.
pub async fn tariff_in_force(conn: &mut PgConnection, class: CustomerClass, day: NaiveDate) -> Result<Option<Tariff>> {
    let rows: Vec<TariffRow> = sqlx::query_as(
        "SELECT id, customer_class, effective_from, vat_rate_bp, currency, created_by FROM billing.tariffs \
         WHERE customer_class = $1 AND effective_from <= $2 ORDER BY effective_from DESC LIMIT 1",
    )
    .bind(class.as_str())
    .bind(day)
    .fetch_all(&mut *conn)
    .await?;
    Ok(with_blocks(conn, rows).await?.pop())
}

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueItem {
    pub code: String,
    pub description: String,
    pub kind: CatalogueKind,
    pub unit_price_minor: i64,
    pub currency: String,
    pub vat_rate_bp: i32,
    pub active: bool,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    code: String,
    description: String,
    kind: String,
    unit_price_minor: i64,
    currency: String,
    vat_rate_bp: i32,
    active: bool,
}

impl ItemRow {
    fn into_model(self) -> Result<CatalogueItem> {
        Ok(CatalogueItem {
            code: self.code,
            description: self.description,
            kind: parse("catalogue kind", &self.kind, CatalogueKind::from_db)?,
            unit_price_minor: self.unit_price_minor,
            currency: self.currency,
            vat_rate_bp: self.vat_rate_bp,
            active: self.active,
        })
    }
}

/// Creates or replaces a catalogue entry and returns its new revision;
/// issued invoices keep the price they were made with (their lines carry
/// it). The caller publishes the change in the same transaction and marks
/// it announced.
pub async fn upsert_item(conn: &mut PgConnection, i: &CatalogueItem) -> Result<i64> {
    let revision = sqlx::query_scalar(
        "INSERT INTO billing.catalogue_items (code, description, kind, unit_price_minor, currency, vat_rate_bp, active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO UPDATE SET description = $2, kind = $3, \
         unit_price_minor = $4, currency = $5, vat_rate_bp = $6, active = $7, updated_at = now(), \
         revision = catalogue_items.revision + 1 RETURNING revision",
    )
    .bind(&i.code)
    .bind(&i.description)
    .bind(i.kind.as_str())
    .bind(i.unit_price_minor)
    .bind(&i.currency)
    .bind(i.vat_rate_bp)
    .bind(i.active)
    .fetch_one(conn)
    .await?;
    Ok(revision)
}

/// Items whose latest revision has not been published (set before the
/// catalogue was published at all), locked, at most `limit`.
pub async fn lock_unannounced_items(conn: &mut PgConnection, limit: i64) -> Result<Vec<(CatalogueItem, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Revised {
        revision: i64,
        #[sqlx(flatten)]
        item: ItemRow,
    }
    let rows: Vec<Revised> = sqlx::query_as(
        "SELECT revision, code, description, kind, unit_price_minor, currency, vat_rate_bp, active \
         FROM billing.catalogue_items WHERE announced_revision < revision ORDER BY code LIMIT $1 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|r| Ok((r.item.into_model()?, r.revision))).collect()
}

/// Records that `revision` of `code` was published.
pub async fn mark_item_announced(conn: &mut PgConnection, code: &str, revision: i64) -> Result<()> {
    sqlx::query(
        "UPDATE billing.catalogue_items SET announced_revision = $2 WHERE code = $1 AND announced_revision < $2",
    )
    .bind(code)
    .bind(revision)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list_items(conn: &mut PgConnection) -> Result<Vec<CatalogueItem>> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT code, description, kind, unit_price_minor, currency, vat_rate_bp, active FROM billing.catalogue_items \
         ORDER BY code",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(ItemRow::into_model).collect()
}

/// The catalogue items with these codes.
pub async fn items(conn: &mut PgConnection, codes: &[String]) -> Result<Vec<CatalogueItem>> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT code, description, kind, unit_price_minor, currency, vat_rate_bp, active FROM billing.catalogue_items \
         WHERE code = ANY($1)",
    )
    .bind(codes)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(ItemRow::into_model).collect()
}

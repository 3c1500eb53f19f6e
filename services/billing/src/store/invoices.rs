//! Invoices, their gap-free numbers, funds (payments and credit notes) and
//! allocations, and arrears.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::parse;
use crate::{
    error::{Error, Result},
    model::{InvoiceStatus, PaymentMethod},
};

pub use crate::model::invoicing::Line;

#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: Uuid,
    pub account_id: Uuid,
    pub series: String,
    pub number: Option<String>,
    pub status: InvoiceStatus,
    pub currency: String,
    pub lines: Vec<Line>,
    pub net_minor: i64,
    pub vat_minor: i64,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub due_in_days: i32,
    pub due_on: Option<NaiveDate>,
    pub issued_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
    pub version: i64,
    /// The completed work order it was raised for, at most one invoice each.
    pub work_order_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: Uuid,
    account_id: Uuid,
    series: String,
    number: Option<String>,
    status: String,
    currency: String,
    net_minor: i64,
    vat_minor: i64,
    total_minor: i64,
    paid_minor: i64,
    due_in_days: i32,
    due_on: Option<NaiveDate>,
    issued_at: Option<DateTime<Utc>>,
    void_reason: Option<String>,
    version: i64,
    work_order_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    catalogue_code: Option<String>,
    description: String,
    quantity_milli: i64,
    unit_price_minor: i64,
    vat_rate_bp: i32,
    net_minor: i64,
    vat_minor: i64,
}

const INVOICE_COLUMNS: &str = "id, account_id, series, number, status, currency, net_minor, vat_minor, total_minor, \
     paid_minor, due_in_days, due_on, issued_at, void_reason, version, work_order_id";

pub async fn insert_invoice(conn: &mut PgConnection, inv: &Invoice, by: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing.invoices (id, account_id, series, status, currency, net_minor, vat_minor, total_minor, \
         due_in_days, created_by, work_order_id) VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(inv.id)
    .bind(inv.account_id)
    .bind(&inv.series)
    .bind(&inv.currency)
    .bind(inv.net_minor)
    .bind(inv.vat_minor)
    .bind(inv.total_minor)
    .bind(inv.due_in_days)
    .bind(by)
    .bind(inv.work_order_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if crm_platform::error::violated_constraint(&e) == Some("invoices_work_order_key") {
            Error::WorkOrderInvoiced { work_order_id: inv.work_order_id.map(|w| w.to_string()).unwrap_or_default() }
        } else {
            Error::Db(e)
        }
    })?;
    for (i, l) in inv.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO billing.invoice_lines (invoice_id, position, catalogue_code, description, quantity_milli, \
             unit_price_minor, vat_rate_bp, net_minor, vat_minor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(inv.id)
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(&l.catalogue_code)
        .bind(&l.description)
        .bind(l.quantity_milli)
        .bind(l.unit_price_minor)
        .bind(l.vat_rate_bp)
        .bind(l.net_minor)
        .bind(l.vat_minor)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn load_invoice(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Invoice>> {
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM billing.invoices WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(r) = sqlx::query_as::<_, InvoiceRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?
    else {
        return Ok(None);
    };
    Ok(Some(with_lines(conn, r).await?))
}

async fn with_lines(conn: &mut PgConnection, r: InvoiceRow) -> Result<Invoice> {
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT catalogue_code, description, quantity_milli, unit_price_minor, vat_rate_bp, net_minor, vat_minor \
         FROM billing.invoice_lines WHERE invoice_id = $1 ORDER BY position",
    )
    .bind(r.id)
    .fetch_all(conn)
    .await?;
    Ok(Invoice {
        id: r.id,
        account_id: r.account_id,
        series: r.series,
        number: r.number,
        status: parse("invoice status", &r.status, InvoiceStatus::from_db)?,
        currency: r.currency,
        lines: lines
            .into_iter()
            .map(|l| Line {
                catalogue_code: l.catalogue_code,
                description: l.description,
                quantity_milli: l.quantity_milli,
                unit_price_minor: l.unit_price_minor,
                vat_rate_bp: l.vat_rate_bp,
                net_minor: l.net_minor,
                vat_minor: l.vat_minor,
            })
            .collect(),
        net_minor: r.net_minor,
        vat_minor: r.vat_minor,
        total_minor: r.total_minor,
        paid_minor: r.paid_minor,
        due_in_days: r.due_in_days,
        due_on: r.due_on,
        issued_at: r.issued_at,
        void_reason: r.void_reason,
        version: r.version,
        work_order_id: r.work_order_id,
    })
}

pub async fn list_invoices(
    conn: &mut PgConnection,
    account: Uuid,
    status: Option<InvoiceStatus>,
) -> Result<Vec<Invoice>> {
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM billing.invoices WHERE account_id = $1 AND ($2::text IS NULL OR status = $2) \
         ORDER BY created_at, id"
    );
    let rows: Vec<InvoiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(account)
        .bind(status.map(|s| s.as_str()))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(with_lines(conn, r).await?);
    }
    Ok(out)
}

/// BIL-4: the next number of a series in a year. The counter row is updated
/// in the issuing transaction, so a rolled-back issue returns its number and
/// concurrent issues queue on the row: no gaps, no duplicates.
pub async fn next_number(conn: &mut PgConnection, series: &str, year: i32) -> Result<String> {
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO billing.invoice_counters (series, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (series, year) DO UPDATE SET last = billing.invoice_counters.last + 1 RETURNING last",
    )
    .bind(series)
    .bind(year)
    .fetch_one(conn)
    .await?;
    Ok(format!("{series}-{year}-{n:06}"))
}

/// Writes status, number, dates, paid amount and void reason; bumps the version.
pub async fn save_invoice(conn: &mut PgConnection, inv: &Invoice) -> Result<()> {
    sqlx::query(
        "UPDATE billing.invoices SET status = $2, number = $3, due_on = $4, issued_at = $5, paid_minor = $6, \
         void_reason = $7, version = version + 1 WHERE id = $1",
    )
    .bind(inv.id)
    .bind(inv.status.as_str())
    .bind(&inv.number)
    .bind(inv.due_on)
    .bind(inv.issued_at)
    .bind(inv.paid_minor)
    .bind(&inv.void_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Open invoices of an account, oldest issued first, locked.
pub async fn open_invoices(conn: &mut PgConnection, account: Uuid) -> Result<Vec<Invoice>> {
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM billing.invoices WHERE account_id = $1 AND status IN ('issued', 'partly_paid') \
         ORDER BY issued_at, number FOR UPDATE"
    );
    let rows: Vec<InvoiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(account).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(with_lines(conn, r).await?);
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fund {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: &'static str,
    pub method: Option<PaymentMethod>,
    pub amount_minor: i64,
    pub reference: String,
    pub reason: String,
    pub invoice_id: Option<Uuid>,
    pub complaint_id: Option<Uuid>,
    /// The work order an on-site payment was collected on.
    pub work_order_id: Option<Uuid>,
}

pub async fn insert_fund(conn: &mut PgConnection, f: &Fund, by: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing.funds (id, account_id, kind, method, amount_minor, unallocated_minor, reference, reason, \
         invoice_id, complaint_id, created_by, work_order_id) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(f.id)
    .bind(f.account_id)
    .bind(f.kind)
    .bind(f.method.map(|m| m.as_str()))
    .bind(f.amount_minor)
    .bind(&f.reference)
    .bind(&f.reason)
    .bind(f.invoice_id)
    .bind(f.complaint_id)
    .bind(by)
    .bind(f.work_order_id)
    .execute(conn)
    .await
    .map_err(|e| {
        if crm_platform::error::violated_constraint(&e) == Some("funds_complaint_credit_key") {
            Error::ComplaintCredited { complaint_id: f.complaint_id.map(|c| c.to_string()).unwrap_or_default() }
        } else {
            Error::Db(e)
        }
    })?;
    Ok(())
}

/// Funds with money left, oldest first (`newest_first` for refunds), locked.
pub async fn open_funds(conn: &mut PgConnection, account: Uuid, newest_first: bool) -> Result<Vec<(Uuid, i64)>> {
    let sql = format!(
        "SELECT id, unallocated_minor FROM billing.funds WHERE account_id = $1 AND unallocated_minor > 0 \
         ORDER BY created_at {dir}, id {dir} FOR UPDATE",
        dir = if newest_first { "DESC" } else { "ASC" }
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(account).fetch_all(conn).await?)
}

/// Records `amount` of fund `fund` going to `invoice`.
pub async fn allocate(conn: &mut PgConnection, fund: Uuid, invoice: Uuid, amount: i64) -> Result<()> {
    sqlx::query("INSERT INTO billing.allocations (fund_id, invoice_id, amount_minor) VALUES ($1, $2, $3)")
        .bind(fund)
        .bind(invoice)
        .bind(amount)
        .execute(&mut *conn)
        .await?;
    take_from_fund(conn, fund, amount).await
}

/// Lowers what is left of a fund (allocation or refund).
pub async fn take_from_fund(conn: &mut PgConnection, fund: Uuid, amount: i64) -> Result<()> {
    sqlx::query("UPDATE billing.funds SET unallocated_minor = unallocated_minor - $2 WHERE id = $1")
        .bind(fund)
        .bind(amount)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Overdue {
    pub id: Uuid,
    pub number: Option<String>,
    pub account_id: Uuid,
    pub due_on: NaiveDate,
    pub days_overdue: i32,
    pub outstanding_minor: i64,
    pub currency: String,
}

/// BIL-7: open invoices past their due date on `as_of`, most overdue first.
pub async fn overdue(conn: &mut PgConnection, as_of: NaiveDate) -> Result<Vec<Overdue>> {
    Ok(sqlx::query_as(
        "SELECT id, number, account_id, due_on, ($1 - due_on)::int AS days_overdue, \
         (total_minor - paid_minor) AS outstanding_minor, currency FROM billing.invoices \
         WHERE status IN ('issued', 'partly_paid') AND due_on < $1 ORDER BY due_on, number",
    )
    .bind(as_of)
    .fetch_all(conn)
    .await?)
}

//! BIL-3 persistence: bulk meter readings (UNNEST, one statement per batch)
//! and the set-based billing run (one consumption query for every account,
//! then bulk inserts of invoices, lines, ledger entries and run records).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{error::Result, model::usage::ReadingKind};

/// A reading ready to store (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub meter_id: String,
    pub read_on: NaiveDate,
    pub account_id: Uuid,
    pub reading_litres: i64,
    pub kind: &'static str,
    pub old_meter_final_litres: Option<i64>,
    pub meter_max_litres: Option<i64>,
}

impl NewReading {
    /// A judged reading (`model::usage::judge`) as it is stored.
    pub fn of(meter_id: String, read_on: NaiveDate, account_id: Uuid, reading_litres: i64, kind: ReadingKind) -> Self {
        let (kind, old_meter_final_litres, meter_max_litres) = match kind {
            ReadingKind::Normal => ("normal", None, None),
            ReadingKind::Replacement { old_meter_final } => ("replacement", Some(old_meter_final), None),
            ReadingKind::Rollover { meter_max } => ("rollover", None, Some(meter_max)),
        };
        Self { meter_id, read_on, account_id, reading_litres, kind, old_meter_final_litres, meter_max_litres }
    }
}

/// The litres recorded for `meter` on `day`, if any.
pub async fn reading_on(conn: &mut PgConnection, meter: &str, day: NaiveDate) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT reading_litres FROM billing.meter_readings WHERE meter_id = $1 AND read_on = $2")
        .bind(meter)
        .bind(day)
        .fetch_optional(conn)
        .await?)
}

/// The latest recorded reading of each of `meters`: (meter, day, litres).
pub async fn latest_readings(conn: &mut PgConnection, meters: &[String]) -> Result<Vec<(String, NaiveDate, i64)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (meter_id) meter_id, read_on, reading_litres FROM billing.meter_readings \
         WHERE meter_id = ANY($1) ORDER BY meter_id, read_on DESC",
    )
    .bind(meters)
    .fetch_all(conn)
    .await?)
}

/// Which of the (meter, day) pairs are already recorded.
pub async fn recorded(
    conn: &mut PgConnection,
    meters: &[String],
    days: &[NaiveDate],
) -> Result<Vec<(String, NaiveDate)>> {
    Ok(sqlx::query_as(
        "SELECT m.meter_id, m.read_on FROM billing.meter_readings m \
         JOIN unnest($1::text[], $2::date[]) AS t(meter_id, read_on) USING (meter_id, read_on)",
    )
    .bind(meters)
    .bind(days)
    .fetch_all(conn)
    .await?)
}

/// Which of `accounts` exist.
pub async fn existing_accounts(conn: &mut PgConnection, accounts: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar("SELECT id FROM billing.accounts WHERE id = ANY($1)").bind(accounts).fetch_all(conn).await?)
}

/// Inserts a batch in one statement; a reading already recorded for the same
/// meter and day is left as it is. Returns how many were new.
pub async fn insert_readings(conn: &mut PgConnection, rows: &[NewReading]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let meters: Vec<&str> = rows.iter().map(|r| r.meter_id.as_str()).collect();
    let days: Vec<NaiveDate> = rows.iter().map(|r| r.read_on).collect();
    let accounts: Vec<Uuid> = rows.iter().map(|r| r.account_id).collect();
    let litres: Vec<i64> = rows.iter().map(|r| r.reading_litres).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let finals: Vec<Option<i64>> = rows.iter().map(|r| r.old_meter_final_litres).collect();
    let maxes: Vec<Option<i64>> = rows.iter().map(|r| r.meter_max_litres).collect();
    let r = sqlx::query(
        "INSERT INTO billing.meter_readings (meter_id, read_on, account_id, reading_litres, kind, \
         old_meter_final_litres, meter_max_litres) \
         SELECT * FROM unnest($1::text[], $2::date[], $3::uuid[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) \
         ON CONFLICT (meter_id, read_on) DO NOTHING",
    )
    .bind(meters)
    .bind(days)
    .bind(accounts)
    .bind(litres)
    .bind(kinds)
    .bind(finals)
    .bind(maxes)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PeriodUsage {
    pub account_id: Uuid,
    pub customer_id: Uuid,
    pub customer_class: String,
    pub currency: String,
    pub volume_litres: i64,
    pub billed: bool,
}

/// Consumption in `(start, end]` of every postpaid account not closed with
/// readings in the period, in one statement: each reading's delta from the
/// previous one of its meter (the consumption rules of `model::usage`),
/// summed per account; `billed` marks accounts this period was billed for.
pub async fn period_usage(conn: &mut PgConnection, start: NaiveDate, end: NaiveDate) -> Result<Vec<PeriodUsage>> {
    Ok(sqlx::query_as(
        "WITH r AS ( \
           SELECT m.account_id, m.read_on, m.reading_litres, m.kind, m.old_meter_final_litres, m.meter_max_litres, \
                  lag(m.reading_litres) OVER (PARTITION BY m.meter_id ORDER BY m.read_on) AS prev \
           FROM billing.meter_readings m WHERE m.read_on <= $2), \
         d AS ( \
           SELECT account_id, CASE WHEN prev IS NULL THEN 0 \
                  WHEN kind = 'normal' THEN reading_litres - prev \
                  WHEN kind = 'replacement' THEN old_meter_final_litres - prev \
                  ELSE meter_max_litres - prev + reading_litres END AS litres \
           FROM r WHERE read_on > $1) \
         SELECT a.id AS account_id, a.customer_id, a.customer_class, a.currency, sum(d.litres)::bigint AS volume_litres, \
                EXISTS (SELECT 1 FROM billing.usage_billed u WHERE u.account_id = a.id \
                        AND u.period_start = $1 AND u.period_end = $2) AS billed \
         FROM d JOIN billing.accounts a ON a.id = d.account_id \
         WHERE a.kind = 'postpaid' AND a.status <> 'closed' \
         GROUP BY a.id, a.customer_id, a.customer_class, a.currency ORDER BY a.id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Reserves `n` consecutive numbers of a series and year; returns the first.
pub async fn reserve_numbers(conn: &mut PgConnection, series: &str, year: i32, n: i64) -> Result<i64> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO billing.invoice_counters (series, year, last) VALUES ($1, $2, $3) \
         ON CONFLICT (series, year) DO UPDATE SET last = billing.invoice_counters.last + $3 RETURNING last",
    )
    .bind(series)
    .bind(year)
    .bind(n)
    .fetch_one(conn)
    .await?;
    Ok(last - n + 1)
}

/// One usage invoice of a run, with its single line.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageInvoice {
    pub id: Uuid,
    pub account_id: Uuid,
    pub number: String,
    pub currency: String,
    pub net_minor: i64,
    pub vat_minor: i64,
    pub volume_litres: i64,
    pub description: String,
}

/// Writes a run's invoices (issued), their lines, the ledger charges and the
/// run records, a handful of statements for any number of accounts.
pub async fn insert_usage_invoices(
    conn: &mut PgConnection,
    invoices: &[UsageInvoice],
    start: NaiveDate,
    end: NaiveDate,
    due_on: NaiveDate,
    issued_at: DateTime<Utc>,
    by: &str,
) -> Result<()> {
    if invoices.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = invoices.iter().map(|i| i.id).collect();
    let accounts: Vec<Uuid> = invoices.iter().map(|i| i.account_id).collect();
    let numbers: Vec<&str> = invoices.iter().map(|i| i.number.as_str()).collect();
    let currencies: Vec<&str> = invoices.iter().map(|i| i.currency.as_str()).collect();
    let nets: Vec<i64> = invoices.iter().map(|i| i.net_minor).collect();
    let vats: Vec<i64> = invoices.iter().map(|i| i.vat_minor).collect();
    let totals: Vec<i64> = invoices.iter().map(|i| i.net_minor + i.vat_minor).collect();
    let volumes: Vec<i64> = invoices.iter().map(|i| i.volume_litres).collect();
    let descriptions: Vec<&str> = invoices.iter().map(|i| i.description.as_str()).collect();
    sqlx::query(
        "INSERT INTO billing.invoices (id, account_id, series, number, status, currency, net_minor, vat_minor, \
         total_minor, due_in_days, due_on, issued_at, created_by, volume_litres) \
         SELECT t.id, t.account_id, 'USG', t.number, 'issued', t.currency, t.net, t.vat, t.total, \
                ($3::date - $4::timestamptz::date), $3, $4, $5, t.volume \
         FROM unnest($1::uuid[], $2::uuid[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], \
                     $11::bigint[]) AS t(id, account_id, number, currency, net, vat, total, volume)",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(due_on)
    .bind(issued_at)
    .bind(by)
    .bind(&numbers)
    .bind(&currencies)
    .bind(&nets)
    .bind(&vats)
    .bind(&totals)
    .bind(&volumes)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO billing.invoice_lines (invoice_id, position, description, quantity_milli, unit_price_minor, \
         vat_rate_bp, net_minor, vat_minor) \
         SELECT t.id, 0, t.description, 1000, t.net, 0, t.net, t.vat \
         FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) AS t(id, description, net, vat)",
    )
    .bind(&ids)
    .bind(&descriptions)
    .bind(&nets)
    .bind(&vats)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO billing.ledger_entries (account_id, kind, amount_minor, description, invoice_id, created_by, occurred_at) \
         SELECT t.account_id, 'charge', t.total, 'invoice ' || t.number, t.id, $5, $6 \
         FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[]) AS t(id, account_id, total, number) \
         WHERE t.total <> 0",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(&totals)
    .bind(&numbers)
    .bind(by)
    .bind(issued_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO billing.usage_billed (account_id, period_start, period_end, invoice_id, volume_litres) \
         SELECT t.account_id, $3, $4, t.id, t.volume FROM unnest($1::uuid[], $2::uuid[], $5::bigint[]) AS t(id, account_id, volume)",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(start)
    .bind(end)
    .bind(&volumes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Billed accounts that hold unallocated credit (to apply to the new invoice).
pub async fn accounts_with_credit(conn: &mut PgConnection, accounts: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT account_id FROM billing.funds WHERE account_id = ANY($1) AND unallocated_minor > 0",
    )
    .bind(accounts)
    .fetch_all(conn)
    .await?)
}

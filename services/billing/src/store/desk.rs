//! BIL-8 cash desk shifts, BIL-7 dunning steps and the daily summary.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Shift {
    pub id: Uuid,
    pub cashier_id: String,
    pub status: String,
    pub currency: String,
    pub float_minor: i64,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub handed_over_to: Option<String>,
    pub handed_over_at: Option<DateTime<Utc>>,
    pub hand_over_note: String,
    pub version: i64,
}

const SHIFT_COLUMNS: &str = "id, cashier_id, status, currency, float_minor, opened_at, closed_at, handed_over_to, \
     handed_over_at, hand_over_note, version";

pub async fn open_shift(conn: &mut PgConnection, id: Uuid, cashier: &str, currency: &str, float: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing.shifts (id, cashier_id, status, currency, float_minor) VALUES ($1, $2, 'open', $3, $4)",
    )
    .bind(id)
    .bind(cashier)
    .bind(currency)
    .bind(float)
    .execute(conn)
    .await
    .map_err(|e| {
        if crm_platform::error::violated_constraint(&e) == Some("shifts_one_open_idx") {
            // Opened by a concurrent call: its id is named by the caller.
            Error::ShiftAlreadyOpen { shift_id: None }
        } else {
            Error::Db(e)
        }
    })?;
    Ok(())
}

pub async fn load_shift(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Shift>> {
    let sql =
        format!("SELECT {SHIFT_COLUMNS} FROM billing.shifts WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?)
}

/// The cashier's open shift, locked (payments taken at the desk go in it).
pub async fn open_shift_of(conn: &mut PgConnection, cashier: &str) -> Result<Option<Shift>> {
    let sql =
        format!("SELECT {SHIFT_COLUMNS} FROM billing.shifts WHERE cashier_id = $1 AND status = 'open' FOR UPDATE");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(cashier).fetch_optional(conn).await?)
}

/// The cashier's open shift, without a lock (for reading).
pub async fn current_shift_of(conn: &mut PgConnection, cashier: &str) -> Result<Option<Shift>> {
    let sql = format!("SELECT {SHIFT_COLUMNS} FROM billing.shifts WHERE cashier_id = $1 AND status = 'open'");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(cashier).fetch_optional(conn).await?)
}

pub async fn set_fund_shift(conn: &mut PgConnection, fund: Uuid, shift: Uuid) -> Result<()> {
    sqlx::query("UPDATE billing.funds SET shift_id = $2 WHERE id = $1").bind(fund).bind(shift).execute(conn).await?;
    Ok(())
}

/// Payments taken in a shift, per method.
pub async fn shift_takings(conn: &mut PgConnection, shift: Uuid) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT method, sum(amount_minor)::bigint FROM billing.funds WHERE shift_id = $1 GROUP BY method ORDER BY method",
    )
    .bind(shift)
    .fetch_all(conn)
    .await?)
}

pub async fn close_shift(conn: &mut PgConnection, id: Uuid, counts: &[(String, i64, i64)]) -> Result<()> {
    for (method, expected, counted) in counts {
        sqlx::query(
            "INSERT INTO billing.shift_counts (shift_id, method, expected_minor, counted_minor) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(method)
        .bind(expected)
        .bind(counted)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE billing.shifts SET status = 'closed', closed_at = now(), version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn shift_counts(conn: &mut PgConnection, id: Uuid) -> Result<Vec<(String, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT method, expected_minor, counted_minor FROM billing.shift_counts WHERE shift_id = $1 ORDER BY method",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

pub async fn hand_over(conn: &mut PgConnection, id: Uuid, to: &str, note: &str) -> Result<()> {
    sqlx::query(
        "UPDATE billing.shifts SET status = 'handed_over', handed_over_to = $2, handed_over_at = now(), \
         hand_over_note = $3, version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// (invoices issued, their total, litres billed) on a local day [from, to).
pub async fn invoiced_between(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*), coalesce(sum(total_minor), 0)::bigint, coalesce(sum(volume_litres), 0)::bigint \
         FROM billing.invoices WHERE issued_at >= $1 AND issued_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?)
}

/// Payments received in [from, to) per method.
pub async fn taken_between(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT method, sum(amount_minor)::bigint FROM billing.funds \
         WHERE kind = 'payment' AND created_at >= $1 AND created_at < $2 GROUP BY method ORDER BY method",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

/// BIL-7: records every dunning step that has come due on `today`, in one
/// statement. A step is recorded once per invoice (primary key), so passes on
/// several replicas at once never record one twice.
pub async fn record_dunning(conn: &mut PgConnection, today: NaiveDate) -> Result<u64> {
    let r = sqlx::query(
        "INSERT INTO billing.dunning_steps (invoice_id, step) \
         SELECT i.id, s.step FROM billing.invoices i \
         JOIN (VALUES ('reminder_1', 1), ('reminder_2', 30), ('final_notice', 60)) AS s(step, after_days) \
           ON i.due_on + s.after_days <= $1 \
         WHERE i.status IN ('issued', 'partly_paid') \
         ON CONFLICT (invoice_id, step) DO NOTHING",
    )
    .bind(today)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// The last dunning step of each of `invoices`.
pub async fn last_dunning_steps(conn: &mut PgConnection, invoices: &[Uuid]) -> Result<Vec<(Uuid, String)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (invoice_id) invoice_id, step FROM billing.dunning_steps WHERE invoice_id = ANY($1) \
         ORDER BY invoice_id, CASE step WHEN 'final_notice' THEN 3 WHEN 'reminder_2' THEN 2 ELSE 1 END DESC",
    )
    .bind(invoices)
    .fetch_all(conn)
    .await?)
}

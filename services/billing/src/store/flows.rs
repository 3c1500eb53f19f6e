//! What the X-2 flows into billing keep: where an account stands, the
//! work-order and complaint links that keep the flows at most once, and the
//! CUS-11 terminations billing was asked to clear.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{ACCOUNT_SELECT, Account, AccountRow};
use crate::{error::Result, model::standing::Standing};

/// The account's balance and number of open invoices — issued or partly
/// paid with something still owed on them (a zero-total usage invoice owes
/// nothing and does not keep an account from being clear) — read in the
/// caller's transaction, after its writes.
pub async fn standing(conn: &mut PgConnection, account: Uuid) -> Result<Standing> {
    let (balance_minor, open_invoices): (i64, i64) = sqlx::query_as(
        "SELECT a.balance_minor, (SELECT count(*) FROM billing.invoices i WHERE i.account_id = a.id \
         AND i.status IN ('issued', 'partly_paid') AND i.total_minor > i.paid_minor) FROM billing.accounts a WHERE a.id = $1",
    )
    .bind(account)
    .fetch_one(conn)
    .await?;
    Ok(Standing { balance_minor, open_invoices })
}

/// The customer's own account (BIL-1: at most one), locked. A merged-away
/// customer's id (an event sent before the merge) finds its survivor's.
pub async fn lock_account_of_customer(conn: &mut PgConnection, customer: Uuid) -> Result<Option<Account>> {
    let sql = format!("{ACCOUNT_SELECT} WHERE {} FOR UPDATE OF a", super::OWN_ACCOUNT_OF);
    let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).fetch_optional(conn).await?;
    row.map(AccountRow::into_model).transpose()
}

/// The invoice raised for a work order, if any.
pub async fn invoice_of_work_order(conn: &mut PgConnection, work_order: Uuid) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar("SELECT id FROM billing.invoices WHERE work_order_id = $1")
        .bind(work_order)
        .fetch_optional(conn)
        .await?)
}

/// The credit note of a complaint, if any: (id, amount).
pub async fn credit_note_of_complaint(conn: &mut PgConnection, complaint: Uuid) -> Result<Option<(Uuid, i64)>> {
    Ok(sqlx::query_as("SELECT id, amount_minor FROM billing.funds WHERE complaint_id = $1 AND kind = 'credit_note'")
        .bind(complaint)
        .fetch_optional(conn)
        .await?)
}

/// A termination billing was asked to clear (CUS-11).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Termination {
    pub saga_id: Uuid,
    pub customer_id: Uuid,
    pub status: String,
    pub hold_code: Option<String>,
    pub hold_reason: Option<String>,
    /// customer.termination_started has arrived.
    pub asked: bool,
    /// Dispatch's step report of this saga has arrived, listing…
    pub dispatch_reported: bool,
    /// …the customer's completed work orders with an amount due.
    pub billable_work_orders: Vec<Uuid>,
}

const TERMINATION_COLUMNS: &str =
    "saga_id, customer_id, status, hold_code, hold_reason, asked, dispatch_reported, billable_work_orders";

/// Records a termination as pending (a repeated start of the same saga
/// keeps what is there) and returns it locked.
pub async fn start_termination(conn: &mut PgConnection, saga: Uuid, customer: Uuid) -> Result<Termination> {
    sqlx::query(
        "INSERT INTO billing.terminations (saga_id, customer_id, status, asked) VALUES ($1, $2, 'pending', true) \
         ON CONFLICT (saga_id) DO UPDATE SET asked = true",
    )
    .bind(saga)
    .bind(customer)
    .execute(&mut *conn)
    .await?;
    lock_termination(conn, saga).await
}

async fn lock_termination(conn: &mut PgConnection, saga: Uuid) -> Result<Termination> {
    let sql = format!("SELECT {TERMINATION_COLUMNS} FROM billing.terminations WHERE saga_id = $1 FOR UPDATE");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(saga).fetch_one(conn).await?)
}

/// Records dispatch's report of a saga (the termination may not have been
/// asked of billing yet) and returns it locked.
pub async fn record_dispatch_report(
    conn: &mut PgConnection,
    saga: Uuid,
    customer: Uuid,
    billable: &[Uuid],
) -> Result<Termination> {
    sqlx::query(
        "INSERT INTO billing.terminations (saga_id, customer_id, status, dispatch_reported, billable_work_orders) \
         VALUES ($1, $2, 'pending', true, $3) \
         ON CONFLICT (saga_id) DO UPDATE SET dispatch_reported = true, billable_work_orders = EXCLUDED.billable_work_orders",
    )
    .bind(saga)
    .bind(customer)
    .bind(billable)
    .execute(&mut *conn)
    .await?;
    lock_termination(conn, saga).await
}

/// Which of `work_orders` have no invoice yet.
pub async fn uninvoiced(conn: &mut PgConnection, work_orders: &[Uuid]) -> Result<Vec<Uuid>> {
    if work_orders.is_empty() {
        return Ok(vec![]);
    }
    Ok(sqlx::query_scalar(
        "SELECT w FROM unnest($1::uuid[]) AS w WHERE NOT EXISTS \
         (SELECT 1 FROM billing.invoices i WHERE i.work_order_id = w) ORDER BY w",
    )
    .bind(work_orders)
    .fetch_all(conn)
    .await?)
}

/// The next pending termination not looked at since `pass_start`, locked;
/// rows another replica is checking are skipped.
pub async fn next_pending_termination(
    conn: &mut PgConnection,
    pass_start: DateTime<Utc>,
) -> Result<Option<Termination>> {
    let sql = format!(
        "SELECT {TERMINATION_COLUMNS} FROM billing.terminations WHERE status = 'pending' AND asked AND checked_at < $1 \
         ORDER BY checked_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(pass_start).fetch_optional(conn).await?)
}

/// The outcome of one look at a termination: done, or still held for
/// `hold` (code, reason).
pub async fn save_termination(
    conn: &mut PgConnection,
    saga: Uuid,
    account: Option<Uuid>,
    hold: Option<(&str, &str)>,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE billing.terminations SET account_id = coalesce($2, account_id), \
         status = CASE WHEN $3::text IS NULL THEN 'done' ELSE 'pending' END, hold_code = $3, hold_reason = $4, \
         checked_at = $5, done_at = CASE WHEN $3::text IS NULL THEN $5 END WHERE saga_id = $1",
    )
    .bind(saga)
    .bind(account)
    .bind(hold.map(|h| h.0))
    .bind(hold.map(|h| h.1))
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a termination looked at without changing it (a failed look).
pub async fn touch_termination(conn: &mut PgConnection, saga: Uuid, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE billing.terminations SET checked_at = $2 WHERE saga_id = $1")
        .bind(saga)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

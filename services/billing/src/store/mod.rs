//! Persistence of the `billing` schema. Functions take the connection or
//! transaction they run in; the API composes them with the idempotency key.

mod catalog;
mod desk;
mod flows;
mod invoices;
mod usage;

pub use catalog::*;
pub use desk::*;
pub use flows::*;
pub use invoices::*;
pub use usage::*;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{AccountKind, AccountStatus, CustomerClass, EntryKind},
};

pub const IDEMPOTENCY_TABLE: &str = "billing.idempotency_keys";

pub(crate) fn parse<T>(what: &str, v: &str, f: fn(&str) -> Option<T>) -> Result<T> {
    f(v).ok_or_else(|| Error::Corrupt(format!("unknown {what} {v:?}")))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kind: AccountKind,
    pub status: AccountStatus,
    pub customer_class: CustomerClass,
    pub currency: String,
    pub card_number: Option<String>,
    pub balance_minor: i64,
    pub available_credit_minor: i64,
    pub created_at: DateTime<Utc>,
    pub version: i64,
    /// The customer the account was opened for, when a merge moved it here
    /// (CUS-2).
    pub merged_from: Option<Uuid>,
    /// Kept beside the customer's own account after a merge.
    pub side_account: bool,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    customer_id: Uuid,
    kind: String,
    status: String,
    customer_class: String,
    currency: String,
    card_number: Option<String>,
    balance_minor: i64,
    available_credit_minor: i64,
    created_at: DateTime<Utc>,
    version: i64,
    merged_from: Option<Uuid>,
    side_account: bool,
}

impl AccountRow {
    fn into_model(self) -> Result<Account> {
        Ok(Account {
            id: self.id,
            customer_id: self.customer_id,
            kind: parse("account kind", &self.kind, AccountKind::from_db)?,
            status: parse("account status", &self.status, AccountStatus::from_db)?,
            customer_class: parse("customer class", &self.customer_class, CustomerClass::from_db)?,
            currency: self.currency,
            card_number: self.card_number,
            balance_minor: self.balance_minor,
            available_credit_minor: self.available_credit_minor,
            created_at: self.created_at,
            version: self.version,
            merged_from: self.merged_from,
            side_account: self.side_account,
        })
    }
}

const ACCOUNT_SELECT: &str = "SELECT a.id, a.customer_id, a.kind, a.status, a.customer_class, a.currency, \
     a.card_number, a.balance_minor, a.created_at, a.version, a.merged_from, a.side_account, \
     coalesce((SELECT sum(f.unallocated_minor) FROM billing.funds f WHERE f.account_id = a.id), 0)::bigint \
     AS available_credit_minor FROM billing.accounts a";

/// Opens an account; a prepaid one gets the next card number.
pub async fn insert_account(
    conn: &mut PgConnection,
    id: Uuid,
    customer: Uuid,
    kind: AccountKind,
    class: CustomerClass,
    currency: &str,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing.accounts (id, customer_id, kind, status, customer_class, currency, card_number, \
         created_by) VALUES ($1, $2, $3, 'active', $4, $5, \
         CASE WHEN $3 = 'prepaid' THEN lpad(nextval('billing.card_numbers')::text, 12, '0') END, $6)",
    )
    .bind(id)
    .bind(customer)
    .bind(kind.as_str())
    .bind(class.as_str())
    .bind(currency)
    .bind(by)
    .execute(conn)
    .await
    .map_err(|e| {
        if crm_platform::error::violated_constraint(&e) == Some("accounts_customer_key") {
            Error::AccountExists { account_id: None }
        } else {
            Error::Db(e)
        }
    })?;
    Ok(())
}

pub async fn load_account(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Account>> {
    let sql = format!("{ACCOUNT_SELECT} WHERE a.id = $1{}", if lock { " FOR UPDATE OF a" } else { "" });
    let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.map(AccountRow::into_model).transpose()
}

/// Which customer a given id's account is filed under: its survivor when it
/// was merged away (CUS-2), in the same statement (a read needs no lock: an
/// account found under the merged id before the merge commits is the same
/// account).
pub(crate) const OWN_ACCOUNT_OF: &str = "a.customer_id = coalesce((SELECT x.survivor_id FROM \
     billing.customer_aliases x WHERE x.merged_id = $1), $1) AND NOT a.side_account";

/// The customer's own account (BIL-1: at most one), not one kept beside it
/// after a merge. A merged-away customer's id finds its survivor's (CUS-2).
pub async fn account_of_customer(conn: &mut PgConnection, customer: Uuid) -> Result<Option<Account>> {
    let sql = format!("{ACCOUNT_SELECT} WHERE {OWN_ACCOUNT_OF}");
    let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).fetch_optional(conn).await?;
    row.map(AccountRow::into_model).transpose()
}

/// The accounts a merge moved beside the customer's own (CUS-2), oldest first.
pub async fn side_accounts_of_customer(conn: &mut PgConnection, customer: Uuid) -> Result<Vec<Account>> {
    let sql = format!("{ACCOUNT_SELECT} WHERE a.customer_id = $1 AND a.side_account ORDER BY a.id");
    let rows: Vec<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).fetch_all(conn).await?;
    rows.into_iter().map(AccountRow::into_model).collect()
}

/// CUS-2: moves the merged-away customer's accounts to the survivor. The
/// first becomes the survivor's own when it has none; the rest are kept
/// beside it. Returns how many moved.
pub async fn move_accounts(conn: &mut PgConnection, merged: Uuid, survivor: Uuid) -> Result<u64> {
    let moved = sqlx::query(
        "UPDATE billing.accounts a SET customer_id = $2, merged_from = coalesce(a.merged_from, $1), \
           side_account = a.side_account OR EXISTS (SELECT 1 FROM billing.accounts o \
             WHERE o.customer_id = $2 AND NOT o.side_account), version = a.version + 1 \
         WHERE a.customer_id = $1",
    )
    .bind(merged)
    .bind(survivor)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

pub async fn save_account_status(conn: &mut PgConnection, id: Uuid, status: AccountStatus) -> Result<()> {
    sqlx::query("UPDATE billing.accounts SET status = $2, version = version + 1 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Posts one immutable ledger entry (the trigger moves the balance with it).
#[allow(clippy::too_many_arguments)]
pub async fn post(
    conn: &mut PgConnection,
    account: Uuid,
    kind: EntryKind,
    amount_minor: i64,
    description: &str,
    invoice: Option<Uuid>,
    fund: Option<Uuid>,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing.ledger_entries (account_id, kind, amount_minor, description, invoice_id, fund_id, \
         created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(account)
    .bind(kind.as_str())
    .bind(amount_minor)
    .bind(description)
    .bind(invoice)
    .bind(fund)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LedgerEntry {
    pub id: i64,
    pub kind: String,
    pub amount_minor: i64,
    pub description: String,
    pub occurred_at: DateTime<Utc>,
}

/// BIL-9: the balance before `from`, and the entries in `[from, to)`.
pub async fn statement(
    conn: &mut PgConnection,
    account: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, Vec<LedgerEntry>)> {
    let opening: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(amount_minor), 0)::bigint FROM billing.ledger_entries \
         WHERE account_id = $1 AND occurred_at < $2",
    )
    .bind(account)
    .bind(from)
    .fetch_one(&mut *conn)
    .await?;
    let entries = sqlx::query_as(
        "SELECT id, kind, amount_minor, description, occurred_at FROM billing.ledger_entries \
         WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at, id",
    )
    .bind(account)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    Ok((opening, entries))
}

/// Accounts whose stored balance differs from the sum of their ledger — the
/// BIL-9 invariant; always empty.
pub async fn balance_mismatches(conn: &mut PgConnection) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT a.id FROM billing.accounts a LEFT JOIN billing.ledger_entries l ON l.account_id = a.id \
         GROUP BY a.id, a.balance_minor HAVING a.balance_minor <> coalesce(sum(l.amount_minor), 0)",
    )
    .fetch_all(conn)
    .await?)
}

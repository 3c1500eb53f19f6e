//! Posting money to accounts — issuing invoices, receiving payments, issuing
//! credit notes — and reporting each as an event in the same
//! transaction. The RPC handlers and the event consumers share these,
//! so both paths number, post to the ledger, allocate and report alike.

use chrono::{DateTime, Datelike, Utc};
use crm_domain::WorkingCalendar;
use crm_events::{Payload, pb as ev};
use crm_proto::common::v1 as common;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        AccountStatus, EntryKind, InvoiceStatus, RuleViolation,
        allocation::{Open, allocate},
        standing::reports_cleared,
        states::InvoiceEvent,
    },
    store::{self, Account, Fund, Invoice},
};

/// The producer name of this service's events (its schema).
pub const SOURCE: &str = "billing";

/// Money of `currency` on the wire of an event.
pub fn money(amount_minor: i64, currency: &str) -> common::Money {
    common::Money { amount_minor, currency_code: currency.to_string() }
}

fn opt(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

/// Part of a fund applied to an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocated {
    pub invoice_id: Uuid,
    pub invoice_number: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// Records `amount` paid on an invoice and moves its status (BIL-4).
pub async fn settle(conn: &mut PgConnection, inv: &mut Invoice, amount: i64) -> Result<()> {
    inv.paid_minor += amount;
    inv.status =
        inv.status.transition(InvoiceEvent::Settle { paid_minor: inv.paid_minor, total_minor: inv.total_minor })?;
    store::save_invoice(conn, inv).await?;
    report_work_order_invoice(conn, inv).await
}

/// invoice.payment_changed for an invoice raised for a work order, so the
/// work order shows it and whether it is paid (dispatch follows it).
async fn report_work_order_invoice(conn: &mut PgConnection, inv: &Invoice) -> Result<()> {
    let Some(work_order) = inv.work_order_id else { return Ok(()) };
    crm_events::emit(
        conn,
        SOURCE,
        inv.id,
        crm_platform::proto_time::now(),
        Payload::InvoicePaymentChanged(ev::InvoicePaymentChanged {
            invoice_id: inv.id.to_string(),
            number: inv.number.clone().unwrap_or_default(),
            account_id: inv.account_id.to_string(),
            work_order_id: work_order.to_string(),
            status: inv.status.as_str().to_string(),
            total: Some(money(inv.total_minor, &inv.currency)),
            paid: Some(money(inv.paid_minor, &inv.currency)),
        }),
    )
    .await?;
    Ok(())
}

/// Applies `amount` of fund `fund` to the account's open invoices, oldest
/// first (BIL-5) — `first`, when given, before all others (an on-site
/// payment pays the work order's own invoice) — and returns the allocations
/// and what is left as credit.
pub async fn apply_fund(
    conn: &mut PgConnection,
    account: Uuid,
    fund: Uuid,
    amount: i64,
    first: Option<Uuid>,
) -> Result<(Vec<Allocated>, i64)> {
    let mut open = store::open_invoices(conn, account).await?;
    if let Some(first) = first {
        // Stable: the others keep their oldest-first order.
        open.sort_by_key(|inv| inv.id != first);
    }
    let slots: Vec<Open<usize>> =
        open.iter().enumerate().map(|(i, inv)| Open { id: i, outstanding: inv.total_minor - inv.paid_minor }).collect();
    let (plan, left) = allocate(amount, &slots);
    let mut out = Vec::with_capacity(plan.len());
    for (i, take) in plan {
        let inv = &mut open[i];
        store::allocate(conn, fund, inv.id, take).await?;
        settle(conn, inv, take).await?;
        out.push(Allocated {
            invoice_id: inv.id,
            invoice_number: inv.number.clone().unwrap_or_default(),
            amount_minor: take,
            currency: inv.currency.clone(),
        });
    }
    Ok((out, left))
}

/// Issues a draft invoice of `account` (BIL-4): the next gap-free number of
/// its series, the charge in the ledger, credit the account holds applied
/// first, and invoice.issued. Whether the account may be billed at all is
/// the caller's rule.
pub async fn issue_invoice(
    conn: &mut PgConnection,
    calendar: &WorkingCalendar,
    account: &Account,
    inv: &mut Invoice,
    by: &str,
) -> Result<()> {
    inv.status = inv.status.transition(InvoiceEvent::Issue)?;
    let now = crm_platform::proto_time::now();
    let today = calendar.local_date(now);
    inv.number = Some(store::next_number(conn, &inv.series, today.year()).await?);
    inv.issued_at = Some(now);
    inv.due_on = today.checked_add_days(chrono::Days::new(u64::try_from(inv.due_in_days).unwrap_or(0)));
    store::save_invoice(conn, inv).await?;
    let number = inv.number.clone().unwrap_or_default();
    if inv.total_minor != 0 {
        store::post(
            conn,
            inv.account_id,
            EntryKind::Charge,
            inv.total_minor,
            &format!("invoice {number}"),
            Some(inv.id),
            None,
            by,
        )
        .await?;
    }
    // Credit the account holds (earlier overpayments, credit notes) pays it first.
    for (fund, available) in store::open_funds(conn, inv.account_id, false).await? {
        let outstanding = inv.total_minor - inv.paid_minor;
        if outstanding == 0 {
            break;
        }
        let take = available.min(outstanding);
        store::allocate(conn, fund, inv.id, take).await?;
        settle(conn, inv, take).await?;
    }
    if inv.total_minor == 0 {
        // Nothing is owed on it: paid at once, never left open.
        settle(conn, inv, 0).await?;
    }
    crm_events::emit(
        conn,
        SOURCE,
        inv.id,
        now,
        Payload::InvoiceIssued(ev::InvoiceIssued {
            invoice_id: inv.id.to_string(),
            number,
            account_id: inv.account_id.to_string(),
            customer_id: account.customer_id.to_string(),
            total: Some(money(inv.total_minor, &inv.currency)),
            work_order_id: opt(inv.work_order_id),
        }),
    )
    .await?;
    report_work_order_invoice(conn, inv).await?;
    if inv.total_minor != 0 {
        report_if_cleared(conn, account, now).await?;
    }
    Ok(())
}

fn refuse_closed(account: &Account) -> Result<()> {
    if account.status == AccountStatus::Closed {
        return Err(RuleViolation::new("ACCOUNT_CLOSED", "the account is closed").into());
    }
    Ok(())
}

/// Receives a payment (`fund`, kind payment) on `account` (BIL-5): the fund,
/// the ledger entry, allocation (to `first` first, then oldest first; the
/// rest is credit) and payment.received. Returns the allocations and the
/// credit left.
pub async fn receive_payment(
    conn: &mut PgConnection,
    account: &Account,
    fund: &Fund,
    first: Option<Uuid>,
    by: &str,
) -> Result<(Vec<Allocated>, i64)> {
    refuse_closed(account)?;
    let method = fund.method.ok_or_else(|| Error::Corrupt("a payment without a method".into()))?;
    store::insert_fund(conn, fund, by).await?;
    store::post(
        conn,
        account.id,
        EntryKind::Payment,
        -fund.amount_minor,
        &format!("payment ({})", method.as_str()),
        None,
        Some(fund.id),
        by,
    )
    .await?;
    let (allocations, credit) = apply_fund(conn, account.id, fund.id, fund.amount_minor, first).await?;
    let now = crm_platform::proto_time::now();
    crm_events::emit(
        conn,
        SOURCE,
        fund.id,
        now,
        Payload::PaymentReceived(ev::PaymentReceived {
            payment_id: fund.id.to_string(),
            account_id: account.id.to_string(),
            customer_id: account.customer_id.to_string(),
            amount: Some(money(fund.amount_minor, &account.currency)),
            method: method.as_str().to_string(),
            work_order_id: opt(fund.work_order_id),
        }),
    )
    .await?;
    report_if_cleared(conn, account, now).await?;
    Ok((allocations, credit))
}

/// Issues a credit note (`fund`, kind credit_note) on `account` (BIL-6): for
/// an invoice it settles that invoice and may not exceed what is owed on it;
/// otherwise (a complaint's compensation, a correction) it is allocated like
/// a payment. Reports credit_note.issued.
pub async fn issue_credit_note(
    conn: &mut PgConnection,
    account: &Account,
    fund: &Fund,
    by: &str,
) -> Result<Vec<Allocated>> {
    refuse_closed(account)?;
    let amount = fund.amount_minor;
    let description = format!("credit note: {}", fund.reason);
    let allocations = if let Some(inv_id) = fund.invoice_id {
        let mut inv = store::load_invoice(conn, inv_id, true)
            .await?
            .filter(|i| i.account_id == account.id)
            .ok_or_else(|| Error::NotFound { resource: "invoice", id: inv_id.to_string() })?;
        if !matches!(inv.status, InvoiceStatus::Issued | InvoiceStatus::PartlyPaid) {
            return Err(
                RuleViolation::new("INVOICE_NOT_OPEN", format!("the invoice is {}", inv.status.as_str())).into()
            );
        }
        if amount > inv.total_minor - inv.paid_minor {
            return Err(RuleViolation::new(
                "CREDIT_EXCEEDS_OUTSTANDING",
                "a credit note for an invoice cannot exceed what is owed on it",
            )
            .into());
        }
        store::insert_fund(conn, fund, by).await?;
        store::post(conn, account.id, EntryKind::Credit, -amount, &description, Some(inv_id), Some(fund.id), by)
            .await?;
        store::allocate(conn, fund.id, inv_id, amount).await?;
        settle(conn, &mut inv, amount).await?;
        vec![Allocated {
            invoice_id: inv.id,
            invoice_number: inv.number.clone().unwrap_or_default(),
            amount_minor: amount,
            currency: inv.currency.clone(),
        }]
    } else {
        store::insert_fund(conn, fund, by).await?;
        store::post(conn, account.id, EntryKind::Credit, -amount, &description, None, Some(fund.id), by).await?;
        apply_fund(conn, account.id, fund.id, amount, None).await?.0
    };
    let now = crm_platform::proto_time::now();
    crm_events::emit(
        conn,
        SOURCE,
        fund.id,
        now,
        Payload::CreditNoteIssued(ev::CreditNoteIssued {
            credit_note_id: fund.id.to_string(),
            account_id: account.id.to_string(),
            customer_id: account.customer_id.to_string(),
            amount: Some(money(amount, &account.currency)),
            invoice_id: opt(fund.invoice_id),
            complaint_id: opt(fund.complaint_id),
        }),
    )
    .await?;
    report_if_cleared(conn, account, now).await?;
    Ok(allocations)
}

/// Emits account.cleared when the account — to which the caller's
/// transaction has just posted a ledger entry — is now clear (the rule is
/// `model::standing::reports_cleared`).
pub async fn report_if_cleared(conn: &mut PgConnection, account: &Account, at: DateTime<Utc>) -> Result<()> {
    report_if_cleared_by_id(conn, account.id, account.customer_id, at).await
}

/// [`report_if_cleared`] for an account known by its ids (bulk paths).
pub async fn report_if_cleared_by_id(
    conn: &mut PgConnection,
    account: Uuid,
    customer: Uuid,
    at: DateTime<Utc>,
) -> Result<()> {
    let after = store::standing(conn, account).await?;
    if reports_cleared(true, after) {
        crm_events::emit(
            conn,
            SOURCE,
            account,
            at,
            Payload::AccountCleared(ev::AccountCleared {
                account_id: account.to_string(),
                customer_id: customer.to_string(),
            }),
        )
        .await?;
    }
    Ok(())
}

/// Closes the account (already checked clear by the caller's state
/// transition) and reports account.closed; `saga` when a termination closed
/// it (CUS-11).
pub async fn close_account(conn: &mut PgConnection, account: &Account, saga: Option<Uuid>) -> Result<()> {
    store::save_account_status(conn, account.id, AccountStatus::Closed).await?;
    crm_events::emit(
        conn,
        SOURCE,
        account.id,
        crm_platform::proto_time::now(),
        Payload::AccountClosed(ev::AccountClosed {
            account_id: account.id.to_string(),
            customer_id: account.customer_id.to_string(),
            saga_id: opt(saga),
        }),
    )
    .await?;
    Ok(())
}

//! Where an account stands: whether it is clear (account.cleared, X-1) and
//! what billing answers in the CUS-11 termination saga.

use crm_domain::{Currency, Money};

/// An account's balance (what the customer owes; negative: credit) and how
/// many of its invoices are open (issued or partly paid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub balance_minor: i64,
    pub open_invoices: i64,
}

impl Standing {
    /// Clear: nothing owed either way — a zero balance and no open invoice.
    /// The same test CloseAccount applies (`AccountEvent::Close`), so a clear
    /// account can always be closed.
    pub fn is_clear(self) -> bool {
        self.balance_minor == 0 && self.open_invoices == 0
    }
}

/// Whether a transaction that posted at least one ledger entry to an account
/// and left it `after` reports `account.cleared`.
///
/// The rule: **a transaction that moves money on an account (posts a ledger
/// entry: payment, credit note, refund, void, an invoice settled from credit
/// or paid on site) and leaves it clear emits account.cleared.** Every entry
/// is non-zero (a CHECK), so such a transaction always passed through "not
/// clear" — including an invoice paid in full on site in the same
/// transaction. Opening an account, or a transaction that posts nothing,
/// never emits it, so an untouched clear account is not reported again.
pub fn reports_cleared(posted: bool, after: Standing) -> bool {
    posted && after.is_clear()
}

/// Billing's answer to a termination (CUS-11: "the billing account cleared
/// (zero balance) before the customer becomes terminated").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationStep {
    /// Nothing is owed either way: close the account (if any) and report DONE.
    Clear,
    /// Report HELD with a stable code and a sentence for people.
    Held { code: &'static str, reason: String },
}

/// Before the balance: dispatch must have reported (its report lists the
/// customer's billable work) and each of those work orders must be invoiced
/// here — the feeds are independent, so a job completed while the
/// termination runs may reach billing after customers asks.
pub fn work_step(dispatch_reported: bool, uninvoiced: &[uuid::Uuid]) -> Option<TerminationStep> {
    if !dispatch_reported {
        return Some(TerminationStep::Held {
            code: "AWAITING_DISPATCH",
            reason: "waiting for dispatch to cancel the open work and list the work to bill".into(),
        });
    }
    if uninvoiced.is_empty() {
        return None;
    }
    let shown: Vec<String> = uninvoiced.iter().take(10).map(ToString::to_string).collect();
    Some(TerminationStep::Held {
        code: "WORK_NOT_INVOICED",
        reason: format!(
            "{} completed work order(s) not invoiced yet: {}{}",
            uninvoiced.len(),
            shown.join(", "),
            if uninvoiced.len() > shown.len() { ", …" } else { "" }
        ),
    })
}

/// The step for an account standing as `s` (in `currency`; `account` names
/// it in the sentence).
pub fn termination_step(s: Standing, currency: &str, account: &str) -> TerminationStep {
    if s.is_clear() {
        return TerminationStep::Clear;
    }
    let shown = |minor: i64| match Currency::parse(currency) {
        Ok(c) => Money::new(minor, c).to_string(),
        Err(_) => format!("{minor} (minor units) {currency}"),
    };
    if s.balance_minor > 0 {
        TerminationStep::Held {
            code: "BALANCE_NOT_ZERO",
            reason: format!("{} is owed on account {account}", shown(s.balance_minor)),
        }
    } else if s.balance_minor < 0 {
        TerminationStep::Held {
            code: "CREDIT_HELD",
            reason: format!(
                "the customer is owed a refund of {} on account {account}",
                shown(s.balance_minor.saturating_neg())
            ),
        }
    } else {
        TerminationStep::Held {
            code: "BALANCE_NOT_ZERO",
            reason: format!("{} invoices are still open on account {account}", s.open_invoices),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn billing_waits_for_dispatch_and_for_every_billable_job() {
        assert!(matches!(work_step(false, &[]), Some(TerminationStep::Held { code: "AWAITING_DISPATCH", .. })));
        assert_eq!(work_step(true, &[]), None);
        let ids: Vec<uuid::Uuid> = (0..12).map(uuid::Uuid::from_u128).collect();
        match work_step(true, &ids) {
            Some(TerminationStep::Held { code, reason }) => {
                assert_eq!(code, "WORK_NOT_INVOICED");
                assert!(reason.starts_with("12 completed work order(s) not invoiced yet: "), "{reason}");
                assert!(reason.ends_with(", …"), "at most ten named: {reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    use super::*;

    const CLEAR: Standing = Standing { balance_minor: 0, open_invoices: 0 };

    #[test]
    fn cleared_only_when_money_moved_and_nothing_is_owed() {
        assert!(reports_cleared(true, CLEAR));
        assert!(!reports_cleared(false, CLEAR), "an untouched clear account is not reported");
        assert!(!reports_cleared(true, Standing { balance_minor: -1, open_invoices: 0 }));
        assert!(!reports_cleared(true, Standing { balance_minor: 0, open_invoices: 1 }));
    }

    #[test]
    fn terminations_are_held_with_the_amount() {
        assert_eq!(termination_step(CLEAR, "CNY", "A"), TerminationStep::Clear);
        assert_eq!(
            termination_step(Standing { balance_minor: 12_000, open_invoices: 1 }, "CNY", "A"),
            TerminationStep::Held { code: "BALANCE_NOT_ZERO", reason: "120.00 CNY is owed on account A".into() }
        );
        assert_eq!(
            termination_step(Standing { balance_minor: -550, open_invoices: 0 }, "CNY", "A"),
            TerminationStep::Held {
                code: "CREDIT_HELD",
                reason: "the customer is owed a refund of 5.50 CNY on account A".into()
            }
        );
        assert!(matches!(
            termination_step(Standing { balance_minor: 0, open_invoices: 2 }, "CNY", "A"),
            TerminationStep::Held { code: "BALANCE_NOT_ZERO", .. }
        ));
    }
}

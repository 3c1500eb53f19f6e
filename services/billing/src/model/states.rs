//! The account (BIL-1) and invoice (BIL-4) state machines.

use super::{AccountStatus, InvoiceStatus, RuleViolation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    Suspend,
    Reactivate,
    /// Closing needs a zero balance and no open invoice.
    Close {
        balance_minor: i64,
        open_invoices: i64,
    },
}

impl AccountStatus {
    pub fn transition(self, event: AccountEvent) -> Result<AccountStatus, RuleViolation> {
        use AccountStatus::*;
        match (self, event) {
            (Closed, _) => Err(RuleViolation::new("ACCOUNT_CLOSED", "the account is closed")),
            (Active, AccountEvent::Suspend) => Ok(Suspended),
            (Suspended, AccountEvent::Reactivate) => Ok(Active),
            (_, AccountEvent::Close { balance_minor, open_invoices }) => {
                if balance_minor != 0 {
                    Err(RuleViolation::new(
                        "BALANCE_NOT_ZERO",
                        format!("the balance is {balance_minor} (minor units); settle or refund it first"),
                    ))
                } else if open_invoices > 0 {
                    Err(RuleViolation::new("OPEN_INVOICES", format!("{open_invoices} invoices are still open")))
                } else {
                    Ok(Closed)
                }
            }
            (from, e) => Err(RuleViolation::new(
                "ILLEGAL_ACCOUNT_CHANGE",
                format!("an account that is {} cannot {e:?}", from.as_str()),
            )),
        }
    }

    /// Whether new charges and invoices may be raised on the account.
    pub fn may_bill(self) -> Result<(), RuleViolation> {
        match self {
            AccountStatus::Active => Ok(()),
            other => Err(RuleViolation::new("ACCOUNT_NOT_ACTIVE", format!("the account is {}", other.as_str()))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceEvent {
    Issue,
    Void {
        paid_minor: i64,
    },
    /// Payments and credits applied; the status follows what is paid.
    Settle {
        paid_minor: i64,
        total_minor: i64,
    },
}

impl InvoiceStatus {
    pub fn transition(self, event: InvoiceEvent) -> Result<InvoiceStatus, RuleViolation> {
        use InvoiceStatus::*;
        match (self, event) {
            (Void, _) => Err(RuleViolation::new("INVOICE_VOID", "the invoice is void")),
            (Draft, InvoiceEvent::Issue) => Ok(Issued),
            (_, InvoiceEvent::Issue) => Err(RuleViolation::new("INVOICE_ISSUED", "the invoice was already issued")),
            (Draft, InvoiceEvent::Void { .. }) => Ok(Void),
            (Issued, InvoiceEvent::Void { paid_minor: 0 }) => Ok(Void),
            (Paid, InvoiceEvent::Void { .. })
            | (PartlyPaid, InvoiceEvent::Void { .. })
            | (Issued, InvoiceEvent::Void { .. }) => Err(RuleViolation::new(
                "INVOICE_HAS_PAYMENTS",
                "payments were applied to this invoice; settle it with a credit note instead",
            )),
            (Draft, InvoiceEvent::Settle { .. }) => {
                Err(RuleViolation::new("INVOICE_NOT_ISSUED", "a draft invoice cannot be paid"))
            }
            (_, InvoiceEvent::Settle { paid_minor, total_minor }) => Ok(if paid_minor >= total_minor {
                Paid
            } else if paid_minor > 0 {
                PartlyPaid
            } else {
                Issued
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_close_only_when_settled() {
        use AccountStatus::*;
        assert_eq!(Active.transition(AccountEvent::Suspend), Ok(Suspended));
        assert_eq!(Suspended.transition(AccountEvent::Reactivate), Ok(Active));
        assert_eq!(Active.transition(AccountEvent::Close { balance_minor: 0, open_invoices: 0 }), Ok(Closed));
        assert_eq!(
            Active.transition(AccountEvent::Close { balance_minor: -1, open_invoices: 0 }).map_err(|e| e.reason),
            Err("BALANCE_NOT_ZERO")
        );
        assert_eq!(
            Suspended.transition(AccountEvent::Close { balance_minor: 0, open_invoices: 2 }).map_err(|e| e.reason),
            Err("OPEN_INVOICES")
        );
        for e in [
            AccountEvent::Suspend,
            AccountEvent::Reactivate,
            AccountEvent::Close { balance_minor: 0, open_invoices: 0 },
        ] {
            assert_eq!(Closed.transition(e).map_err(|e| e.reason), Err("ACCOUNT_CLOSED"));
        }
        assert!(Active.transition(AccountEvent::Reactivate).is_err());
        assert!(Suspended.transition(AccountEvent::Suspend).is_err());
        assert!(Suspended.may_bill().is_err() && Active.may_bill().is_ok());
    }

    #[test]
    fn invoices_follow_issue_void_and_payments() {
        use InvoiceStatus::*;
        assert_eq!(Draft.transition(InvoiceEvent::Issue), Ok(Issued));
        assert_eq!(Draft.transition(InvoiceEvent::Void { paid_minor: 0 }), Ok(Void));
        assert_eq!(Issued.transition(InvoiceEvent::Void { paid_minor: 0 }), Ok(Void));
        assert!(Issued.transition(InvoiceEvent::Void { paid_minor: 1 }).is_err());
        assert!(Paid.transition(InvoiceEvent::Void { paid_minor: 0 }).is_err());
        assert_eq!(Issued.transition(InvoiceEvent::Settle { paid_minor: 5, total_minor: 10 }), Ok(PartlyPaid));
        assert_eq!(PartlyPaid.transition(InvoiceEvent::Settle { paid_minor: 10, total_minor: 10 }), Ok(Paid));
        assert!(Draft.transition(InvoiceEvent::Settle { paid_minor: 1, total_minor: 10 }).is_err());
        for s in InvoiceStatus::ALL {
            if *s != Draft {
                assert!(s.transition(InvoiceEvent::Issue).is_err(), "{s:?} issued twice");
            }
            if *s != Void {
                continue;
            }
            for e in [
                InvoiceEvent::Issue,
                InvoiceEvent::Void { paid_minor: 0 },
                InvoiceEvent::Settle { paid_minor: 0, total_minor: 0 },
            ] {
                assert_eq!(s.transition(e).map_err(|e| e.reason), Err("INVOICE_VOID"));
            }
        }
    }
}

//! Who may do what in billing (SPEC staff roles). Takings and balances are
//! finance's business: other staff get PERMISSION_DENIED.

use crm_domain::Role;

/// Open accounts.
pub const ACCOUNT_OPENERS: &[Role] = &[Role::Finance, Role::Cashier, Role::Admin, Role::System];
/// Suspend, reactivate and close accounts; void invoices; refund credit.
pub const FINANCE: &[Role] = &[Role::Finance, Role::Admin];
/// Raise and issue invoices, issue credit notes (system: from events).
pub const BILLERS: &[Role] = &[Role::Finance, Role::Admin, Role::System];
/// Take payments (system: on-site collections reported by dispatch).
pub const COLLECTORS: &[Role] = &[Role::Cashier, Role::Finance, Role::Admin, Role::System];
/// Read accounts, invoices and statements.
pub const READERS: &[Role] =
    &[Role::Finance, Role::Cashier, Role::Admin, Role::Auditor, Role::SeniorManager, Role::System];
/// Arrears reports.
pub const ARREARS_READERS: &[Role] = &[Role::Finance, Role::Admin, Role::Auditor, Role::SeniorManager];
/// Tariffs and the catalogue are changed by admins only (BIL-2).
pub const PRICE_ADMINS: &[Role] = &[Role::Admin];
/// Read tariffs and the catalogue.
pub const PRICE_READERS: &[Role] = &[
    Role::Finance,
    Role::Cashier,
    Role::Admin,
    Role::Auditor,
    Role::SeniorManager,
    Role::System,
    Role::Dispatcher,
    Role::Technician,
];
/// Send meter readings to billing (BIL-3): meter readers' handhelds, the
/// dispatch service, finance.
pub const READING_SOURCES: &[Role] = &[Role::MeterReader, Role::System, Role::Finance, Role::Admin];
/// Run a cash-desk shift (BIL-8).
pub const CASHIERS: &[Role] = &[Role::Cashier];
/// Read shifts: a cashier their own, finance all (BIL-8: takings are never
/// visible to other staff).
pub const SHIFT_READERS: &[Role] = &[Role::Cashier, Role::Finance, Role::Admin, Role::Auditor];
/// The daily summary for finance.
pub const SUMMARY_READERS: &[Role] = &[Role::Finance, Role::Admin, Role::Auditor, Role::SeniorManager];

/// BIL-8: a cashier takes payments only within their open shift; finance,
/// admins and the system (on-site collections) do not work in shifts.
pub fn takes_payments_in_a_shift(has: impl Fn(Role) -> bool) -> bool {
    has(Role::Cashier) && ![Role::Finance, Role::Admin, Role::System].into_iter().any(has)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_cashier_works_in_a_shift() {
        let with = |roles: &'static [Role]| move |r: Role| roles.contains(&r);
        assert!(takes_payments_in_a_shift(with(&[Role::Cashier])));
        assert!(!takes_payments_in_a_shift(with(&[Role::Cashier, Role::Finance])));
        assert!(!takes_payments_in_a_shift(with(&[Role::Finance])));
        assert!(!takes_payments_in_a_shift(with(&[Role::System])));
    }
}

//! Who may do what with complaints (CMP-3..CMP-9), by role. Every complaint
//! is visible to every reader role: tokens carry a branch but no department,
//! so a department head sees all complaints and finds theirs by the
//! `department` filter. Sales do not read complaints here (they learn of
//! them through events); the policy table in `api` enforces these sets.

use crm_domain::Role;

use super::{Retest, RuleViolation};

/// May read complaints, due lists and the deadline policy.
pub const READERS: &[Role] = &[
    Role::ServiceDesk,
    Role::DeptHead,
    Role::Office,
    Role::QualityManager,
    Role::SeniorManager,
    Role::Admin,
    Role::Auditor,
    Role::System,
];
/// Registers complaints as the customer lodges them (CMP-1).
pub const INTAKE: &[Role] = &[Role::ServiceDesk, Role::Office, Role::QualityManager];
/// Accepts or rejects (CMP-3).
pub const DESK: &[Role] = &[Role::ServiceDesk];
/// Investigate and resolve at whatever level the complaint sits (CMP-4).
pub const INVESTIGATORS: &[Role] = &[Role::DeptHead, Role::Office, Role::SeniorManager];
/// Escalate: a department that cannot handle it, the office, quality.
pub const ESCALATORS: &[Role] = &[Role::DeptHead, Role::Office, Role::QualityManager, Role::SeniorManager];
/// Only these may take a complaint to senior management (CMP-4: the office
/// decides what is important).
pub const SENIOR_ESCALATORS: &[Role] = &[Role::Office, Role::QualityManager, Role::SeniorManager];
/// Record the review and re-test of test data (CMP-5).
pub const RETESTERS: &[Role] = &[Role::DeptHead, Role::Office, Role::QualityManager];
/// The authorized signatory for amended reports (CMP-5).
pub const SIGNATORIES: &[Role] = &[Role::QualityManager];
/// Promise an answer time (CMP-6): whoever talks to the customer or handles it.
pub const COMMITTERS: &[Role] = &[Role::ServiceDesk, Role::DeptHead, Role::Office, Role::SeniorManager];
/// Send the written answer and record the customer's feedback (CMP-7).
pub const RESPONDERS: &[Role] = &[Role::ServiceDesk, Role::Office, Role::QualityManager];
/// Propose a compensation (CMP-8).
pub const PROPOSERS: &[Role] = &[Role::DeptHead, Role::Office, Role::QualityManager, Role::SeniorManager];
/// Approve a compensation: managers (CMP-8), never the proposer.
pub const APPROVERS: &[Role] = &[Role::SeniorManager, Role::QualityManager];
/// Change the deadline policy (CMP-6).
pub const POLICY_ADMINS: &[Role] = &[Role::Admin];
/// Read the reports (CMP-9).
pub const ANALYSTS: &[Role] = &[Role::QualityManager, Role::SeniorManager, Role::Office, Role::Admin, Role::Auditor];

/// PERMISSION_DENIED with a stable reason (shared by every service).
pub use crm_domain::Denied;

/// CMP-5: the signatory checks the work of others, not their own.
pub fn may_approve_amendment(approver: &str, retest: &Retest) -> Result<(), Denied> {
    if retest.testers.iter().any(|t| t == approver) || retest.recorded_by == approver {
        return Err(Denied::new(
            "SIGNATORY_NOT_INDEPENDENT",
            "the authorized signatory must not be one of the testers or the person who recorded the re-test (CMP-5)",
        ));
    }
    Ok(())
}

/// CMP-8: four eyes on money.
pub fn may_approve_compensation(approver: &str, proposed_by: &str) -> Result<(), RuleViolation> {
    if approver == proposed_by {
        return Err(RuleViolation::new(
            "APPROVER_IS_PROPOSER",
            "a compensation is approved by a manager other than the one who proposed it (CMP-8)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_and_sales_never_write() {
        for set in [INTAKE, DESK, INVESTIGATORS, ESCALATORS, RETESTERS, SIGNATORIES, COMMITTERS, RESPONDERS] {
            assert!(!set.contains(&Role::Auditor));
            assert!(!set.contains(&Role::Sales));
        }
        for set in [PROPOSERS, APPROVERS, POLICY_ADMINS] {
            assert!(!set.contains(&Role::Auditor));
        }
        assert!(READERS.contains(&Role::Auditor));
        assert!(!READERS.contains(&Role::Sales));
        assert!(SENIOR_ESCALATORS.iter().all(|r| ESCALATORS.contains(r)));
    }
}

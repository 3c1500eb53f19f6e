//! CUS-13 visibility and CUS-3 ownership rules: which customers a caller sees
//! and may change, and who owns what they register or reassign.
//!
//! Scopes, broadest role wins: senior_manager, admin, auditor and system see
//! every customer; sales_manager, branch_manager and the front-line roles that
//! serve any customer of their branch (service_desk, dispatcher, cashier) see
//! their branch; a salesperson sees the customers they own. A customer outside
//! the caller's scope does not exist for them (NOT_FOUND); a role that may
//! not call an RPC at all gets PERMISSION_DENIED (policy table in `api`).

use crm_domain::Role;
use crm_platform::Principal;

use super::{Customer, RuleViolation, Stage};

pub const READERS: &[Role] = &[
    Role::Sales,
    Role::SalesManager,
    Role::BranchManager,
    Role::SeniorManager,
    Role::ServiceDesk,
    Role::Dispatcher,
    Role::Cashier,
    Role::Admin,
    Role::Auditor,
    Role::System,
];
/// May register customers.
pub const REGISTRARS: &[Role] =
    &[Role::Sales, Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::Admin, Role::System];
/// May edit profiles, contacts and addresses and move the lifecycle.
pub const EDITORS: &[Role] = &[Role::Sales, Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::Admin];
/// Managers: set classification (CUS-8) and reassign owners (CUS-3).
pub const MANAGERS: &[Role] = &[Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::Admin];
/// Set classification: managers, and `system` for the tier recomputation
/// from behaviour (CUS-8, fed by billing and complaints events).
pub const CLASSIFIERS: &[Role] =
    &[Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::Admin, Role::System];

/// Approve planned visits (CUS-7).
pub const VISIT_APPROVERS: &[Role] = &[Role::BranchManager, Role::SeniorManager, Role::Admin];
/// Review visit minutes: the sales department's manager (CUS-7).
pub const MINUTES_REVIEWERS: &[Role] = &[Role::SalesManager, Role::SeniorManager, Role::Admin];
/// Record survey answers (CUS-10): sales and the service desk take surveys.
pub const SURVEY_TAKERS: &[Role] =
    &[Role::Sales, Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::ServiceDesk, Role::Admin];
/// Workflow reports (CUS-4, CUS-5, CUS-10): salespeople see their own figures.
pub const REPORT_READERS: &[Role] =
    &[Role::Sales, Role::SalesManager, Role::BranchManager, Role::SeniorManager, Role::Admin, Role::Auditor];

/// Read the audit trail (CUS-13).
pub const AUDIT_READERS: &[Role] = &[Role::Auditor, Role::SeniorManager, Role::Admin];

const ALL_SCOPE: &[Role] = &[Role::SeniorManager, Role::Admin, Role::Auditor, Role::System];
const BRANCH_SCOPE: &[Role] =
    &[Role::SalesManager, Role::BranchManager, Role::ServiceDesk, Role::Dispatcher, Role::Cashier];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Branch(String),
    Own(String),
}

/// PERMISSION_DENIED with a stable reason (shared by every service).
pub use crm_domain::Denied;

impl Scope {
    /// The caller's scope using only the roles that `allowed` lets through
    /// (the policy table already checked that at least one applies).
    pub fn of(p: &Principal, allowed: &[Role]) -> Result<Scope, Denied> {
        let has = |set: &[Role]| p.roles.iter().any(|r| allowed.contains(r) && set.contains(r));
        if has(ALL_SCOPE) {
            Ok(Scope::All)
        } else if has(BRANCH_SCOPE) {
            match &p.branch {
                Some(b) => Ok(Scope::Branch(b.clone())),
                None => Err(Denied::new("BRANCH_REQUIRED", "your token carries no branch; ask an admin for one")),
            }
        } else if p.roles.iter().any(|r| *r == Role::Sales && allowed.contains(r)) {
            Ok(Scope::Own(p.sub.clone()))
        } else {
            Err(Denied::new("ROLE_NOT_ALLOWED", "none of your roles may do this"))
        }
    }

    pub fn covers(&self, c: &Customer) -> bool {
        self.covers_owner(&c.branch, &c.owner_id)
    }

    /// Whether a customer of `branch` owned by `owner_id` is visible.
    pub fn covers_owner(&self, branch: &str, owner_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Branch(b) => branch == b,
            Scope::Own(sub) => owner_id == sub,
        }
    }
}

/// Owner and branch of a customer being registered. A salesperson owns what
/// they register (CUS-3); managers may register for someone in their branch;
/// senior managers, admins and system callers for anyone anywhere.
pub fn registration_owner(
    p: &Principal,
    owner: Option<&str>,
    branch: Option<&str>,
) -> Result<(String, String), Denied> {
    let own_branch = p.branch.clone().unwrap_or_default();
    match Scope::of(p, REGISTRARS)? {
        Scope::All => Ok((owner.unwrap_or(&p.sub).to_string(), branch.map(str::to_string).unwrap_or(own_branch))),
        Scope::Branch(b) => {
            if branch.is_some_and(|x| x != b) {
                return Err(Denied::new("OTHER_BRANCH", "you can register customers only for your own branch"));
            }
            Ok((owner.unwrap_or(&p.sub).to_string(), b))
        }
        Scope::Own(sub) => {
            if owner.is_some_and(|o| o != sub) {
                return Err(Denied::new(
                    "OWNER_IS_REGISTRAR",
                    "a salesperson owns the customers they register; a manager can reassign (CUS-3)",
                ));
            }
            if branch.is_some_and(|x| x != own_branch) {
                return Err(Denied::new("OTHER_BRANCH", "you can register customers only for your own branch"));
            }
            Ok((sub, own_branch))
        }
    }
}

/// The owner and branch after a manager's reassignment (CUS-3).
pub fn reassignment(
    p: &Principal,
    current: &Customer,
    new_owner: &str,
    new_branch: Option<&str>,
) -> Result<(String, String), ReassignError> {
    let scope = Scope::of(p, MANAGERS)?;
    if let Scope::Branch(b) = &scope
        && new_branch.is_some_and(|x| x != b)
    {
        return Err(Denied::new("OTHER_BRANCH", "you can assign customers only within your branch").into());
    }
    if current.stage == Stage::Terminated {
        return Err(RuleViolation::new("CUSTOMER_TERMINATED", "a terminated customer cannot be reassigned").into());
    }
    let branch = new_branch.unwrap_or(&current.branch).to_string();
    if current.owner_id == new_owner && current.branch == branch {
        return Err(RuleViolation::new("OWNER_UNCHANGED", format!("{new_owner} already owns this customer")).into());
    }
    Ok((new_owner.to_string(), branch))
}

#[derive(Debug, thiserror::Error)]
pub enum ReassignError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Rule(#[from] RuleViolation),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(sub: &str, roles: &[Role], branch: Option<&str>) -> Principal {
        Principal { sub: sub.into(), roles: roles.to_vec(), branch: branch.map(Into::into) }
    }

    fn customer(owner: &str, branch: &str) -> Customer {
        crate::model::sample_customer(owner, branch)
    }

    #[test]
    fn scopes_follow_the_broadest_allowed_role() {
        assert_eq!(Scope::of(&who("u", &[Role::Sales], Some("bj")), READERS), Ok(Scope::Own("u".into())));
        assert_eq!(Scope::of(&who("m", &[Role::SalesManager], Some("bj")), READERS), Ok(Scope::Branch("bj".into())));
        assert_eq!(Scope::of(&who("a", &[Role::Auditor], None), READERS), Ok(Scope::All));
        assert_eq!(Scope::of(&who("x", &[Role::Sales, Role::SeniorManager], None), READERS), Ok(Scope::All));
        // The auditor reads everything but edits nothing.
        assert!(Scope::of(&who("a", &[Role::Auditor], None), EDITORS).is_err());
        assert_eq!(
            Scope::of(&who("m", &[Role::BranchManager], None), READERS).map_err(|d| d.reason),
            Err("BRANCH_REQUIRED")
        );
    }

    #[test]
    fn salespeople_see_only_their_own_customers() {
        let s = Scope::Own("u1".into());
        assert!(s.covers(&customer("u1", "bj")));
        assert!(!s.covers(&customer("u2", "bj")));
        let b = Scope::Branch("bj".into());
        assert!(b.covers(&customer("u2", "bj")));
        assert!(!b.covers(&customer("u2", "sh")));
    }

    #[test]
    fn registrar_owns_what_they_register() {
        let sales = who("u1", &[Role::Sales], Some("bj"));
        assert_eq!(registration_owner(&sales, None, None), Ok(("u1".into(), "bj".into())));
        assert_eq!(registration_owner(&sales, Some("u2"), None).map_err(|d| d.reason), Err("OWNER_IS_REGISTRAR"));
        let mgr = who("m", &[Role::SalesManager], Some("bj"));
        assert_eq!(registration_owner(&mgr, Some("u2"), None), Ok(("u2".into(), "bj".into())));
        assert_eq!(registration_owner(&mgr, Some("u2"), Some("sh")).map_err(|d| d.reason), Err("OTHER_BRANCH"));
        let admin = who("root", &[Role::Admin], None);
        assert_eq!(registration_owner(&admin, Some("u9"), Some("sh")), Ok(("u9".into(), "sh".into())));
    }

    #[test]
    fn managers_reassign_within_their_branch() {
        let mgr = who("m", &[Role::SalesManager], Some("bj"));
        let c = customer("u1", "bj");
        assert_eq!(reassignment(&mgr, &c, "u2", None).ok(), Some(("u2".into(), "bj".into())));
        assert!(matches!(reassignment(&mgr, &c, "u2", Some("sh")), Err(ReassignError::Denied(_))));
        assert!(matches!(reassignment(&mgr, &c, "u1", None), Err(ReassignError::Rule(_))));
        let mut t = customer("u1", "bj");
        t.stage = Stage::Terminated;
        assert!(matches!(reassignment(&mgr, &t, "u2", None), Err(ReassignError::Rule(_))));
        let senior = who("s", &[Role::SeniorManager], None);
        assert_eq!(reassignment(&senior, &c, "u3", Some("sh")).ok(), Some(("u3".into(), "sh".into())));
    }
}

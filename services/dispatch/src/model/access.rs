//! Who may do what with work orders and technicians (DSP-2..DSP-4), by role.
//! The policy table in `api` enforces these sets per RPC; the rules that
//! depend on the order (the manager's approval, the assigned technician) are
//! decided here.

use crm_domain::Role;

use super::{Kind, WorkOrder};
use crm_platform::Principal;

/// May read work orders, technicians and proposals.
pub const READERS: &[Role] =
    &[Role::Dispatcher, Role::ServiceManager, Role::Technician, Role::Admin, Role::Auditor, Role::System];
/// Take calls and letters, create and submit work orders (DSP-2).
pub const INTAKE: &[Role] = &[Role::Dispatcher, Role::ServiceManager, Role::ServiceDesk];
/// Approve (installation and repair: the service manager only, see
/// `may_approve`), cancel, close.
pub const SUPERVISORS: &[Role] = &[Role::Dispatcher, Role::ServiceManager];
/// Plan: propose, assign, auto-assign (DSP-3), watch the parts targets.
pub const PLANNERS: &[Role] = &[Role::Dispatcher, Role::ServiceManager];
/// Work the order in the field: checklist, travel, arrival, completion.
pub const FIELD: &[Role] = &[Role::Technician];
/// Register technicians and catalogue parts.
pub const TEAM_ADMINS: &[Role] = &[Role::ServiceManager, Role::Admin];
/// Register installed devices (DSP-1): the technician who installed it or
/// the office.
pub const INSTALLERS: &[Role] = &[Role::Technician, Role::Dispatcher, Role::ServiceManager];
/// Receive the technicians' cash (DSP-6).
pub const FINANCE: &[Role] = &[Role::Finance];
/// Register meters on routes (DSP-7).
pub const METER_ADMINS: &[Role] = &[Role::ServiceManager, Role::Dispatcher];
/// Send readings from the field (DSP-7).
pub const METER_READERS: &[Role] = &[Role::MeterReader, Role::Technician];
/// See routes, their schedules and meters.
pub const ROUTE_READERS: &[Role] = &[
    Role::MeterReader,
    Role::Dispatcher,
    Role::ServiceManager,
    Role::Technician,
    Role::Admin,
    Role::Auditor,
    Role::System,
];
/// Read-rate reports (DSP-7).
pub const REPORT_READERS: &[Role] = &[Role::ServiceManager, Role::Dispatcher, Role::Admin, Role::Auditor];
/// See cash not yet handed over (DSP-6).
pub const CASH_READERS: &[Role] = &[Role::Finance, Role::ServiceManager, Role::Auditor];

/// PERMISSION_DENIED with a stable reason (shared by every service).
pub use crm_domain::Denied;

/// DSP-2: installation and repair orders are approved by the service manager.
pub fn may_approve(who: &Principal, kind: Kind) -> Result<(), Denied> {
    if kind.needs_manager_approval() && !who.has(Role::ServiceManager) {
        return Err(Denied::new(
            "SERVICE_MANAGER_APPROVAL_REQUIRED",
            format!("{} orders are approved by the service manager (DSP-2)", kind.as_str()),
        ));
    }
    Ok(())
}

/// Which work orders a caller may see (CUS-13, need to know): a technician
/// only those assigned to them (they carry customers' names, phones and
/// addresses); a dispatcher or service manager whose token names a branch
/// the orders of that branch's customers (and orders of no known branch);
/// office roles without a branch, admins, auditors and the system every
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrderScope {
    #[default]
    All,
    Branch(String),
    /// The technician's token subject.
    AssignedTo(String),
}

impl OrderScope {
    pub fn of(who: &Principal) -> OrderScope {
        if who.has_any(&[Role::Admin, Role::Auditor, Role::System]) {
            return OrderScope::All;
        }
        if who.has_any(&[Role::Dispatcher, Role::ServiceManager]) {
            return match who.branch.as_deref().filter(|b| !b.is_empty()) {
                Some(b) => OrderScope::Branch(b.to_string()),
                None => OrderScope::All,
            };
        }
        OrderScope::AssignedTo(who.sub.clone())
    }

    /// Whether the order is in scope; `technician_sub` is the token subject
    /// of the technician it is assigned to, if any.
    pub fn covers(&self, order: &WorkOrder, technician_sub: Option<&str>) -> bool {
        match self {
            OrderScope::All => true,
            OrderScope::Branch(b) => order.branch == *b || order.branch.is_empty(),
            OrderScope::AssignedTo(sub) => technician_sub == Some(sub.as_str()),
        }
    }
}

/// Field steps are taken by the technician the order is assigned to;
/// `technician_sub` is that technician's token subject.
pub fn may_work(who: &Principal, order: &WorkOrder, technician_sub: Option<&str>) -> Result<(), Denied> {
    if order.technician_id.is_some() && technician_sub == Some(who.sub.as_str()) {
        return Ok(());
    }
    Err(Denied::new("NOT_ASSIGNED_TECHNICIAN", "only the technician the work order is assigned to may do this"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(roles: &[Role], sub: &str) -> Principal {
        Principal { sub: sub.into(), roles: roles.to_vec(), branch: None }
    }

    #[test]
    fn dispatchers_approve_routine_work_only() {
        let d = who(&[Role::Dispatcher], "d");
        let m = who(&[Role::ServiceManager], "m");
        for k in Kind::ALL {
            assert!(may_approve(&m, *k).is_ok());
            assert_eq!(may_approve(&d, *k).is_ok(), !k.needs_manager_approval(), "{k:?}");
        }
    }

    /// Issue 14 (CUS-13): technicians see their own orders, branch
    /// dispatchers their territory, the office everything.
    #[test]
    fn each_role_sees_the_orders_it_needs() {
        let t = who(&[Role::Technician], "t1");
        assert_eq!(OrderScope::of(&t), OrderScope::AssignedTo("t1".into()));
        let mut d = who(&[Role::Dispatcher], "d");
        assert_eq!(OrderScope::of(&d), OrderScope::All);
        d.branch = Some("north".into());
        assert_eq!(OrderScope::of(&d), OrderScope::Branch("north".into()));
        let both = Principal { branch: Some("north".into()), ..who(&[Role::Technician, Role::Admin], "x") };
        assert_eq!(OrderScope::of(&both), OrderScope::All);
    }

    #[test]
    fn auditors_and_technicians_never_plan_or_approve() {
        for set in [INTAKE, SUPERVISORS, PLANNERS, TEAM_ADMINS, FINANCE] {
            assert!(!set.contains(&Role::Auditor));
            assert!(!set.contains(&Role::Technician));
        }
        assert!(READERS.contains(&Role::Auditor));
    }
}

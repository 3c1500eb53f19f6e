//! Staff roles (SPEC, "Staff roles"). A token carries one or more of these.

use std::{fmt, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Sales,
    SalesManager,
    BranchManager,
    SeniorManager,
    ServiceDesk,
    DeptHead,
    QualityManager,
    Office,
    Dispatcher,
    ServiceManager,
    Technician,
    MeterReader,
    Cashier,
    Finance,
    Admin,
    Auditor,
    System,
}

impl Role {
    pub const ALL: [Role; 17] = [
        Role::Sales,
        Role::SalesManager,
        Role::BranchManager,
        Role::SeniorManager,
        Role::ServiceDesk,
        Role::DeptHead,
        Role::QualityManager,
        Role::Office,
        Role::Dispatcher,
        Role::ServiceManager,
        Role::Technician,
        Role::MeterReader,
        Role::Cashier,
        Role::Finance,
        Role::Admin,
        Role::Auditor,
        Role::System,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Sales => "sales",
            Role::SalesManager => "sales_manager",
            Role::BranchManager => "branch_manager",
            Role::SeniorManager => "senior_manager",
            Role::ServiceDesk => "service_desk",
            Role::DeptHead => "dept_head",
            Role::QualityManager => "quality_manager",
            Role::Office => "office",
            Role::Dispatcher => "dispatcher",
            Role::ServiceManager => "service_manager",
            Role::Technician => "technician",
            Role::MeterReader => "meter_reader",
            Role::Cashier => "cashier",
            Role::Finance => "finance",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::System => "system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::Invalid::new(format!("unknown role {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }
}

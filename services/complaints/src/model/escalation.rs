//! CMP-4 escalation: department → office → senior management, only upwards.

use super::{EscalationLevel, RuleViolation};

impl EscalationLevel {
    fn rank(self) -> u8 {
        match self {
            EscalationLevel::Department => 0,
            EscalationLevel::Office => 1,
            EscalationLevel::SeniorManagement => 2,
        }
    }

    /// The level after escalating to `to`, or the rule that forbids it.
    pub fn raise(self, to: EscalationLevel) -> Result<EscalationLevel, RuleViolation> {
        if to.rank() > self.rank() {
            Ok(to)
        } else {
            Err(RuleViolation::new(
                "ESCALATION_NOT_UPWARD",
                format!("the complaint is already handled by {}; escalation only goes up (CMP-4)", self.as_str()),
            ))
        }
    }

    /// The next level up, for the overdue escalation; none above senior
    /// management.
    pub fn next(self) -> Option<EscalationLevel> {
        match self {
            EscalationLevel::Department => Some(EscalationLevel::Office),
            EscalationLevel::Office => Some(EscalationLevel::SeniorManagement),
            EscalationLevel::SeniorManagement => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EscalationLevel::*;

    #[test]
    fn only_upwards() {
        for &from in EscalationLevel::ALL {
            for &to in EscalationLevel::ALL {
                assert_eq!(from.raise(to).is_ok(), from.rank() < to.rank(), "{from:?} -> {to:?}");
            }
        }
        assert_eq!(Department.raise(SeniorManagement), Ok(SeniorManagement));
        assert_eq!(Office.raise(Department).map_err(|e| e.reason), Err("ESCALATION_NOT_UPWARD"));
        assert_eq!(Department.next(), Some(Office));
        assert_eq!(Office.next(), Some(SeniorManagement));
        assert_eq!(SeniorManagement.next(), None);
    }
}

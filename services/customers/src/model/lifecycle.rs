//! CUS-9 lifecycle: prospect → active ⇄ dormant. `terminated` is reached only
//! through the termination process (CUS-11), never by a stage change, and a
//! terminated customer never comes back.

use super::{RuleViolation, Stage};

impl Stage {
    /// The stage after a requested change, or the rule that forbids it.
    pub fn transition(self, to: Stage) -> Result<Stage, RuleViolation> {
        use Stage::*;
        match (self, to) {
            (Terminated, _) => Err(RuleViolation::new(
                "CUSTOMER_TERMINATED",
                "the customer is terminated; its record is kept read-only (CUS-11)",
            )),
            (_, Terminated) => Err(RuleViolation::new(
                "TERMINATION_REQUIRES_PROCESS",
                "a customer is terminated through the termination process, not a stage change (CUS-11)",
            )),
            (from, to) if from == to => {
                Err(RuleViolation::new("STAGE_UNCHANGED", format!("the customer is already {}", to.as_str())))
            }
            (Prospect, Active) | (Active, Dormant) | (Dormant, Active) => Ok(to),
            (from, to) => Err(RuleViolation::new(
                "ILLEGAL_STAGE_CHANGE",
                format!("a customer cannot go from {} to {} (CUS-9)", from.as_str(), to.as_str()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    #[test]
    fn every_pair_is_decided_as_the_rule_says() {
        let allowed = [(Prospect, Active), (Active, Dormant), (Dormant, Active)];
        for &from in Stage::ALL {
            for &to in Stage::ALL {
                let got = from.transition(to);
                if allowed.contains(&(from, to)) {
                    assert_eq!(got, Ok(to), "{from:?} -> {to:?}");
                } else {
                    assert!(got.is_err(), "{from:?} -> {to:?} must be refused");
                }
            }
        }
    }

    #[test]
    fn refusals_name_the_rule() {
        assert_eq!(Active.transition(Terminated).map_err(|e| e.reason), Err("TERMINATION_REQUIRES_PROCESS"));
        assert_eq!(Terminated.transition(Active).map_err(|e| e.reason), Err("CUSTOMER_TERMINATED"));
        assert_eq!(Prospect.transition(Dormant).map_err(|e| e.reason), Err("ILLEGAL_STAGE_CHANGE"));
        assert_eq!(Active.transition(Active).map_err(|e| e.reason), Err("STAGE_UNCHANGED"));
    }
}

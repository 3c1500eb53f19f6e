//! CUS-12 key-account plans: only key and VIP customers have one, one per
//! year; the contract moves data collection → business review → discussion →
//! draft contract → negotiation → signed, one stage at a time.

use super::{RuleViolation, ValueTier};

super::vocabulary!(ContractStage {
    DataCollection = "data_collection",
    BusinessReview = "business_review",
    Discussion = "discussion",
    DraftContract = "draft_contract",
    Negotiation = "negotiation",
    Signed = "signed",
});

impl ContractStage {
    pub fn advance(self, to: ContractStage) -> Result<ContractStage, RuleViolation> {
        let pos = |s: ContractStage| ContractStage::ALL.iter().position(|x| *x == s).unwrap_or(0);
        if self == ContractStage::Signed {
            return Err(RuleViolation::new(
                "CONTRACT_SIGNED",
                "the contract is signed; the plan's stages are complete",
            ));
        }
        if pos(to) == pos(self) + 1 {
            Ok(to)
        } else {
            Err(RuleViolation::new(
                "ILLEGAL_CONTRACT_STAGE",
                format!(
                    "from {} the next stage is {} (CUS-12)",
                    self.as_str(),
                    ContractStage::ALL[pos(self) + 1].as_str()
                ),
            ))
        }
    }
}

/// Only key and VIP customers get an annual account plan.
pub fn may_have_plan(tier: ValueTier) -> Result<(), RuleViolation> {
    match tier {
        ValueTier::Key | ValueTier::Vip => Ok(()),
        _ => Err(RuleViolation::new("NOT_KEY_ACCOUNT", "account plans are for key and VIP customers (CUS-12)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_advance_one_at_a_time() {
        for (i, &s) in ContractStage::ALL.iter().enumerate() {
            for (j, &t) in ContractStage::ALL.iter().enumerate() {
                let ok = s.advance(t).is_ok();
                assert_eq!(ok, j == i + 1, "{s:?} -> {t:?}");
            }
        }
        assert_eq!(ContractStage::Signed.advance(ContractStage::Signed).map_err(|e| e.reason), Err("CONTRACT_SIGNED"));
    }

    #[test]
    fn plans_are_for_key_accounts() {
        assert!(may_have_plan(ValueTier::Vip).is_ok());
        assert!(may_have_plan(ValueTier::Key).is_ok());
        assert!(may_have_plan(ValueTier::General).is_err());
        assert!(may_have_plan(ValueTier::Potential).is_err());
    }
}

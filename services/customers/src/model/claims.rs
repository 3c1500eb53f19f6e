//! CUS-2/CUS-3 ownership claims. A registration that matches an existing
//! customer by identity is refused: the earlier registration wins. The
//! salesperson refused may claim the customer; a sales manager has the final
//! word, granting (the customer moves to the claimant) or rejecting.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use uuid::Uuid;

use super::{Customer, RuleViolation};

super::vocabulary!(ClaimState { Pending = "pending", Granted = "granted", Rejected = "rejected" });

#[derive(Debug, Clone, PartialEq)]
pub struct OwnershipClaim {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub claimant_id: String,
    pub claimant_branch: String,
    /// The owner when the claim was filed.
    pub owner_id: String,
    pub reason: String,
    pub state: ClaimState,
    pub filed_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub version: i64,
}

impl OwnershipClaim {
    /// A claim by `claimant` (of `claimant_branch`, or the customer's branch
    /// when the token names none) on `c`.
    pub fn file(
        c: &Customer,
        claimant: &str,
        claimant_branch: Option<&str>,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<OwnershipClaim, RuleViolation> {
        if c.owner_id == claimant {
            return Err(RuleViolation::new("CLAIM_OWN_CUSTOMER", "you already own this customer"));
        }
        if c.stage == super::Stage::Terminated {
            return Err(RuleViolation::new("CUSTOMER_TERMINATED", "a terminated customer cannot be claimed"));
        }
        Ok(OwnershipClaim {
            id: Uuid::now_v7(),
            customer_id: c.id,
            claimant_id: claimant.to_string(),
            claimant_branch: claimant_branch.filter(|b| !b.is_empty()).unwrap_or(&c.branch).to_string(),
            owner_id: c.owner_id.clone(),
            reason,
            state: ClaimState::Pending,
            filed_at: now,
            decided_by: None,
            decided_at: None,
            decision_reason: None,
            version: 1,
        })
    }

    /// Records the decision; only a pending claim is decided.
    pub fn decide(&mut self, grant: bool, by: &str, reason: String, now: DateTime<Utc>) -> Result<(), RuleViolation> {
        if self.state != ClaimState::Pending {
            return Err(RuleViolation::new(
                "CLAIM_DECIDED",
                format!(
                    "the claim was already {} by {}",
                    self.state.as_str(),
                    self.decided_by.as_deref().unwrap_or("?")
                ),
            ));
        }
        self.state = if grant { ClaimState::Granted } else { ClaimState::Rejected };
        self.decided_by = Some(by.to_string());
        self.decided_at = Some(now);
        self.decision_reason = Some(reason);
        Ok(())
    }

    pub fn etag(&self) -> String {
        super::etag(self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_filed_on_someone_elses_customer_and_decided_once() {
        let c = crate::model::sample_customer("s1", "bj");
        let now = Utc::now();
        let own = OwnershipClaim::file(&c, "s1", Some("bj"), "mine".into(), now).map_err(|v| v.reason);
        assert_eq!(own.map(|_| ()), Err("CLAIM_OWN_CUSTOMER"));

        let mut claim = OwnershipClaim::file(&c, "s2", None, "visited them in May".into(), now)
            .unwrap_or_else(|v| panic!("{}", v.message));
        assert_eq!(
            (claim.state, claim.owner_id.as_str(), claim.claimant_branch.as_str()),
            (ClaimState::Pending, "s1", "bj")
        );
        assert_eq!(claim.decide(true, "mgr", "first visit was s2's".into(), now), Ok(()));
        assert_eq!(claim.state, ClaimState::Granted);
        let again = claim.decide(false, "mgr2", "no".into(), now).map_err(|v| v.reason);
        assert_eq!(again, Err("CLAIM_DECIDED"));
        assert_eq!((claim.state, claim.decided_by.as_deref()), (ClaimState::Granted, Some("mgr")), "unchanged");

        let mut gone = c.clone();
        gone.stage = crate::model::Stage::Terminated;
        let refused = OwnershipClaim::file(&gone, "s2", Some("sh"), "x".into(), now).map_err(|v| v.reason);
        assert_eq!(refused.map(|_| ()), Err("CUSTOMER_TERMINATED"));
    }
}

//! CUS-8 value tier from behaviour: purchase frequency and amount (billing),
//! complaint count (complaints) and lifetime value. The rule is a policy an
//! admin sets; recomputation is automatic only when the policy says so.

use super::ValueTier;

/// Behaviour over the last 365 days, plus lifetime value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    pub purchases_last_year: i64,
    /// Minor units, in the policy's currency.
    pub purchase_minor_last_year: i64,
    pub complaints_last_year: i64,
    pub lifetime_value_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPolicy {
    pub automatic: bool,
    pub currency: String,
    pub key_min_minor: i64,
    pub vip_min_minor: i64,
    pub max_complaints_for_upgrade: i64,
}

impl TierPolicy {
    /// `vip` needs `vip_min` bought in the year and few complaints; `key`
    /// needs `key_min`; `general` one purchase; otherwise `potential`. A VIP
    /// amount with too many complaints still makes a key customer.
    pub fn tier(&self, f: &Figures) -> ValueTier {
        if f.purchase_minor_last_year >= self.vip_min_minor && f.complaints_last_year <= self.max_complaints_for_upgrade
        {
            ValueTier::Vip
        } else if f.purchase_minor_last_year >= self.key_min_minor {
            ValueTier::Key
        } else if f.purchases_last_year > 0 {
            ValueTier::General
        } else {
            ValueTier::Potential
        }
    }

    /// The thresholds must be ordered and positive.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.key_min_minor <= 0 {
            return Err(("policy.key_min_amount", "must be more than zero"));
        }
        if self.vip_min_minor <= self.key_min_minor {
            return Err(("policy.vip_min_amount", "must be more than key_min_amount"));
        }
        if self.max_complaints_for_upgrade < 0 {
            return Err(("policy.max_complaints_for_upgrade", "must not be negative"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rank(t: ValueTier) -> u8 {
        match t {
            ValueTier::Potential => 0,
            ValueTier::General => 1,
            ValueTier::Key => 2,
            ValueTier::Vip => 3,
        }
    }

    fn policy() -> TierPolicy {
        TierPolicy {
            automatic: true,
            currency: "CNY".into(),
            key_min_minor: 10_000_000,
            vip_min_minor: 50_000_000,
            max_complaints_for_upgrade: 2,
        }
    }

    fn figures(purchases: i64, amount: i64, complaints: i64) -> Figures {
        Figures {
            purchases_last_year: purchases,
            purchase_minor_last_year: amount,
            complaints_last_year: complaints,
            lifetime_value_minor: amount,
        }
    }

    #[test]
    fn thresholds_decide_the_tier() {
        let p = policy();
        assert_eq!(p.tier(&figures(0, 0, 0)), ValueTier::Potential);
        assert_eq!(p.tier(&figures(1, 100, 0)), ValueTier::General);
        assert_eq!(p.tier(&figures(3, 9_999_999, 0)), ValueTier::General);
        assert_eq!(p.tier(&figures(3, 10_000_000, 0)), ValueTier::Key);
        assert_eq!(p.tier(&figures(9, 50_000_000, 2)), ValueTier::Vip);
        assert_eq!(p.tier(&figures(9, 50_000_000, 3)), ValueTier::Key, "too many complaints for VIP");
    }

    #[test]
    fn bad_policies_name_their_field() {
        let mut p = policy();
        p.vip_min_minor = p.key_min_minor;
        assert_eq!(p.check().map_err(|e| e.0), Err("policy.vip_min_amount"));
        p = policy();
        p.key_min_minor = 0;
        assert_eq!(p.check().map_err(|e| e.0), Err("policy.key_min_amount"));
        p = policy();
        p.max_complaints_for_upgrade = -1;
        assert_eq!(p.check().map_err(|e| e.0), Err("policy.max_complaints_for_upgrade"));
        assert_eq!(policy().check(), Ok(()));
    }

    proptest! {
        /// Buying more never lowers the tier; complaining more never raises it.
        #[test]
        fn tier_is_monotonic(p in 0i64..100, a in 0i64..100_000_000, c in 0i64..10, more in 0i64..50_000_000, extra in 0i64..5) {
            let pol = policy();
            let base = figures(p, a, c);
            prop_assert!(rank(pol.tier(&figures(p + 1, a + more, c))) >= rank(pol.tier(&base)));
            prop_assert!(rank(pol.tier(&figures(p, a, c + extra))) <= rank(pol.tier(&base)));
        }
    }
}

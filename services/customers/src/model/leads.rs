//! CUS-3 lead distribution: campaign customers are handed out so that every
//! participating salesperson's number of owned customers ends as close as
//! possible to their capacity-weighted share of everyone's customers.
//!
//! Algorithm ("largest deficit first"): with current counts `c_i`, weights
//! `w_i` (sum `W`) and `n` leads, the fair share after the distribution is
//! `f_i = (Σc + n) · w_i / W`. Each lead goes to the salesperson whose
//! deficit `f_i − count_i` is largest (ties: earlier in the request). Nobody
//! who already holds more than their share gets anything, since customers are
//! never taken away. When nobody starts more than one customer above their
//! share, everyone ends strictly within one customer of it: a person only
//! receives while their deficit is the largest and positive, so a receiver
//! never drops to a deficit of −1 or below, and a deficit of 1 or more at the
//! end would have been larger than the last receiver's, who was chosen
//! instead — a contradiction. Arithmetic is exact (integers scaled by `W`).

/// One participant: current owned customers and capacity weight (≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    pub owned: i64,
    pub weight: u32,
}

/// For each of `leads` customers, the index of the participant who takes it.
pub fn distribute(participants: &[Participant], leads: usize) -> Vec<usize> {
    if participants.is_empty() {
        return Vec::new();
    }
    let total_weight: i128 = participants.iter().map(|p| i128::from(p.weight)).sum();
    let total_after: i128 = participants.iter().map(|p| i128::from(p.owned)).sum::<i128>() + leads as i128;
    // deficit_i · W = f_i·W − count_i·W = total_after·w_i − count_i·W
    let mut scaled: Vec<i128> =
        participants.iter().map(|p| total_after * i128::from(p.weight) - i128::from(p.owned) * total_weight).collect();
    let mut out = Vec::with_capacity(leads);
    for _ in 0..leads {
        let mut best = 0;
        for (i, d) in scaled.iter().enumerate() {
            if *d > scaled[best] {
                best = i;
            }
        }
        scaled[best] -= total_weight;
        out.push(best);
    }
    out
}

/// The weighted fair share of participant `i` after distributing `leads`.
pub fn fair_share(participants: &[Participant], leads: usize, i: usize) -> f64 {
    let total_weight: f64 = participants.iter().map(|p| f64::from(p.weight)).sum();
    let total_after = participants.iter().map(|p| p.owned as f64).sum::<f64>() + leads as f64;
    participants.get(i).map_or(0.0, |p| total_after * f64::from(p.weight) / total_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn finals(ps: &[Participant], leads: usize) -> Vec<i64> {
        let mut counts: Vec<i64> = ps.iter().map(|p| p.owned).collect();
        for i in distribute(ps, leads) {
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn equal_weights_from_zero_split_evenly() {
        let ps = [Participant { owned: 0, weight: 1 }; 3];
        assert_eq!(finals(&ps, 7), vec![3, 2, 2]);
    }

    #[test]
    fn double_capacity_takes_double() {
        let ps = [Participant { owned: 0, weight: 2 }, Participant { owned: 0, weight: 1 }];
        assert_eq!(finals(&ps, 9), vec![6, 3]);
    }

    #[test]
    fn those_behind_catch_up_first() {
        let ps = [Participant { owned: 10, weight: 1 }, Participant { owned: 2, weight: 1 }];
        assert_eq!(finals(&ps, 6), vec![10, 8]);
        // Someone far above their share gets nothing and keeps what they have.
        let ps = [Participant { owned: 50, weight: 1 }, Participant { owned: 0, weight: 1 }];
        assert_eq!(finals(&ps, 4), vec![50, 4]);
    }

    fn participants() -> impl Strategy<Value = Vec<Participant>> {
        proptest::collection::vec((0i64..200, 1u32..10), 1..12)
            .prop_map(|v| v.into_iter().map(|(owned, weight)| Participant { owned, weight }).collect())
    }

    proptest! {
        #[test]
        fn every_lead_is_assigned_once(ps in participants(), leads in 0usize..300) {
            let got = distribute(&ps, leads);
            prop_assert_eq!(got.len(), leads);
            prop_assert!(got.iter().all(|i| *i < ps.len()));
        }

        #[test]
        fn nobody_ends_a_customer_or_more_from_their_share(ps in participants(), leads in 0usize..300) {
            let counts = finals(&ps, leads);
            let feasible = (0..ps.len()).all(|i| (ps[i].owned as f64) < fair_share(&ps, leads, i) + 1.0);
            for i in 0..ps.len() {
                let share = fair_share(&ps, leads, i);
                let received = counts[i] > ps[i].owned;
                // Nobody is pushed a whole customer past their share.
                if received {
                    prop_assert!((counts[i] as f64) < share + 1.0 + 1e-9, "i={} count={} share={}", i, counts[i], share);
                }
                // When the starting point allows it, everyone ends within one customer.
                if feasible {
                    prop_assert!((counts[i] as f64 - share).abs() < 1.0 + 1e-9, "i={} count={} share={}", i, counts[i], share);
                }
            }
        }
    }
}

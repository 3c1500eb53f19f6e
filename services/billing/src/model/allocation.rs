//! BIL-5 allocation: money in favour of the customer (a payment, a credit
//! note, or credit left from earlier) goes to the oldest open invoices
//! first; whatever is left stays as credit.

/// An open invoice and what is still owed on it, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open<Id> {
    pub id: Id,
    pub outstanding: i64,
}

/// How much of `amount` goes to which invoice, and what is left.
pub fn allocate<Id: Copy>(amount: i64, open: &[Open<Id>]) -> (Vec<(Id, i64)>, i64) {
    let mut left = amount.max(0);
    let mut out = Vec::new();
    for inv in open {
        if left == 0 {
            break;
        }
        let take = left.min(inv.outstanding.max(0));
        if take > 0 {
            out.push((inv.id, take));
            left -= take;
        }
    }
    (out, left)
}

/// BIL-5 refunds: which funds give back `amount` of unallocated credit, in
/// the order given (newest first); INSUFFICIENT_CREDIT when they hold less.
pub fn refund_plan<Id: Copy>(amount: i64, funds: &[Open<Id>]) -> Result<Vec<(Id, i64)>, super::RuleViolation> {
    let (plan, short) = allocate(amount, funds);
    if short > 0 {
        let available = amount - short;
        return Err(super::RuleViolation::new(
            "INSUFFICIENT_CREDIT",
            format!("only {available} (minor units) of credit is available"),
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oldest_first_and_the_rest_is_credit() {
        let open = [Open { id: 1, outstanding: 100 }, Open { id: 2, outstanding: 50 }];
        assert_eq!(allocate(120, &open), (vec![(1, 100), (2, 20)], 0));
        assert_eq!(allocate(200, &open), (vec![(1, 100), (2, 50)], 50));
        assert_eq!(allocate(0, &open), (vec![], 0));
    }

    #[test]
    fn a_refund_takes_from_the_funds_in_order_and_never_more_than_they_hold() {
        let funds = [Open { id: 'b', outstanding: 30 }, Open { id: 'a', outstanding: 50 }];
        assert_eq!(refund_plan(40, &funds), Ok(vec![('b', 30), ('a', 10)]));
        assert_eq!(refund_plan(80, &funds).map(|p| p.len()), Ok(2));
        assert_eq!(refund_plan(81, &funds).map_err(|e| e.reason), Err("INSUFFICIENT_CREDIT"));
    }

    proptest! {
        #[test]
        fn money_is_neither_lost_nor_over_allocated(amount in 0i64..1_000_000, outs in proptest::collection::vec(0i64..100_000, 0..20)) {
            let open: Vec<_> = outs.iter().enumerate().map(|(i, o)| Open { id: i, outstanding: *o }).collect();
            let (alloc, left) = allocate(amount, &open);
            prop_assert_eq!(alloc.iter().map(|a| a.1).sum::<i64>() + left, amount);
            for (id, a) in &alloc {
                prop_assert!(*a > 0 && *a <= outs[*id]);
            }
            // Oldest first: an invoice gets money only when all older ones are settled.
            for (k, (id, _)) in alloc.iter().enumerate() {
                for (older, owed) in outs.iter().enumerate().take(*id) {
                    let got = alloc.iter().find(|x| x.0 == older).map_or(0, |x| x.1);
                    prop_assert!(got == *owed, "invoice {} paid before older {} (k={})", id, older, k);
                }
            }
            // Credit remains only when everything is settled.
            if left > 0 {
                prop_assert_eq!(alloc.iter().map(|a| a.1).sum::<i64>(), outs.iter().sum::<i64>());
            }
        }
    }
}

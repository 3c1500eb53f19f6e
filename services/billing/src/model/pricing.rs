//! Prices, VAT and tiered tariffs in integer minor units. Rounding is
//! half-up (away from zero on .5, the 四舍五入 convention of Chinese fapiao),
//! applied once per invoice line and once per tariff block, never on totals.

pub use crm_domain::{div_half_up, line_amounts};

/// One block of a tiered tariff: up to `up_to_m3` cumulative m³ (None: no
/// bound) at `price_minor_per_m3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub up_to_m3: Option<i64>,
    pub price_minor_per_m3: i64,
}

/// The charge of one block: how many litres fell in it and what they cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCharge {
    pub volume_litres: i64,
    pub price_minor_per_m3: i64,
    pub amount_minor: i64,
}

/// Checks a tariff's blocks: at least one, bounds strictly increasing and
/// positive, only the last one unbounded, prices not negative.
pub fn validate_blocks(blocks: &[Block]) -> Result<(), String> {
    if blocks.is_empty() {
        return Err("a tariff needs at least one block".into());
    }
    let mut previous = 0;
    for (i, b) in blocks.iter().enumerate() {
        let last = i + 1 == blocks.len();
        match b.up_to_m3 {
            None if !last => return Err(format!("block {i}: only the last block may be unbounded")),
            Some(_) if last => return Err("the last block must be unbounded (up_to_m3 = 0)".into()),
            Some(up) if up <= previous => return Err(format!("block {i}: bounds must increase")),
            Some(up) => previous = up,
            None => {}
        }
        if b.price_minor_per_m3 < 0 {
            return Err(format!("block {i}: price must not be negative"));
        }
    }
    Ok(())
}

/// An amount that does not fit in i64 minor units: an error, never a
/// wrapped or saturated number.
pub fn out_of_range() -> super::RuleViolation {
    super::RuleViolation::new("AMOUNT_OUT_OF_RANGE", "the amount is too large")
}

/// `vat_bp` basis points of `net`, rounded half-up, checked.
pub fn vat_of(net: i64, vat_bp: i32) -> Result<i64, super::RuleViolation> {
    i64::try_from(div_half_up(i128::from(net) * i128::from(vat_bp), 10_000)).map_err(|_| out_of_range())
}

/// A usage quote: the blocks, net, VAT on the net and total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub blocks: Vec<BlockCharge>,
    pub net_minor: i64,
    pub vat_minor: i64,
    pub total_minor: i64,
}

/// Prices `volume_litres` on a tariff's blocks with its VAT rate.
pub fn quote(blocks: &[Block], vat_bp: i32, volume_litres: i64) -> Result<Quote, super::RuleViolation> {
    let charges = tiered_charge(blocks, volume_litres)?;
    let net_minor = charges.iter().try_fold(0i64, |sum, b| sum.checked_add(b.amount_minor)).ok_or_else(out_of_range)?;
    let vat_minor = vat_of(net_minor, vat_bp)?;
    let total_minor = net_minor.checked_add(vat_minor).ok_or_else(out_of_range)?;
    Ok(Quote { blocks: charges, net_minor, vat_minor, total_minor })
}

/// Splits `volume_litres` over the blocks (BIL-2 block rates per billing
/// period) and prices each part, rounding each block half-up.
pub fn tiered_charge(blocks: &[Block], volume_litres: i64) -> Result<Vec<BlockCharge>, super::RuleViolation> {
    let mut out = Vec::new();
    let mut from_litres: i64 = 0;
    for b in blocks {
        if from_litres >= volume_litres {
            break;
        }
        let to_litres = b.up_to_m3.map_or(volume_litres, |m3| m3.saturating_mul(1000).min(volume_litres));
        let litres = to_litres - from_litres;
        if litres > 0 {
            let amount = div_half_up(i128::from(litres) * i128::from(b.price_minor_per_m3), 1000);
            out.push(BlockCharge {
                volume_litres: litres,
                price_minor_per_m3: b.price_minor_per_m3,
                amount_minor: i64::try_from(amount).map_err(|_| out_of_range())?,
            });
        }
        from_litres = to_litres;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn half_up_rounds_halves_away_from_zero() {
        assert_eq!(div_half_up(5, 10), 1);
        assert_eq!(div_half_up(4, 10), 0);
        assert_eq!(div_half_up(15, 10), 2);
        assert_eq!(div_half_up(25, 10), 3, "half-up, not banker's");
        assert_eq!(div_half_up(-5, 10), -1);
        assert_eq!(div_half_up(-4, 10), 0);
    }

    #[test]
    fn lines_round_net_then_vat() {
        // 1.5 × 3.33 = 4.995 → 5.00; VAT 13% of 5.00 = 0.65.
        assert_eq!(line_amounts(1500, 333, 1300), Some((500, 65)));
        // 2 × 99.99 at 9%: 199.98, VAT 17.9982 → 18.00.
        assert_eq!(line_amounts(2000, 9999, 900), Some((19998, 1800)));
    }

    /// 0–300 m³ at 2.61, 300–600 at 3.13, above at 3.91 (a typical residential gas ladder).
    fn ladder() -> Vec<Block> {
        vec![
            Block { up_to_m3: Some(300), price_minor_per_m3: 261 },
            Block { up_to_m3: Some(600), price_minor_per_m3: 313 },
            Block { up_to_m3: None, price_minor_per_m3: 391 },
        ]
    }

    #[test]
    fn consumption_is_split_over_the_blocks() {
        let c = tiered_charge(&ladder(), 650_000).unwrap_or_default();
        let got: Vec<(i64, i64)> = c.iter().map(|b| (b.volume_litres, b.amount_minor)).collect();
        assert_eq!(got, vec![(300_000, 78_300), (300_000, 93_900), (50_000, 19_550)]);
        assert_eq!(tiered_charge(&ladder(), 0), Ok(vec![]));
        assert_eq!(
            tiered_charge(&ladder(), 1).unwrap_or_default().first().map(|b| b.amount_minor),
            Some(0),
            "1 L costs 0.261 fen"
        );
    }

    #[test]
    fn a_quote_is_checked_and_vat_is_on_the_rounded_net() {
        let q = quote(&ladder(), 900, 650_000).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((q.net_minor, q.vat_minor, q.total_minor), (191_750, 17_258, 209_008));
        let dear = [Block { up_to_m3: None, price_minor_per_m3: i64::MAX }];
        assert_eq!(quote(&dear, 0, 2_000).map_err(|e| e.reason), Err("AMOUNT_OUT_OF_RANGE"));
        assert_eq!(vat_of(i64::MAX, 10_000), Ok(i64::MAX));
    }

    #[test]
    fn bad_ladders_are_refused() {
        assert!(validate_blocks(&ladder()).is_ok());
        assert!(validate_blocks(&[]).is_err());
        assert!(validate_blocks(&[Block { up_to_m3: Some(10), price_minor_per_m3: 1 }]).is_err());
        assert!(
            validate_blocks(&[
                Block { up_to_m3: None, price_minor_per_m3: 1 },
                Block { up_to_m3: None, price_minor_per_m3: 1 }
            ])
            .is_err()
        );
        assert!(
            validate_blocks(&[
                Block { up_to_m3: Some(10), price_minor_per_m3: 1 },
                Block { up_to_m3: Some(5), price_minor_per_m3: 1 },
                Block { up_to_m3: None, price_minor_per_m3: 1 }
            ])
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn every_litre_is_billed_once(volume in 0i64..5_000_000) {
            let c = tiered_charge(&ladder(), volume).unwrap_or_default();
            prop_assert_eq!(c.iter().map(|b| b.volume_litres).sum::<i64>(), volume);
        }

        #[test]
        fn more_consumption_never_costs_less(a in 0i64..3_000_000, extra in 0i64..1_000_000) {
            let cost = |v| tiered_charge(&ladder(), v).unwrap_or_default().iter().map(|b| b.amount_minor).sum::<i64>();
            prop_assert!(cost(a + extra) >= cost(a));
        }

        #[test]
        fn rounding_error_is_at_most_half_a_fen_per_block(volume in 0i64..5_000_000) {
            let c = tiered_charge(&ladder(), volume).unwrap_or_default();
            for b in c {
                let exact = b.volume_litres as f64 * b.price_minor_per_m3 as f64 / 1000.0;
                prop_assert!((b.amount_minor as f64 - exact).abs() <= 0.5 + 1e-9);
            }
        }

        #[test]
        fn line_vat_follows_the_rounded_net(q in 1i64..10_000_000, p in 0i64..10_000_000, bp in 0i32..=10_000) {
            let (net, vat) = line_amounts(q, p, bp).unwrap_or((0, 0));
            prop_assert!((net as f64 - q as f64 * p as f64 / 1000.0).abs() <= 0.5 + 1e-6);
            prop_assert!((vat as f64 - net as f64 * f64::from(bp) / 10_000.0).abs() <= 0.5 + 1e-6);
        }
    }
}

//! X-2 "completed paid work → invoice" (DSP-6): the lines of the invoice
//! billing raises for a completed work order.
//!
//! Dispatch prices the parts from the one catalogue (billing's, copied to
//! dispatch by catalogue_item.changed) and computes `amount_due`: that is
//! what the customer was charged (and may have paid on site), so the invoice
//! total must equal it exactly. Each part line carries the net price and VAT
//! rate it was priced at, and its net and VAT are computed by the same rule
//! dispatch used ([`crm_domain::line_amounts`]), so the parts' gross is what
//! dispatch charged for them. The rest of `amount_due` — labour, priced by
//! dispatch's labour rate as an all-in amount — is one more line
//! ([`REMAINDER`]) without VAT; parts adding up to *more* than `amount_due`
//! are inconsistent and refused.

use super::{invoicing::Line, pricing::line_amounts};

/// The description of the line that brings the parts up to `amount_due`.
pub const REMAINDER: &str = "labour/call-out";

/// A part used on the job as dispatch reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartUsed {
    pub code: String,
    pub name: String,
    pub quantity: i32,
    /// Net of VAT.
    pub unit_price_minor: i64,
    pub vat_rate_bp: i32,
}

/// The lines of a work order's invoice whose net plus VAT is exactly
/// `amount_due` (positive). `Err` says why the work order cannot be
/// invoiced as reported.
pub fn invoice_lines(parts: &[PartUsed], amount_due: i64) -> Result<Vec<Line>, String> {
    if amount_due <= 0 {
        return Err(format!("amount_due {amount_due} is not positive"));
    }
    let mut lines = Vec::with_capacity(parts.len() + 1);
    let mut sum: i64 = 0;
    for (i, p) in parts.iter().enumerate() {
        if p.quantity <= 0 {
            return Err(format!("parts[{i}] ({}): quantity {} is not positive", p.code, p.quantity));
        }
        if p.unit_price_minor < 0 {
            return Err(format!("parts[{i}] ({}): unit price is negative", p.code));
        }
        if !(0..=10_000).contains(&p.vat_rate_bp) {
            return Err(format!("parts[{i}] ({}): VAT rate {} bp is out of range", p.code, p.vat_rate_bp));
        }
        let quantity_milli = i64::from(p.quantity) * 1000;
        let (net, vat) = line_amounts(quantity_milli, p.unit_price_minor, p.vat_rate_bp)
            .ok_or_else(|| format!("parts[{i}] ({}): the line amount is out of range", p.code))?;
        sum = sum
            .checked_add(net)
            .and_then(|s| s.checked_add(vat))
            .ok_or_else(|| "the parts' total is out of range".to_string())?;
        let code = p.code.trim();
        let name = p.name.trim();
        lines.push(Line {
            catalogue_code: (!code.is_empty()).then(|| code.to_uppercase()),
            description: if name.is_empty() { code.to_string() } else { name.to_string() },
            quantity_milli,
            unit_price_minor: p.unit_price_minor,
            vat_rate_bp: p.vat_rate_bp,
            net_minor: net,
            vat_minor: vat,
        });
    }
    if sum > amount_due {
        return Err(format!("the parts add up to {sum} (minor units), more than the amount due {amount_due}"));
    }
    if sum < amount_due {
        let rest = amount_due - sum;
        lines.push(Line {
            catalogue_code: None,
            description: REMAINDER.to_string(),
            quantity_milli: 1000,
            unit_price_minor: rest,
            vat_rate_bp: 0,
            net_minor: rest,
            vat_minor: 0,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(code: &str, quantity: i32, price: i64) -> PartUsed {
        PartUsed { code: code.into(), name: format!("part {code}"), quantity, unit_price_minor: price, vat_rate_bp: 0 }
    }

    fn taxed(code: &str, quantity: i32, price: i64, vat_rate_bp: i32) -> PartUsed {
        PartUsed { vat_rate_bp, ..part(code, quantity, price) }
    }

    #[test]
    fn parts_that_add_up_are_the_lines() {
        let lines = invoice_lines(&[part("gps-1", 2, 4_500), part("SIM", 1, 4_000)], 13_000).unwrap_or_default();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].catalogue_code.as_deref(), Some("GPS-1"));
        assert_eq!(lines[0].net_minor, 9_000);
    }

    #[test]
    fn a_shortfall_is_a_remainder_line() {
        let lines = invoice_lines(&[part("A", 1, 1_000)], 3_500).unwrap_or_default();
        assert_eq!(lines.last().map(|l| (l.description.as_str(), l.net_minor)), Some((REMAINDER, 2_500)));
        let only = invoice_lines(&[], 800).unwrap_or_default();
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn parts_carry_their_catalogue_vat_and_labour_is_the_rest() {
        // 2 × 45.00 net at 13 %: 90.00 + 11.70; labour 50.00.
        let lines = invoice_lines(&[taxed("GPS-1", 2, 4_500, 1_300)], 15_170).unwrap_or_default();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].net_minor, lines[0].vat_minor, lines[0].vat_rate_bp), (9_000, 1_170, 1_300));
        assert_eq!((lines[1].description.as_str(), lines[1].net_minor, lines[1].vat_minor), (REMAINDER, 5_000, 0));
        // Gross above the amount due: dispatch and billing disagree.
        assert!(invoice_lines(&[taxed("GPS-1", 2, 4_500, 1_300)], 10_000).is_err());
        assert!(invoice_lines(&[taxed("GPS-1", 1, 4_500, 10_001)], 10_000).is_err());
    }

    #[test]
    fn inconsistent_reports_are_refused() {
        assert!(invoice_lines(&[part("A", 2, 1_000)], 1_500).is_err());
        assert!(invoice_lines(&[part("A", 0, 1_000)], 1_500).is_err());
        assert!(invoice_lines(&[part("A", 1, -1)], 1_500).is_err());
        assert!(invoice_lines(&[], 0).is_err());
    }

    proptest! {
        #[test]
        fn the_total_is_the_amount_due(
            prices in proptest::collection::vec((1i32..10, 0i64..100_000, prop_oneof![Just(0), Just(600), Just(900), Just(1_300)]), 0..8),
            extra in 0i64..100_000,
        ) {
            let parts: Vec<_> = prices.iter().map(|(q, p, vat)| taxed("X", *q, *p, *vat)).collect();
            let gross = |q: i32, p: i64, vat: i32| {
                let (net, tax) = line_amounts(i64::from(q) * 1000, p, vat).unwrap_or_default();
                net + tax
            };
            let due = prices.iter().map(|(q, p, vat)| gross(*q, *p, *vat)).sum::<i64>() + extra;
            prop_assume!(due > 0);
            let lines = invoice_lines(&parts, due).unwrap_or_default();
            prop_assert_eq!(lines.iter().map(|l| l.net_minor + l.vat_minor).sum::<i64>(), due);
        }
    }
}

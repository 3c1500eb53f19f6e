//! DSP-6 paid work: the warranty decides what the customer pays. In warranty
//! the work is free; out of warranty the customer pays the parts at their
//! catalogue price, and the labour only when a labour rate is set (the seed
//! rule is "parts only, no labour": with no rate, labour is recorded but not
//! charged). Money is integer minor units. The catalogue is billing's (one
//! price list, copied here by catalogue_item.changed): a part line is
//! quantity × net unit price plus VAT at the catalogue's rate, each rounded
//! half up by the rule billing invoices by (`crm_domain::line_amounts`);
//! labour is minutes × hourly rate ÷ 60 rounded half up to the fen, all in.

use chrono::{Days, Months, NaiveDate};
use crm_domain::{Currency, Money};

use super::{Kind, RuleViolation};

/// A repair whose device is not registered is covered for this long from
/// its purchase date (the manufacturer's standard term).
pub const DEFAULT_WARRANTY_MONTHS: u32 = 12;

/// A catalogue item as copied from billing (DSP-5): only active parts are
/// used at completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub id: uuid::Uuid,
    pub code: String,
    pub name: String,
    /// Net of VAT.
    pub unit_price: Money,
    pub vat_rate_bp: i32,
    /// A part, not a service.
    pub is_part: bool,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub changed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One part line, priced from the catalogue at completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLine {
    pub part_id: uuid::Uuid,
    pub code: String,
    pub name: String,
    pub quantity: i32,
    /// Net of VAT.
    pub unit_price: Money,
    pub vat_rate_bp: i32,
}

impl PartLine {
    /// Net and VAT of the line, rounded as billing invoices them.
    pub fn amounts(&self) -> Result<(Money, Money), RuleViolation> {
        let currency = self.unit_price.currency();
        let (net, vat) = crm_domain::line_amounts(
            i64::from(self.quantity).checked_mul(1000).ok_or_else(too_large)?,
            self.unit_price.amount_minor(),
            self.vat_rate_bp,
        )
        .ok_or_else(too_large)?;
        Ok((Money::new(net, currency), Money::new(vat, currency)))
    }

    /// What the customer pays for the line: net plus VAT.
    pub fn total(&self) -> Result<Money, RuleViolation> {
        let (net, vat) = self.amounts()?;
        net.checked_add(vat).map_err(|_| too_large())
    }
}

fn too_large() -> RuleViolation {
    RuleViolation::new("AMOUNT_OUT_OF_RANGE", "the amount is too large")
}

/// The last day covered when only the purchase date is known: the day before
/// the anniversary of `DEFAULT_WARRANTY_MONTHS`.
pub fn default_warranty_end(purchase: NaiveDate) -> NaiveDate {
    purchase
        .checked_add_months(Months::new(DEFAULT_WARRANTY_MONTHS))
        .and_then(|d| d.checked_sub_days(Days::new(1)))
        .unwrap_or(NaiveDate::MAX)
}

/// Whether the work done on `on` is covered. The registered device's
/// warranty end wins; a repair without one falls back on its purchase date;
/// an installation puts in new, covered equipment; maintenance or inspection
/// of no registered device has no warranty to claim.
pub fn in_warranty(kind: Kind, device_end: Option<NaiveDate>, purchase: Option<NaiveDate>, on: NaiveDate) -> bool {
    match (device_end, purchase) {
        (Some(end), _) => on <= end,
        (None, Some(p)) => on <= default_warranty_end(p),
        (None, None) => kind == Kind::Installation,
    }
}

/// Labour recorded on completion, in whole minutes (DSP-5).
pub const MAX_LABOUR_MINUTES: i32 = 14_400;

/// The labour charge of `minutes` at `hourly`: minutes × rate ÷ 60, rounded
/// half up to the minor unit.
pub fn labour_charge(minutes: i32, hourly: Money) -> Result<Money, RuleViolation> {
    let scaled = i128::from(hourly.amount_minor()) * i128::from(minutes.max(0));
    let minor = i64::try_from((scaled + 30) / 60).map_err(|_| too_large())?;
    Ok(Money::new(minor, hourly.currency()))
}

/// What the customer owes: nothing in warranty; otherwise the parts, and the
/// labour when a rate is set (`labour`, already priced). Every amount must
/// be in one currency.
pub fn amount_due(lines: &[PartLine], labour: Option<Money>, in_warranty: bool) -> Result<Money, RuleViolation> {
    let currency =
        lines.first().map(|l| l.unit_price.currency()).or(labour.map(|l| l.currency())).unwrap_or(Currency::CNY);
    let mut due = Money::zero(currency);
    if in_warranty {
        return Ok(due);
    }
    if let Some(l) = labour {
        due = due.checked_add(l).map_err(|e| match e {
            crm_domain::MoneyError::CurrencyMismatch(..) => {
                RuleViolation::new("MIXED_CURRENCIES", "the labour rate and the parts are in different currencies")
            }
            _ => too_large(),
        })?;
    }
    for l in lines {
        due = due.checked_add(l.total()?).map_err(|e| match e {
            crm_domain::MoneyError::CurrencyMismatch(..) => {
                RuleViolation::new("MIXED_CURRENCIES", "the parts used are priced in different currencies")
            }
            _ => too_large(),
        })?;
    }
    Ok(due)
}

/// DSP-6: the technician takes nothing, or up to the amount due (the rest is
/// invoiced by billing), in its currency.
pub fn check_collection(collected: Money, due: Money) -> Result<(), &'static str> {
    if collected.is_negative() {
        return Err("must not be negative");
    }
    if collected.amount_minor() == 0 {
        return Ok(());
    }
    if collected.currency() != due.currency() {
        return Err("must be in the currency of the amount due");
    }
    if collected.amount_minor() > due.amount_minor() {
        return Err("must not exceed the amount due");
    }
    Ok(())
}

/// Why completion's money cannot be settled as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeRefusal {
    /// A rule refuses it (FAILED_PRECONDITION): mixed currencies, overflow.
    Rule(RuleViolation),
    /// What the technician says they took is not possible
    /// (`payment_collected`, INVALID_ARGUMENT).
    Collected(&'static str),
}

impl From<RuleViolation> for ChargeRefusal {
    fn from(v: RuleViolation) -> Self {
        ChargeRefusal::Rule(v)
    }
}

/// What a completion charges (DSP-5, DSP-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charges {
    pub in_warranty: bool,
    /// Charged labour (out of warranty, at a set rate).
    pub labour: Option<Money>,
    pub amount_due: Money,
    /// Taken on site, in the amount's currency.
    pub collected: Money,
}

/// What the work done is worth to the customer and what may be taken on
/// site: the warranty decides (`in_warranty`), the parts at their catalogue
/// price plus VAT, labour at `labour_rate` (if one is set) only out of
/// warranty, and at most the amount due collected.
pub fn settle(
    covered: bool,
    lines: &[PartLine],
    labour_minutes: i32,
    labour_rate: Option<Money>,
    collected: Option<Money>,
) -> Result<Charges, ChargeRefusal> {
    let labour = match labour_rate {
        Some(hourly) if !covered => Some(labour_charge(labour_minutes, hourly)?),
        _ => None,
    };
    let amount_due = amount_due(lines, labour, covered)?;
    let collected = collected.unwrap_or_else(|| Money::zero(amount_due.currency()));
    check_collection(collected, amount_due).map_err(ChargeRefusal::Collected)?;
    Ok(Charges {
        in_warranty: covered,
        labour,
        amount_due,
        collected: Money::new(collected.amount_minor(), amount_due.currency()),
    })
}

/// The lines of the parts used (`wanted`: code and quantity, in request
/// order) priced from the catalogue copy `found`; each line that cannot be
/// used names why, by its position.
pub fn price_lines(wanted: &[(String, i32)], found: &[Part]) -> Result<Vec<PartLine>, Vec<(usize, &'static str)>> {
    let mut lines = vec![];
    let mut refused = vec![];
    for (i, (code, quantity)) in wanted.iter().enumerate() {
        match found.iter().find(|p| &p.code == code) {
            Some(p) if !p.is_part => refused.push((i, "is a service in the catalogue, not a part")),
            Some(p) if !p.active => refused.push((i, "is withdrawn from the catalogue")),
            Some(p) => lines.push(PartLine {
                part_id: p.id,
                code: p.code.clone(),
                name: p.name.clone(),
                quantity: *quantity,
                unit_price: p.unit_price,
                vat_rate_bp: p.vat_rate_bp,
            }),
            None => refused.push((i, "is not in the parts catalogue")),
        }
    }
    if refused.is_empty() { Ok(lines) } else { Err(refused) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(qty: i32, price: i64) -> PartLine {
        PartLine {
            part_id: uuid::Uuid::nil(),
            code: "P".into(),
            name: "part".into(),
            quantity: qty,
            unit_price: Money::cny(price),
            vat_rate_bp: 0,
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn the_registered_warranty_end_decides_and_is_inclusive() {
        let end = d(2026, 11, 26);
        assert!(in_warranty(Kind::Repair, Some(end), Some(d(2020, 1, 1)), d(2026, 11, 26)));
        assert!(!in_warranty(Kind::Repair, Some(end), Some(d(2026, 11, 1)), d(2026, 11, 27)));
    }

    #[test]
    fn without_a_device_a_repair_is_covered_a_year_from_purchase() {
        assert_eq!(default_warranty_end(d(2025, 3, 1)), d(2026, 2, 28));
        assert_eq!(default_warranty_end(d(2024, 2, 29)), d(2025, 2, 27));
        assert!(in_warranty(Kind::Repair, None, Some(d(2025, 3, 1)), d(2026, 2, 28)));
        assert!(!in_warranty(Kind::Repair, None, Some(d(2025, 3, 1)), d(2026, 3, 1)));
        assert!(in_warranty(Kind::Installation, None, None, d(2026, 3, 1)));
        assert!(!in_warranty(Kind::Maintenance, None, None, d(2026, 3, 1)));
    }

    #[test]
    fn in_warranty_is_free_out_of_warranty_is_parts_only() {
        let lines = [line(2, 1_550), line(1, 9_900)];
        assert_eq!(amount_due(&lines, None, true), Ok(Money::cny(0)));
        assert_eq!(amount_due(&lines, None, false), Ok(Money::cny(13_000)));
        assert_eq!(amount_due(&[], None, false), Ok(Money::cny(0)));
    }

    /// Issue 14 (DSP-6): labour is charged out of warranty only when a rate
    /// is set, minutes × hourly rate ÷ 60 rounded half up; never in warranty.
    #[test]
    fn labour_is_charged_out_of_warranty_at_the_rate_when_one_is_set() {
        let rate = Money::cny(12_000); // 120.00 an hour
        assert_eq!(labour_charge(90, rate), Ok(Money::cny(18_000)));
        assert_eq!(labour_charge(1, Money::cny(100)), Ok(Money::cny(2))); // 1.67 fen rounds up
        assert_eq!(labour_charge(1, Money::cny(89)), Ok(Money::cny(1))); // 1.48 rounds down
        assert_eq!(labour_charge(0, rate), Ok(Money::cny(0)));
        let lines = [line(2, 1_550)];
        let labour = labour_charge(45, rate).ok();
        assert_eq!(amount_due(&lines, labour, false), Ok(Money::cny(3_100 + 9_000)));
        assert_eq!(amount_due(&lines, labour, true), Ok(Money::cny(0)));
        assert_eq!(amount_due(&[], labour, false), Ok(Money::cny(9_000)));
        let usd = Currency::parse("USD").unwrap_or(Currency::CNY);
        let foreign = Some(Money::new(100, usd));
        assert_eq!(amount_due(&lines, foreign, false).map_err(|e| e.reason), Err("MIXED_CURRENCIES"));
    }

    /// Issue 18: the completion decision is one model function.
    #[test]
    fn settling_a_completion_applies_warranty_labour_and_the_collection_limit() {
        let rate = Some(Money::cny(12_000));
        let lines = [line(1, 5_000)];
        let out = settle(false, &lines, 30, rate, Some(Money::cny(1_000))).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (out.amount_due, out.labour, out.collected),
            (Money::cny(11_000), Some(Money::cny(6_000)), Money::cny(1_000))
        );
        let free = settle(true, &lines, 30, rate, None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((free.amount_due, free.labour, free.in_warranty), (Money::cny(0), None, true));
        assert_eq!(
            settle(true, &lines, 30, rate, Some(Money::cny(1))),
            Err(ChargeRefusal::Collected("must not exceed the amount due"))
        );
        let usd = Currency::parse("USD").unwrap_or(Currency::CNY);
        let mixed = settle(false, &lines, 30, Some(Money::new(100, usd)), None);
        assert!(matches!(mixed, Err(ChargeRefusal::Rule(v)) if v.reason == "MIXED_CURRENCIES"));
    }

    #[test]
    fn lines_are_priced_from_the_catalogue_and_unusable_codes_name_their_position() {
        let part = |code: &str, is_part: bool, active: bool| Part {
            id: uuid::Uuid::nil(),
            code: code.into(),
            name: format!("part {code}"),
            unit_price: Money::cny(100),
            vat_rate_bp: 1_300,
            is_part,
            active,
            created_at: chrono::DateTime::default(),
            changed_at: None,
        };
        let found = [part("A", true, true), part("S", false, true), part("W", true, false)];
        let ok = price_lines(&[("A".into(), 2)], &found).unwrap_or_default();
        assert_eq!((ok[0].quantity, ok[0].vat_rate_bp), (2, 1_300));
        let wanted: Vec<(String, i32)> = ["A", "S", "W", "X"].iter().map(|c| ((*c).to_string(), 1)).collect();
        let refused = price_lines(&wanted, &found).err().unwrap_or_default();
        assert_eq!(refused.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    }

    /// Issue 14 (one catalogue): a part is charged at billing's net price
    /// plus its VAT, rounded per line as billing invoices it.
    #[test]
    fn parts_are_charged_net_plus_their_catalogue_vat() {
        let taxed = PartLine { vat_rate_bp: 1_300, ..line(3, 3_333) };
        // 99.99 net, 13 % = 12.9987 → 13.00.
        assert_eq!(taxed.amounts(), Ok((Money::cny(9_999), Money::cny(1_300))));
        assert_eq!(amount_due(&[taxed.clone(), line(1, 100)], None, false), Ok(Money::cny(9_999 + 1_300 + 100)));
        assert_eq!(amount_due(&[taxed], None, true), Ok(Money::cny(0)));
    }

    #[test]
    fn mixed_currencies_and_overflow_are_refused() {
        let usd = Currency::parse("USD").unwrap_or(Currency::CNY);
        let mut l = line(1, 100);
        l.unit_price = Money::new(100, usd);
        assert_eq!(amount_due(&[line(1, 1), l], None, false).map_err(|e| e.reason), Err("MIXED_CURRENCIES"));
        assert_eq!(amount_due(&[line(2, i64::MAX)], None, false).map_err(|e| e.reason), Err("AMOUNT_OUT_OF_RANGE"));
    }

    #[test]
    fn collections_stay_within_the_amount_due() {
        let due = Money::cny(1_000);
        assert_eq!(check_collection(Money::cny(0), due), Ok(()));
        assert_eq!(check_collection(Money::cny(400), due), Ok(()));
        assert_eq!(check_collection(Money::cny(1_000), due), Ok(()));
        assert!(check_collection(Money::cny(1_001), due).is_err());
        assert!(check_collection(Money::cny(-1), due).is_err());
        let usd = Currency::parse("USD").unwrap_or(Currency::CNY);
        assert!(check_collection(Money::new(5, usd), due).is_err());
        // Nothing is due in warranty, so nothing may be taken.
        assert!(check_collection(Money::cny(1), Money::cny(0)).is_err());
    }

    proptest! {
        /// Out of warranty the amount is exactly the sum of the part lines
        /// (no labour rate, no rounding); in warranty it is zero.
        #[test]
        fn the_amount_is_the_sum_of_the_parts_or_nothing(
            parts in proptest::collection::vec((1i32..100, 0i64..1_000_000), 0..20),
            covered in any::<bool>(),
        ) {
            let lines: Vec<PartLine> = parts.iter().map(|(q, p)| line(*q, *p)).collect();
            let sum: i64 = parts.iter().map(|(q, p)| i64::from(*q) * p).sum();
            let due = amount_due(&lines, None, covered).map_err(|e| e.reason);
            prop_assert_eq!(due, Ok(Money::cny(if covered { 0 } else { sum })));
        }
    }
}

//! BIL-6 ageing of overdue invoices: how many and how much in each band of
//! days overdue, per currency (amounts of different currencies are never
//! added together), with checked sums.

use super::RuleViolation;

/// The bands, by days overdue: 0-30, 31-60, 61-90, over 90.
pub const LABELS: [&str; 4] = ["0-30", "31-60", "61-90", ">90"];

/// The currency shown when nothing is overdue.
const DEFAULT_CURRENCY: &str = "CNY";

/// One band of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub label: &'static str,
    pub currency: String,
    pub invoices: i64,
    pub outstanding_minor: i64,
}

/// The band of an invoice `days` overdue.
pub fn band(days: i32) -> usize {
    match days {
        ..=30 => 0,
        31..=60 => 1,
        61..=90 => 2,
        _ => 3,
    }
}

/// The four bands of every currency among `overdue` (days overdue,
/// outstanding, currency), currencies in alphabetical order; the four
/// empty bands of CNY when nothing is overdue.
pub fn buckets<'a>(overdue: impl IntoIterator<Item = (i32, i64, &'a str)>) -> Result<Vec<Bucket>, RuleViolation> {
    let mut out: Vec<Bucket> = vec![];
    for (days, outstanding, currency) in overdue {
        let start = match out.iter().position(|b| b.currency == currency) {
            Some(i) => i,
            None => {
                let at = out.partition_point(|b| b.currency.as_str() < currency);
                let fresh = LABELS.iter().map(|label| Bucket {
                    label,
                    currency: currency.to_string(),
                    invoices: 0,
                    outstanding_minor: 0,
                });
                out.splice(at..at, fresh);
                at
            }
        };
        let b = &mut out[start + band(days)];
        b.invoices += 1;
        b.outstanding_minor = b
            .outstanding_minor
            .checked_add(outstanding)
            .ok_or_else(|| RuleViolation::new("AMOUNT_OUT_OF_RANGE", "the overdue total is too large"))?;
    }
    if out.is_empty() {
        out = LABELS
            .iter()
            .map(|label| Bucket { label, currency: DEFAULT_CURRENCY.into(), invoices: 0, outstanding_minor: 0 })
            .collect();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_inclusive_at_their_upper_day() {
        assert_eq!([1, 30, 31, 60, 61, 90, 91].map(band), [0, 0, 1, 1, 2, 2, 3]);
    }

    #[test]
    fn currencies_are_never_added_together() {
        let b = buckets([(10, 100, "CNY"), (45, 7, "USD"), (20, 50, "CNY"), (120, 3, "USD")]).unwrap_or_default();
        let seen: Vec<(&str, &str, i64, i64)> =
            b.iter().map(|b| (b.label, b.currency.as_str(), b.invoices, b.outstanding_minor)).collect();
        assert_eq!(
            seen,
            [
                ("0-30", "CNY", 2, 150),
                ("31-60", "CNY", 0, 0),
                ("61-90", "CNY", 0, 0),
                (">90", "CNY", 0, 0),
                ("0-30", "USD", 0, 0),
                ("31-60", "USD", 1, 7),
                ("61-90", "USD", 0, 0),
                (">90", "USD", 1, 3),
            ]
        );
    }

    #[test]
    fn nothing_overdue_is_four_empty_bands_and_overflow_is_an_error() {
        let empty = buckets([]).unwrap_or_default();
        assert_eq!(empty.len(), 4);
        assert!(empty.iter().all(|b| b.invoices == 0 && b.currency == "CNY"));
        assert!(buckets([(1, i64::MAX, "CNY"), (2, 1, "CNY")]).is_err());
    }
}

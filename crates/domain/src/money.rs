//! Money as integer minor units with an ISO 4217 currency. Never a float;
//! arithmetic is checked and refuses to mix currencies.

use std::fmt;

/// An ISO 4217 alphabetic code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let code = code.trim();
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::BadCurrency(code.to_string()));
        }
        Ok(Currency([bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase(), bytes[2].to_ascii_uppercase()]))
    }

    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of minor units in one major unit. CNY, USD, EUR: 100.
    pub fn minor_per_major(&self) -> i64 {
        match &self.0 {
            b"JPY" | b"KRW" | b"VND" => 1,
            b"KWD" | b"BHD" | b"OMR" | b"JOD" | b"TND" => 1000,
            _ => 100,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency code {0:?} is not a three-letter ISO 4217 code")]
    BadCurrency(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self { amount_minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    pub fn cny(amount_minor: i64) -> Self {
        Self::new(amount_minor, Currency::CNY)
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_negative(&self) -> bool {
        self.amount_minor < 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|a| Money::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|a| Money::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.amount_minor.checked_neg().map(|a| Money::new(a, self.currency)).ok_or(MoneyError::Overflow)
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    /// `-12.34 CNY`: for people and logs, never parsed back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = self.currency.minor_per_major();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let per_u = per.unsigned_abs();
        if per_u == 1 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let digits = per_u.ilog10() as usize;
        write!(f, "{sign}{}.{:0digits$} {}", abs / per_u, abs % per_u, self.currency)
    }
}

/// `numerator / denominator` rounded half-up (away from zero on .5, the
/// 四舍五入 convention of Chinese fapiao); `denominator` must be positive.
/// Computed in i128 so no product overflows.
pub fn div_half_up(numerator: i128, denominator: i128) -> i128 {
    let q = numerator / denominator;
    let r = numerator % denominator;
    if 2 * r.abs() >= denominator { q + numerator.signum() } else { q }
}

/// Net and VAT of a priced line, the one rule both services price by:
/// `quantity_milli / 1000 × unit_price` rounded half-up, VAT at `vat_bp`
/// basis points of that rounded net, rounded half-up. `None` when it does
/// not fit i64.
pub fn line_amounts(quantity_milli: i64, unit_price_minor: i64, vat_bp: i32) -> Option<(i64, i64)> {
    let net = div_half_up(i128::from(quantity_milli) * i128::from(unit_price_minor), 1000);
    let vat = div_half_up(net * i128::from(vat_bp), 10_000);
    Some((i64::try_from(net).ok()?, i64::try_from(vat).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currency_codes_are_validated_and_upper_cased() {
        assert_eq!(Currency::parse("cny"), Ok(Currency::CNY));
        assert!(Currency::parse("CN").is_err());
        assert!(Currency::parse("C1Y").is_err());
        assert!(Currency::parse("人民币").is_err());
    }

    #[test]
    fn display_uses_minor_units_of_the_currency() {
        assert_eq!(Money::cny(-1234).to_string(), "-12.34 CNY");
        assert_eq!(Money::cny(5).to_string(), "0.05 CNY");
        let jpy = Currency::parse("JPY").unwrap_or(Currency::CNY);
        assert_eq!(Money::new(500, jpy).to_string(), "500 JPY");
    }

    #[test]
    fn mixing_currencies_is_refused() {
        let usd = Currency::parse("USD").unwrap_or(Currency::CNY);
        assert!(matches!(Money::cny(1).checked_add(Money::new(1, usd)), Err(MoneyError::CurrencyMismatch(..))));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(Money::cny(i64::MAX).checked_add(Money::cny(1)), Err(MoneyError::Overflow));
        assert_eq!(Money::cny(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
    }

    #[test]
    fn a_line_rounds_its_net_then_its_vat_half_up() {
        // 1.5 × 0.05 = 0.075 → 0.08; 13 % of 8 fen = 1.04 → 1 fen.
        assert_eq!(line_amounts(1500, 5, 1300), Some((8, 1)));
        // 2 × 45.00 at 13 %: 90.00 + 11.70.
        assert_eq!(line_amounts(2000, 4500, 1300), Some((9000, 1170)));
        assert_eq!(div_half_up(-5, 10), -1);
        assert_eq!(line_amounts(2000, i64::MAX, 0), None);
    }

    proptest! {
        #[test]
        fn add_then_sub_is_identity(a in -1_000_000_000_000i64..1_000_000_000_000, b in -1_000_000_000_000i64..1_000_000_000_000) {
            let sum = Money::cny(a).checked_add(Money::cny(b));
            prop_assert_eq!(sum.and_then(|s| s.checked_sub(Money::cny(b))), Ok(Money::cny(a)));
        }
    }
}

//! BIL-4 drafting an invoice: its lines, each either a catalogue item (price,
//! VAT rate and description from the catalogue) or given by hand, priced by
//! [`line_amounts`] (net rounded half up, VAT on the rounded net), and its
//! totals, with every sum checked: an amount that does not fit is an error,
//! never a wrapped or saturated number.

use std::collections::HashMap;

use super::{RuleViolation, pricing::line_amounts};

/// Days to pay when the request leaves it to us.
pub const DEFAULT_DUE_IN_DAYS: i32 = 15;
/// Lines of one invoice.
pub const MAX_LINES: usize = 200;

/// An invoice line as billed.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub catalogue_code: Option<String>,
    pub description: String,
    pub quantity_milli: i64,
    pub unit_price_minor: i64,
    pub vat_rate_bp: i32,
    pub net_minor: i64,
    pub vat_minor: i64,
}

/// A line asked for, its fields already well-formed.
#[derive(Debug, Clone, PartialEq)]
pub enum LineRequest {
    /// A catalogue item; `description` overrides the catalogue's when given.
    Catalogue { code: String, description: Option<String>, quantity_milli: i64 },
    /// A price given by hand, in `currency`.
    Given { description: String, unit_price_minor: i64, currency: String, vat_rate_bp: i32, quantity_milli: i64 },
}

/// A catalogue item as drafting needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CataloguePrice {
    pub description: String,
    pub unit_price_minor: i64,
    pub currency: String,
    pub vat_rate_bp: i32,
    pub active: bool,
}

/// Why line `index` cannot be billed, naming its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

/// Whether `series` is a valid invoice series: 2 to 8 capital letters.
pub fn valid_series(series: &str) -> bool {
    (2..=8).contains(&series.len()) && series.chars().all(|c| c.is_ascii_uppercase())
}

/// Prices every requested line for an account in `currency`; all problems
/// at once when any line cannot be billed.
pub fn draft_lines(
    requests: &[LineRequest],
    catalogue: &HashMap<String, CataloguePrice>,
    currency: &str,
) -> Result<Vec<Line>, Vec<LineProblem>> {
    let mut lines = Vec::with_capacity(requests.len());
    let mut problems = vec![];
    for (index, r) in requests.iter().enumerate() {
        let problem = |field, message: String| LineProblem { index, field, message };
        let (code, description, price, vat, quantity_milli) = match r {
            LineRequest::Catalogue { code, description, quantity_milli } => match catalogue.get(code) {
                Some(item) if item.active && item.currency == currency => (
                    Some(code.clone()),
                    description.clone().unwrap_or_else(|| item.description.clone()),
                    item.unit_price_minor,
                    item.vat_rate_bp,
                    *quantity_milli,
                ),
                Some(item) if item.active => {
                    problems.push(problem(
                        "catalogue_code",
                        format!("priced in {}, the account is in {currency}", item.currency),
                    ));
                    continue;
                }
                _ => {
                    problems.push(problem("catalogue_code", "no active catalogue item with this code".into()));
                    continue;
                }
            },
            LineRequest::Given { description, unit_price_minor, currency: given, vat_rate_bp, quantity_milli } => {
                if given != currency {
                    problems.push(problem(
                        "unit_price.currency_code",
                        format!("the account is in {currency}, not {given}"),
                    ));
                    continue;
                }
                (None, description.clone(), *unit_price_minor, *vat_rate_bp, *quantity_milli)
            }
        };
        match line_amounts(quantity_milli, price, vat) {
            Some((net_minor, vat_minor)) => lines.push(Line {
                catalogue_code: code,
                description,
                quantity_milli,
                unit_price_minor: price,
                vat_rate_bp: vat,
                net_minor,
                vat_minor,
            }),
            None => problems.push(problem("quantity_milli", "the line amount is out of range".into())),
        }
    }
    if problems.is_empty() { Ok(lines) } else { Err(problems) }
}

/// Net, VAT and total of `lines`, checked.
pub fn totals(lines: &[Line]) -> Result<(i64, i64, i64), RuleViolation> {
    let too_large = || RuleViolation::new("AMOUNT_OUT_OF_RANGE", "the invoice total is too large");
    let mut net: i64 = 0;
    let mut vat: i64 = 0;
    for l in lines {
        net = net.checked_add(l.net_minor).ok_or_else(too_large)?;
        vat = vat.checked_add(l.vat_minor).ok_or_else(too_large)?;
    }
    Ok((net, vat, net.checked_add(vat).ok_or_else(too_large)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> HashMap<String, CataloguePrice> {
        let item = |price, currency: &str, active| CataloguePrice {
            description: "GPS 终端 T100".into(),
            unit_price_minor: price,
            currency: currency.into(),
            vat_rate_bp: 1_300,
            active,
        };
        HashMap::from([
            ("GPS-T100".to_string(), item(45_000, "CNY", true)),
            ("OLD".to_string(), item(1, "CNY", false)),
            ("USD-1".to_string(), item(1, "USD", true)),
        ])
    }

    fn from_catalogue(code: &str, quantity_milli: i64) -> LineRequest {
        LineRequest::Catalogue { code: code.into(), description: None, quantity_milli }
    }

    #[test]
    fn catalogue_lines_take_price_vat_and_description_from_the_catalogue() {
        let lines = draft_lines(&[from_catalogue("GPS-T100", 2_000)], &catalogue(), "CNY").unwrap_or_default();
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].net_minor, lines[0].vat_minor), (90_000, 11_700));
        assert_eq!(lines[0].description, "GPS 终端 T100");
        assert_eq!(totals(&lines), Ok((90_000, 11_700, 101_700)));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_field() {
        let given = LineRequest::Given {
            description: "上门费".into(),
            unit_price_minor: 5_000,
            currency: "USD".into(),
            vat_rate_bp: 600,
            quantity_milli: 1_000,
        };
        let Err(problems) = draft_lines(
            &[from_catalogue("NOPE", 1_000), from_catalogue("OLD", 1_000), from_catalogue("USD-1", 1_000), given],
            &catalogue(),
            "CNY",
        ) else {
            panic!("bad lines accepted")
        };
        let fields: Vec<(usize, &str)> = problems.iter().map(|p| (p.index, p.field)).collect();
        assert_eq!(
            fields,
            [(0, "catalogue_code"), (1, "catalogue_code"), (2, "catalogue_code"), (3, "unit_price.currency_code")]
        );
    }

    #[test]
    fn amounts_that_do_not_fit_are_errors() {
        let huge = LineRequest::Given {
            description: "x".into(),
            unit_price_minor: i64::MAX,
            currency: "CNY".into(),
            vat_rate_bp: 0,
            quantity_milli: 2_000,
        };
        assert!(draft_lines(&[huge], &catalogue(), "CNY").is_err());
        let line = |net| Line {
            catalogue_code: None,
            description: "x".into(),
            quantity_milli: 1_000,
            unit_price_minor: net,
            vat_rate_bp: 0,
            net_minor: net,
            vat_minor: 0,
        };
        assert_eq!(totals(&[line(i64::MAX), line(1)]).map_err(|e| e.reason), Err("AMOUNT_OUT_OF_RANGE"));
    }

    #[test]
    fn series_are_two_to_eight_capitals() {
        assert!(valid_series("SVC"));
        assert!(!valid_series("S"));
        assert!(!valid_series("svc"));
        assert!(!valid_series("SERVICES1"));
    }
}

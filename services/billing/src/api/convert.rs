//! The edge: protobuf ⇄ model, validated on receipt.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use crm_domain::{Currency, Invalid, text};
use crm_platform::{Violations, error::invalid_argument, proto_time};
use crm_proto::{billing::v1 as pb, common::v1 as common};
use tonic::Status;
use uuid::Uuid;

use crate::{
    model::{
        AccountKind, AccountStatus, CatalogueKind, CustomerClass, EntryKind, InvoiceStatus, PaymentMethod, etag,
        invoicing::{self, LineRequest},
        pricing::Block,
    },
    store::{Account, CatalogueItem, Invoice, Line, Tariff},
};

crm_platform::enum_map!(pub(crate) account_kind, account_kind_pb, pb::AccountKind, AccountKind { Prepaid <=> Prepaid, Postpaid <=> Postpaid });
crm_platform::enum_map!(pub(crate) account_status,
    account_status_pb,
    pb::AccountStatus,
    AccountStatus { Active <=> Active, Suspended <=> Suspended, Closed <=> Closed });
crm_platform::enum_map!(pub(crate) customer_class,
    customer_class_pb,
    pb::CustomerClass,
    CustomerClass { Residential <=> Residential, Commercial <=> Commercial, Industrial <=> Industrial });
crm_platform::enum_map!(pub(crate) invoice_status,
    invoice_status_pb,
    pb::InvoiceStatus,
    InvoiceStatus { Draft <=> Draft, Issued <=> Issued, PartlyPaid <=> PartlyPaid, Paid <=> Paid, Void <=> Void });
crm_platform::enum_map!(pub(crate) payment_method,
    payment_method_pb,
    pb::PaymentMethod,
    PaymentMethod { Cash <=> Cash, BankCard <=> BankCard, Transfer <=> Transfer, OnSite <=> OnSite, PrepaidTopUp <=> PrepaidTopUp });
crm_platform::enum_map!(pub(crate) entry_kind,
    entry_kind_pb,
    pb::EntryKind,
    EntryKind { Charge <=> Charge, Payment <=> Payment, Credit <=> Credit, Refund <=> Refund, Adjustment <=> Adjustment });
crm_platform::enum_map!(pub(crate) catalogue_kind, catalogue_kind_pb, pb::CatalogueKind, CatalogueKind { Part <=> Part, Service <=> Service });

pub(crate) use crm_platform::edge::required;

pub(crate) fn uuid(field: &str, s: &str) -> Result<Uuid, Status> {
    Uuid::try_parse(s.trim()).map_err(|_| invalid_argument(field, "must be a UUID"))
}

pub(crate) fn opt_etag(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn money(m: i64, currency: &str) -> common::Money {
    common::Money { amount_minor: m, currency_code: currency.to_string() }
}

/// A positive amount in `currency`.
pub(crate) fn positive_amount(
    v: &mut Violations,
    field: &str,
    m: Option<&common::Money>,
    currency: &str,
) -> Option<i64> {
    let Some(m) = m else {
        v.add(field, "is required");
        return None;
    };
    match Currency::parse(&m.currency_code) {
        Ok(c) if c.code() == currency => {}
        Ok(c) => v.add(&format!("{field}.currency_code"), format!("the account is in {currency}, not {c}")),
        Err(e) => v.add(&format!("{field}.currency_code"), e.to_string()),
    }
    if m.amount_minor <= 0 {
        v.add(&format!("{field}.amount_minor"), "must be positive");
        return None;
    }
    Some(m.amount_minor)
}

pub(crate) fn date(v: &mut Violations, field: &str, d: Option<&common::Date>) -> Option<NaiveDate> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let parsed = u32::try_from(d.month)
        .ok()
        .zip(u32::try_from(d.day).ok())
        .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day));
    v.check(field, parsed.ok_or_else(|| Invalid::new("is not a calendar date")))
}

pub(crate) fn date_pb(d: NaiveDate) -> common::Date {
    common::Date {
        year: d.year(),
        month: i32::try_from(d.month()).unwrap_or(0),
        day: i32::try_from(d.day()).unwrap_or(0),
    }
}

pub(crate) fn time(v: &mut Violations, field: &str, t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    match t {
        Some(t) => v.check(field, proto_time::from_proto(t)),
        None => {
            v.add(field, "is required");
            None
        }
    }
}

pub(crate) fn vat_rate(v: &mut Violations, field: &str, bp: i32) -> Option<i32> {
    v.check(
        field,
        (0..=10_000).contains(&bp).then_some(bp).ok_or_else(|| Invalid::new("must be 0 to 10000 basis points")),
    )
}

/// A new invoice's header as asked for: its account, series and days to
/// pay (its lines are read with the account's currency at hand).
pub(crate) struct InvoiceHeader {
    pub account_id: Uuid,
    pub series: String,
    pub due_in_days: i32,
}

pub(crate) fn invoice_header(given: &pb::Invoice) -> Result<InvoiceHeader, Status> {
    let mut v = Violations::default();
    let account_id = v.check(
        "invoice.account_id",
        Uuid::try_parse(given.account_id.trim()).map_err(|_| Invalid::new("must be a UUID")),
    );
    let series = given.series.trim().to_string();
    if !invoicing::valid_series(&series) {
        v.add("invoice.series", "must be 2 to 8 capital letters, e.g. SVC");
    }
    let due_in_days = if given.due_in_days == 0 { invoicing::DEFAULT_DUE_IN_DAYS } else { given.due_in_days };
    if !(0..=365).contains(&due_in_days) {
        v.add("invoice.due_in_days", "must be 0 to 365");
    }
    if given.lines.is_empty() || given.lines.len() > invoicing::MAX_LINES {
        v.add("invoice.lines", format!("give 1 to {} lines", invoicing::MAX_LINES));
    }
    let account_id = v.finish_with(account_id)?;
    Ok(InvoiceHeader { account_id, series, due_in_days })
}

/// The well-formed lines with their positions; what is wrong with the
/// others goes into `v`. A price given by hand must be in `currency` (the
/// account's).
pub(crate) fn invoice_lines_in(
    v: &mut Violations,
    lines: &[pb::InvoiceLine],
    currency: &str,
) -> Vec<(usize, LineRequest)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| line_in(v, &format!("invoice.lines[{i}]"), l, currency).map(|r| (i, r)))
        .collect()
}

fn line_in(v: &mut Violations, at: &str, l: &pb::InvoiceLine, currency: &str) -> Option<LineRequest> {
    let field = |f: &str| format!("{at}.{f}");
    if l.quantity_milli <= 0 {
        v.add(&field("quantity_milli"), "must be positive");
        return None;
    }
    let quantity_milli = l.quantity_milli;
    if !l.catalogue_code.trim().is_empty() {
        let description = l.description.trim();
        let description = if description.is_empty() {
            None
        } else {
            Some(v.check(&field("description"), text::required(description, 300))?)
        };
        return Some(LineRequest::Catalogue {
            code: l.catalogue_code.trim().to_uppercase(),
            description,
            quantity_milli,
        });
    }
    let description = v.check(&field("description"), text::required(&l.description, 300));
    let price = positive_amount(v, &field("unit_price"), l.unit_price.as_ref(), currency);
    let vat = vat_rate(v, &field("vat_rate_bp"), l.vat_rate_bp);
    let (description, unit_price_minor, vat_rate_bp) = (description?, price?, vat?);
    Some(LineRequest::Given {
        description,
        unit_price_minor,
        currency: currency.to_string(),
        vat_rate_bp,
        quantity_milli,
    })
}

pub(crate) fn reason(field: &str, s: &str) -> Result<String, Status> {
    text::required(s, 1000).map_err(|e| invalid_argument(field, e.reason))
}

pub(crate) fn account(a: &Account) -> pb::Account {
    pb::Account {
        id: a.id.to_string(),
        customer_id: a.customer_id.to_string(),
        kind: account_kind_pb(a.kind),
        status: account_status_pb(a.status),
        customer_class: customer_class_pb(a.customer_class),
        card_number: a.card_number.clone().unwrap_or_default(),
        balance: Some(money(a.balance_minor, &a.currency)),
        available_credit: Some(money(a.available_credit_minor, &a.currency)),
        open_time: Some(proto_time::to_proto(a.created_at)),
        etag: etag(a.version),
        merged_from_customer_id: a.merged_from.map(|c| c.to_string()).unwrap_or_default(),
        side_account: a.side_account,
    }
}

pub(crate) fn tariff_in(t: &pb::Tariff) -> Result<(CustomerClass, NaiveDate, i32, Vec<Block>, String), Status> {
    let mut v = Violations::default();
    let class = v.check("tariff.customer_class", required(customer_class(t.customer_class)));
    let from = date(&mut v, "tariff.effective_from", t.effective_from.as_ref());
    let vat = vat_rate(&mut v, "tariff.vat_rate_bp", t.vat_rate_bp);
    let currency = if t.currency_code.is_empty() {
        Some("CNY".to_string())
    } else {
        v.check(
            "tariff.currency_code",
            Currency::parse(&t.currency_code).map(|c| c.code().to_string()).map_err(|e| Invalid::new(e.to_string())),
        )
    };
    let blocks: Vec<Block> = t
        .blocks
        .iter()
        .map(|b| Block { up_to_m3: (b.up_to_m3 != 0).then_some(b.up_to_m3), price_minor_per_m3: b.price_minor_per_m3 })
        .collect();
    if let Err(e) = crate::model::pricing::validate_blocks(&blocks) {
        v.add("tariff.blocks", e);
    }
    let (class, from, vat, currency) = v.finish_with((class, from, vat, currency))?;
    Ok((class, from, vat, blocks, currency))
}

pub(crate) fn tariff(t: &Tariff) -> pb::Tariff {
    pb::Tariff {
        id: t.id.to_string(),
        customer_class: customer_class_pb(t.customer_class),
        effective_from: Some(date_pb(t.effective_from)),
        vat_rate_bp: t.vat_rate_bp,
        blocks: t
            .blocks
            .iter()
            .map(|b| pb::TariffBlock { up_to_m3: b.up_to_m3.unwrap_or(0), price_minor_per_m3: b.price_minor_per_m3 })
            .collect(),
        currency_code: t.currency.clone(),
        created_by: t.created_by.clone(),
    }
}

pub(crate) fn item_in(i: &pb::CatalogueItem) -> Result<CatalogueItem, Status> {
    let mut v = Violations::default();
    let code = i.code.trim().to_uppercase();
    if code.is_empty() || code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        v.add("item.code", "must be 1 to 32 letters, digits or dashes");
    }
    let description = v.check("item.description", text::required(&i.description, 300));
    let kind = v.check("item.kind", required(catalogue_kind(i.kind)));
    let currency = i.unit_price.as_ref().map(|m| m.currency_code.clone()).unwrap_or_default();
    let currency = v.check(
        "item.unit_price.currency_code",
        Currency::parse(&currency).map(|c| c.code().to_string()).map_err(|e| Invalid::new(e.to_string())),
    );
    let price = match &i.unit_price {
        Some(m) if m.amount_minor >= 0 => Some(m.amount_minor),
        Some(_) => {
            v.add("item.unit_price.amount_minor", "must not be negative");
            None
        }
        None => {
            v.add("item.unit_price", "is required");
            None
        }
    };
    let vat = vat_rate(&mut v, "item.vat_rate_bp", i.vat_rate_bp);
    let (description, kind, currency, unit_price_minor, vat_rate_bp) =
        v.finish_with((description, kind, currency, price, vat))?;
    Ok(CatalogueItem { code, description, kind, unit_price_minor, currency, vat_rate_bp, active: i.active })
}

pub(crate) fn item(i: &CatalogueItem) -> pb::CatalogueItem {
    pb::CatalogueItem {
        code: i.code.clone(),
        description: i.description.clone(),
        kind: catalogue_kind_pb(i.kind),
        unit_price: Some(money(i.unit_price_minor, &i.currency)),
        vat_rate_bp: i.vat_rate_bp,
        active: i.active,
    }
}

pub(crate) fn invoice(i: &Invoice) -> pb::Invoice {
    let m = |v| Some(money(v, &i.currency));
    pb::Invoice {
        id: i.id.to_string(),
        account_id: i.account_id.to_string(),
        series: i.series.clone(),
        number: i.number.clone().unwrap_or_default(),
        status: invoice_status_pb(i.status),
        lines: i.lines.iter().map(|l| line(l, &i.currency)).collect(),
        net: m(i.net_minor),
        vat: m(i.vat_minor),
        total: m(i.total_minor),
        paid: m(i.paid_minor),
        due_in_days: i.due_in_days,
        due_date: i.due_on.map(date_pb),
        issue_time: i.issued_at.map(proto_time::to_proto),
        void_reason: i.void_reason.clone().unwrap_or_default(),
        etag: etag(i.version),
    }
}

pub(crate) fn allocation(a: &crate::usecases::posting::Allocated) -> pb::Allocation {
    pb::Allocation {
        invoice_id: a.invoice_id.to_string(),
        invoice_number: a.invoice_number.clone(),
        amount: Some(money(a.amount_minor, &a.currency)),
    }
}

fn line(l: &Line, currency: &str) -> pb::InvoiceLine {
    pb::InvoiceLine {
        catalogue_code: l.catalogue_code.clone().unwrap_or_default(),
        description: l.description.clone(),
        quantity_milli: l.quantity_milli,
        unit_price: Some(money(l.unit_price_minor, currency)),
        vat_rate_bp: l.vat_rate_bp,
        net: Some(money(l.net_minor, currency)),
        vat: Some(money(l.vat_minor, currency)),
    }
}

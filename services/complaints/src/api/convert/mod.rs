//! Protobuf ⇄ model at the edge: requests are validated into model values
//! (field paths in every violation), model values become responses.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use crm_domain::{Currency, Invalid, Money, WorkingCalendar, ids::CustomerId, page, text};
use crm_platform::{Violations, proto_time};
use crm_proto::{common::v1 as common, complaints::v1 as pb};
use tonic::Status;

use crate::{
    model::{
        Category, Channel, Complaint, ComplaintId, CustomerTier, DeadlineUnit, Escalation, EscalationLevel, Findings,
        References, RejectionReason, Retest, RetestOutcome, Round, ServiceLevel, State, Step, Urgency, Verdict,
        deadline::DeadlinePolicy, intake::NewComplaint,
    },
    store::{ListFilter, Period, StatsRow},
};

/// Longest free text (descriptions, answers, findings).
pub(crate) const LONG_TEXT: usize = 10_000;
/// Longest short text (reasons, notes).
pub(crate) const NOTE: usize = 2_000;
/// Most ids per reference list, team members per escalation.
const MAX_ITEMS: usize = 50;

crm_platform::enum_map!(pub(crate) state_in, state_out, pb::ComplaintState, State {
    Registered <=> Registered, Accepted <=> Accepted, Rejected <=> Rejected, Investigating <=> Investigating,
    Resolved <=> Resolved, Answered <=> Answered, Closed <=> Closed,
});
crm_platform::enum_map!(pub(crate) channel_in, channel_out, pb::Channel, Channel {
    Phone <=> Phone, Email <=> Email, Letter <=> Letter, InPerson <=> InPerson, Web <=> Web,
    SocialMedia <=> SocialMedia,
});
crm_platform::enum_map!(pub(crate) category_in, category_out, pb::Category, Category {
    ServiceAttitude <=> ServiceAttitude, ServiceQuality <=> ServiceQuality, ProductFunction <=> ProductFunction,
    Billing <=> Billing, FieldWork <=> FieldWork, TestResult <=> TestResult,
});
crm_platform::enum_map!(pub(crate) urgency_in, urgency_out, pb::Urgency, Urgency { Normal <=> Normal, Urgent <=> Urgent });
crm_platform::enum_map!(pub(crate) service_level_in, service_level_out, pb::ServiceLevel, ServiceLevel {
    General <=> General, Key <=> Key, Special <=> Special,
});
crm_platform::enum_map!(pub(crate) tier_in, tier_out, pb::CustomerTier, CustomerTier {
    Potential <=> Potential, General <=> General, Key <=> Key, Vip <=> Vip,
});
crm_platform::enum_map!(pub(crate) level_in, level_out, pb::EscalationLevel, EscalationLevel {
    Department <=> Department, Office <=> Office, SeniorManagement <=> SeniorManagement,
});
crm_platform::enum_map!(pub(crate) rejection_in, rejection_out, pb::RejectionReason, RejectionReason {
    AppealWindowClosed <=> AppealWindowClosed, NotAComplaint <=> NotAComplaint, Duplicate <=> Duplicate,
    OutOfScope <=> OutOfScope, InsufficientInformation <=> InsufficientInformation,
});
crm_platform::enum_map!(pub(crate) verdict_in, verdict_out, pb::Verdict, Verdict { Justified <=> Justified, Unjustified <=> Unjustified });
crm_platform::enum_map!(pub(crate) outcome_in, outcome_out, pb::RetestOutcome, RetestOutcome { Upheld <=> Upheld, Amended <=> Amended });
crm_platform::enum_map!(pub(crate) unit_in, unit_out, pb::DeadlineUnit, DeadlineUnit {
    CalendarDays <=> CalendarDays, WorkingDays <=> WorkingDays, WorkingHours <=> WorkingHours,
});

pub(crate) use crm_platform::edge::required;

mod complaint;
mod reports;

pub(crate) use complaint::*;
pub(crate) use reports::*;

pub(crate) fn complaint_id(v: &mut Violations, field: &str, s: &str) -> Option<ComplaintId> {
    v.check(field, ComplaintId::parse(s))
}

/// A complaint number as staff read it out or type it (`cmp-2026-000123`,
/// full-width digits, spaces): `CMP-<year>-<6 digits>` (CMP-1).
pub(crate) fn complaint_number(s: &str) -> Result<String, Invalid> {
    let folded: String =
        crm_domain::name::width_fold(s).chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let parts: Vec<&str> = folded.split('-').collect();
    match parts.as_slice() {
        ["CMP", year, seq]
            if year.len() == 4
                && seq.len() == 6
                && year.bytes().all(|b| b.is_ascii_digit())
                && seq.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(folded)
        }
        _ => Err(Invalid::new("must be a complaint number like CMP-2026-000123")),
    }
}

/// GetComplaint's `id`: the complaint's UUID or its number.
pub(crate) enum ComplaintRef {
    Id(ComplaintId),
    Number(String),
}

pub(crate) fn complaint_ref(v: &mut Violations, field: &str, s: &str) -> Option<ComplaintRef> {
    if let Ok(id) = ComplaintId::parse(s) {
        return Some(ComplaintRef::Id(id));
    }
    match complaint_number(s) {
        Ok(n) => Some(ComplaintRef::Number(n)),
        Err(_) => {
            v.add(field, "must be a complaint id (UUID) or number (CMP-2026-000123)");
            None
        }
    }
}

pub(crate) fn etag(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// An id of another service's record: one line, up to 100 characters.
fn ids(v: &mut Violations, field: &str, list: &[String]) -> Vec<String> {
    if list.len() > MAX_ITEMS {
        v.add(field, format!("at most {MAX_ITEMS} entries"));
        return vec![];
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        match text::single_line(s, 100) {
            Ok(t) if t.is_empty() => v.add(&format!("{field}[{i}]"), "must not be empty"),
            Ok(t) if out.contains(&t) => v.add(&format!("{field}[{i}]"), "is listed twice"),
            Ok(t) => out.push(t),
            Err(e) => v.add(&format!("{field}[{i}]"), e.reason),
        }
    }
    out
}

fn date_in(d: &common::Date) -> Result<NaiveDate, Invalid> {
    let (m, day) = (u32::try_from(d.month), u32::try_from(d.day));
    match (m, day) {
        (Ok(m), Ok(day)) => NaiveDate::from_ymd_opt(d.year, m, day).ok_or_else(|| Invalid::new("is not a valid date")),
        _ => Err(Invalid::new("is not a valid date")),
    }
}

pub(crate) fn date_out(d: NaiveDate) -> common::Date {
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

pub(crate) fn timestamp(field: &str, v: &mut Violations, t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    match t {
        Some(t) => v.check(field, proto_time::from_proto(t)),
        None => {
            v.add(field, "is required");
            None
        }
    }
}

fn non_empty(s: String) -> Result<String, Invalid> {
    if s.is_empty() { Err(Invalid::new("is required")) } else { Ok(s) }
}

/// Free text that must be given.
pub(crate) fn required_text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, text::required(s, max))
}

pub(crate) fn optional_text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, text::optional(s, max))
}

/// Names of people (testers, team members): distinct, one line each.
pub(crate) fn people(v: &mut Violations, field: &str, list: &[String]) -> Vec<String> {
    ids(v, field, list)
}

pub(crate) fn money(v: &mut Violations, field: &str, m: Option<&common::Money>) -> Option<Money> {
    let Some(m) = m else {
        v.add(field, "is required");
        return None;
    };
    let currency = v.check(
        &format!("{field}.currency_code"),
        Currency::parse(&m.currency_code).map_err(|e| Invalid::new(e.to_string())),
    );
    if m.amount_minor <= 0 {
        v.add(&format!("{field}.amount_minor"), "must be positive");
        return None;
    }
    currency.map(|c| Money::new(m.amount_minor, c))
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(proto_time::to_proto(t))
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(proto_time::to_proto)
}

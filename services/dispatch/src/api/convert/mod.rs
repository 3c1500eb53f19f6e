//! Protobuf ⇄ model at the edge: requests are validated into model values
//! (field paths in every violation), model values become responses. Work
//! orders and technicians here; the installed base in `devices`, money,
//! parts, completion and cash in `money`.

mod devices;
mod metering;
mod money;
mod orders;
mod planning;

pub(crate) use devices::*;
pub(crate) use metering::*;
pub(crate) use money::*;
pub(crate) use orders::*;
pub(crate) use planning::*;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use crm_domain::{Invalid, Phone, ids::CustomerId, page, text};
use crm_platform::{Violations, error::invalid_argument, proto_time};
use crm_proto::{common::v1 as common, dispatch::v1 as pb};
use tonic::Status;

use crate::{
    model::{
        Details, Kind, NewWorkOrder, Priority, RepairDetails, ServiceLevel, State, Step, Technician, TechnicianId,
        Urgency, Vehicle, WorkOrder, WorkOrderId, access::OrderScope, planning::Candidate,
    },
    store::ListFilter,
};

/// Longest free text (descriptions, faults, work done).
pub(crate) const LONG_TEXT: usize = 10_000;
/// Longest short text (reasons, notes, addresses).
pub(crate) const NOTE: usize = 2_000;
/// Most vehicles in one installation request.
const MAX_VEHICLES: usize = 500;
/// Most skills on an order or a technician.
const MAX_SKILLS: usize = 30;

crm_platform::enum_map!(pub(crate) state_in, state_out, pb::WorkOrderState, State {
    Draft <=> Draft, PendingApproval <=> PendingApproval, Approved <=> Approved, Assigned <=> Assigned,
    EnRoute <=> EnRoute, OnSite <=> OnSite, Completed <=> Completed, Closed <=> Closed, Cancelled <=> Cancelled,
});
crm_platform::enum_map!(pub(crate) kind_in, kind_out, pb::WorkOrderKind, Kind {
    Installation <=> Installation, Repair <=> Repair, Maintenance <=> Maintenance, Inspection <=> Inspection,
});
crm_platform::enum_map!(pub(crate) urgency_in, urgency_out, pb::Urgency, Urgency { Normal <=> Normal, Urgent <=> Urgent });
crm_platform::enum_map!(pub(crate) priority_in, priority_out, pb::Priority, Priority {
    Low <=> Low, Medium <=> Medium, High <=> High, Critical <=> Critical,
});
crm_platform::enum_map!(pub(crate) level_in, level_out, pb::ServiceLevel, ServiceLevel { General <=> General, Key <=> Key, Special <=> Special });

pub(crate) use crm_platform::edge::required;

pub(crate) fn order_id(v: &mut Violations, field: &str, s: &str) -> Option<WorkOrderId> {
    v.check(field, WorkOrderId::parse(s))
}

pub(crate) fn technician_id(v: &mut Violations, field: &str, s: &str) -> Option<TechnicianId> {
    v.check(field, TechnicianId::parse(s))
}

pub(crate) fn etag(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

fn non_empty(s: String) -> Result<String, Invalid> {
    if s.is_empty() { Err(Invalid::new("is required")) } else { Ok(s) }
}

/// One line of text that must be given.
pub(crate) fn line(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, text::single_line(s, max).and_then(non_empty))
}

pub(crate) fn required_text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, text::required(s, max))
}

pub(crate) fn optional_text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, text::optional(s, max))
}

fn phone(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, Phone::parse(s)).map(|p| p.as_str().to_string())
}

/// Skill names: one line, lower case, distinct, sorted.
pub(crate) fn skills(v: &mut Violations, field: &str, list: &[String]) -> Vec<String> {
    if list.len() > MAX_SKILLS {
        v.add(field, format!("at most {MAX_SKILLS} skills"));
        return vec![];
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        match text::single_line(s, 50) {
            Ok(t) if t.is_empty() => v.add(&format!("{field}[{i}]"), "must not be empty"),
            Ok(t) if out.contains(&t.to_lowercase()) => v.add(&format!("{field}[{i}]"), "is listed twice"),
            Ok(t) => out.push(t.to_lowercase()),
            Err(e) => v.add(&format!("{field}[{i}]"), e.reason),
        }
    }
    out.sort();
    out
}

pub(crate) fn date_in(d: &common::Date) -> Result<NaiveDate, Invalid> {
    let (m, day) = (u32::try_from(d.month), u32::try_from(d.day));
    match (m, day) {
        (Ok(m), Ok(day)) => NaiveDate::from_ymd_opt(d.year, m, day).ok_or_else(|| Invalid::new("is not a valid date")),
        _ => Err(Invalid::new("is not a valid date")),
    }
}

pub(crate) fn date_out(d: NaiveDate) -> common::Date {
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

pub(crate) fn required_date(v: &mut Violations, field: &str, d: Option<&common::Date>) -> Option<NaiveDate> {
    match d {
        Some(d) => v.check(field, date_in(d)),
        None => {
            v.add(field, "is required");
            None
        }
    }
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    proto_time::to_proto(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::CreateWorkOrderRequest {
        pb::CreateWorkOrderRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            customer_id: uuid::Uuid::now_v7().to_string(),
            kind: pb::WorkOrderKind::Installation as i32,
            urgency: pb::Urgency::Normal as i32,
            site_address: "北京市朝阳区 1 号".into(),
            contact_name: "王".into(),
            contact_phone: "010-12345678".into(),
            description: String::new(),
            required_skills: vec!["GPS".into()],
            territory: "north".into(),
            installation: Some(pb::InstallationDetails {
                request_reference: "REQ-1".into(),
                vehicles: vec![
                    pb::Vehicle {
                        plate: "京a12345".into(),
                        driver_name: "李".into(),
                        driver_phone: String::new(),
                        device_model: "GT-06".into(),
                    },
                    pb::Vehicle {
                        plate: "京B54321".into(),
                        driver_name: "张".into(),
                        driver_phone: String::new(),
                        device_model: "GT-06".into(),
                    },
                ],
            }),
            repair: None,
        }
    }

    fn fields(s: &Status) -> Vec<String> {
        use tonic_types::StatusExt;
        s.get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_installation_becomes_one_line_per_vehicle() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let n = new_work_order(&request(), today).unwrap_or_else(|e| panic!("{e:?}"));
        let Details::Installation { vehicles, .. } = n.details else { panic!("installation") };
        assert_eq!(vehicles.iter().map(|v| v.plate.as_str()).collect::<Vec<_>>(), ["京A12345", "京B54321"]);
        assert_eq!(n.required_skills, ["gps"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let mut r = request();
        r.customer_id = "x".into();
        r.contact_phone = "abc".into();
        if let Some(i) = r.installation.as_mut() {
            i.vehicles[1].plate = "京A12345".into();
        }
        r.repair = Some(pb::RepairDetails::default());
        let Err(s) = new_work_order(&r, today) else { panic!("must fail") };
        let f = fields(&s);
        for want in ["customer_id", "contact_phone", "installation.vehicles[1].plate", "repair"] {
            assert!(f.iter().any(|x| x == want), "{want} in {f:?}");
        }
    }

    #[test]
    fn a_repair_needs_its_details() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let mut r = request();
        r.kind = pb::WorkOrderKind::Repair as i32;
        r.installation = None;
        let Err(s) = new_work_order(&r, today) else { panic!("must fail") };
        assert_eq!(fields(&s), ["repair"]);
        r.repair = Some(pb::RepairDetails {
            device_model: "GT-06".into(),
            purchase_date: Some(date_out(today.succ_opt().unwrap_or(today))),
            fault: String::new(),
            device_serial: String::new(),
        });
        let Err(s) = new_work_order(&r, today) else { panic!("must fail") };
        assert_eq!(fields(&s), ["repair.purchase_date", "repair.fault"]);
    }
}

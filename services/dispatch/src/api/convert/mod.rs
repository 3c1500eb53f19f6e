//! Protobuf ⇄ model at the edge: requests are validated into model values
//! (field paths in every violation), model values become responses. Work
//! orders and technicians here; the installed base in `devices`, money,
//! parts, completion and cash in `money`.

mod devices;
mod metering;
mod money;

pub(crate) use devices::*;
pub(crate) use metering::*;
pub(crate) use money::*;

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

fn vehicles(v: &mut Violations, list: &[pb::Vehicle]) -> Vec<Vehicle> {
    let field = "installation.vehicles";
    if list.is_empty() {
        v.add(field, "an installation request lists at least one vehicle");
    }
    if list.len() > MAX_VEHICLES {
        v.add(field, format!("at most {MAX_VEHICLES} vehicles per request"));
        return vec![];
    }
    let mut out: Vec<Vehicle> = Vec::with_capacity(list.len());
    for (i, x) in list.iter().enumerate() {
        let f = |name: &str| format!("{field}[{i}].{name}");
        let plate = line(v, &f("plate"), &x.plate, 20).map(|p| p.to_uppercase());
        if let Some(p) = &plate
            && out.iter().any(|o| &o.plate == p)
        {
            v.add(&f("plate"), "is listed twice");
        }
        let driver_name = line(v, &f("driver_name"), &x.driver_name, 100);
        let driver_phone = if x.driver_phone.trim().is_empty() {
            Some(String::new())
        } else {
            phone(v, &f("driver_phone"), &x.driver_phone)
        };
        let device_model = line(v, &f("device_model"), &x.device_model, 100);
        if let (Some(plate), Some(driver_name), Some(driver_phone), Some(device_model)) =
            (plate, driver_name, driver_phone, device_model)
        {
            out.push(Vehicle { plate, driver_name, driver_phone, device_model });
        }
    }
    out
}

fn repair(v: &mut Violations, r: &pb::RepairDetails, today: NaiveDate) -> Option<RepairDetails> {
    let device_model = line(v, "repair.device_model", &r.device_model, 100);
    let purchase_date = required_date(v, "repair.purchase_date", r.purchase_date.as_ref());
    if purchase_date.is_some_and(|d| d > today) {
        v.add("repair.purchase_date", "must not be in the future");
    }
    let fault = required_text(v, "repair.fault", &r.fault, LONG_TEXT);
    let device_serial = v.check("repair.device_serial", text::single_line(&r.device_serial, 50));
    Some(RepairDetails {
        device_model: device_model?,
        purchase_date: purchase_date?,
        fault: fault?,
        device_serial: device_serial?,
    })
}

/// Validates a CreateWorkOrder request; `today` is the local date.
pub(crate) fn new_work_order(req: &pb::CreateWorkOrderRequest, today: NaiveDate) -> Result<NewWorkOrder, Status> {
    let mut v = Violations::default();
    let customer_id = v.check("customer_id", CustomerId::parse(&req.customer_id));
    let kind = v.check("kind", required(kind_in(req.kind)));
    let urgency = v.check("urgency", required(urgency_in(req.urgency)));
    let site_address = line(&mut v, "site_address", &req.site_address, 500);
    let contact_name = line(&mut v, "contact_name", &req.contact_name, 100);
    let contact_phone = phone(&mut v, "contact_phone", &req.contact_phone);
    let description = optional_text(&mut v, "description", &req.description, LONG_TEXT);
    let required_skills = skills(&mut v, "required_skills", &req.required_skills);
    let territory = line(&mut v, "territory", &req.territory, 100);
    if kind != Some(Kind::Installation) && req.installation.is_some() {
        v.add("installation", "only installation orders carry an installation request");
    }
    if kind != Some(Kind::Repair) && req.repair.is_some() {
        v.add("repair", "only repair orders carry repair details");
    }
    let details = match kind {
        Some(Kind::Installation) => match &req.installation {
            Some(i) => {
                let request_reference = line(&mut v, "installation.request_reference", &i.request_reference, 100);
                let vehicles = vehicles(&mut v, &i.vehicles);
                request_reference.map(|request_reference| Details::Installation { request_reference, vehicles })
            }
            None => {
                v.add("installation", "is required for an installation order (DSP-2)");
                None
            }
        },
        Some(Kind::Repair) => match &req.repair {
            Some(r) => repair(&mut v, r, today).map(Details::Repair),
            None => {
                v.add("repair", "is required for a repair order (DSP-2)");
                None
            }
        },
        Some(Kind::Maintenance) => Some(Details::Maintenance),
        Some(Kind::Inspection) => Some(Details::Inspection),
        None => None,
    };
    // Repairs come with a described fault; planned work says what to do.
    if matches!(kind, Some(Kind::Maintenance | Kind::Inspection)) && req.description.trim().is_empty() {
        v.add("description", "say what is to be maintained or inspected");
    }
    let (customer_id, urgency, site_address, contact_name, contact_phone, description, territory, details) = v
        .finish_with((
            customer_id,
            urgency,
            site_address,
            contact_name,
            contact_phone,
            description,
            territory,
            details,
        ))?;
    Ok(NewWorkOrder {
        customer_id,
        urgency,
        site_address,
        contact_name,
        contact_phone,
        description,
        required_skills,
        territory,
        details,
    })
}

pub(crate) fn list_filter(req: &pb::ListWorkOrdersRequest) -> Result<(ListFilter, u64), Status> {
    let mut v = Violations::default();
    let state = v.check("state", state_in(req.state)).flatten();
    let kind = v.check("kind", kind_in(req.kind)).flatten();
    let customer_id = if req.customer_id.is_empty() {
        None
    } else {
        v.check("customer_id", CustomerId::parse(&req.customer_id)).map(|c| c.0)
    };
    let technician_id =
        if req.technician_id.is_empty() { None } else { technician_id(&mut v, "technician_id", &req.technician_id) };
    v.finish()?;
    let fingerprint = page::fingerprint(&[
        state.map(|s| s.as_str()).unwrap_or("").as_bytes(),
        kind.map(|s| s.as_str()).unwrap_or("").as_bytes(),
        req.customer_id.as_bytes(),
        req.technician_id.as_bytes(),
    ]);
    let technician_id = technician_id.map(|t| t.0);
    // The caller's scope is set by the handler (it is not part of the page
    // token's filter: the token is the caller's own).
    Ok((ListFilter { state, kind, customer_id, technician_id, scope: OrderScope::All }, fingerprint))
}

/// Validates a technician to register; `by`/`at` are the registrar.
pub(crate) fn new_technician(t: Option<&pb::Technician>, by: &str, at: DateTime<Utc>) -> Result<Technician, Status> {
    let mut v = Violations::default();
    let Some(t) = t else { return Err(invalid_argument("technician", "is required")) };
    let user_sub = line(&mut v, "technician.user_sub", &t.user_sub, 200);
    let display_name = line(&mut v, "technician.display_name", &t.display_name, 100);
    let skills = skills(&mut v, "technician.skills", &t.skills);
    let territory = line(&mut v, "technician.territory", &t.territory, 100);
    if !(1..=50).contains(&t.daily_capacity) {
        v.add("technician.daily_capacity", "must be between 1 and 50 orders a day");
    }
    let (user_sub, display_name, territory) = v.finish_with((user_sub, display_name, territory))?;
    Ok(Technician {
        id: TechnicianId::new(),
        user_sub,
        display_name,
        skills,
        territory,
        daily_capacity: t.daily_capacity,
        created_by: by.to_string(),
        created_at: at,
        version: 1,
    })
}

pub(crate) fn technician(t: &Technician) -> pb::Technician {
    pb::Technician {
        id: t.id.to_string(),
        user_sub: t.user_sub.clone(),
        display_name: t.display_name.clone(),
        skills: t.skills.clone(),
        territory: t.territory.clone(),
        daily_capacity: t.daily_capacity,
        created_at: Some(ts(t.created_at)),
        etag: t.etag(),
    }
}

pub(crate) fn candidate(c: &Candidate) -> pb::Candidate {
    pb::Candidate {
        technician: Some(technician(&c.technician)),
        qualified: c.qualified(),
        skills_matched: i32::try_from(c.skills_matched).unwrap_or(i32::MAX),
        skills_required: i32::try_from(c.skills_required).unwrap_or(i32::MAX),
        same_territory: c.same_territory,
        booked: c.booked,
        capacity: c.capacity,
    }
}

fn step(s: &Step) -> pb::Step {
    pb::Step {
        action: s.action.clone(),
        from_state: s.from_state.map(state_out).unwrap_or_default(),
        to_state: state_out(s.to_state),
        actor: s.actor.clone(),
        at: Some(ts(s.at)),
        note: s.note.clone(),
    }
}

pub(crate) fn work_order(w: &WorkOrder) -> pb::WorkOrder {
    let (installation, repair) = match &w.details {
        Details::Installation { request_reference, vehicles } => (
            Some(pb::InstallationDetails {
                request_reference: request_reference.clone(),
                vehicles: vehicles
                    .iter()
                    .map(|x| pb::Vehicle {
                        plate: x.plate.clone(),
                        driver_name: x.driver_name.clone(),
                        driver_phone: x.driver_phone.clone(),
                        device_model: x.device_model.clone(),
                    })
                    .collect(),
            }),
            None,
        ),
        Details::Repair(r) => (
            None,
            Some(pb::RepairDetails {
                device_model: r.device_model.clone(),
                purchase_date: Some(date_out(r.purchase_date)),
                fault: r.fault.clone(),
                device_serial: r.device_serial.clone(),
            }),
        ),
        Details::Maintenance | Details::Inspection => (None, None),
    };
    pb::WorkOrder {
        branch: w.branch.clone(),
        id: w.id.to_string(),
        customer_id: w.customer_id.to_string(),
        customer_name: w.customer_name.clone(),
        service_level: level_out(w.service_level),
        kind: kind_out(w.kind()),
        state: state_out(w.state),
        urgency: urgency_out(w.urgency),
        priority: priority_out(w.priority),
        site_address: w.site_address.clone(),
        contact_name: w.contact_name.clone(),
        contact_phone: w.contact_phone.clone(),
        description: w.description.clone(),
        required_skills: w.required_skills.clone(),
        territory: w.territory.clone(),
        installation,
        repair,
        technician_id: w.technician_id.map(|t| t.to_string()).unwrap_or_default(),
        scheduled_on: w.scheduled_on.map(date_out),
        parts_due_at: w.parts_due_at.map(ts),
        checklist_confirmed_by: w.checklist_confirmed_by.clone().unwrap_or_default(),
        checklist_confirmed_at: w.checklist_confirmed_at.map(ts),
        work_done: w.work_done.clone(),
        signed_off_by: w.signed_off_by.clone(),
        cancel_reason: w.cancel_reason.clone(),
        created_by: w.created_by.clone(),
        created_at: Some(ts(w.created_at)),
        updated_at: Some(ts(w.updated_at)),
        etag: w.etag(),
        history: w.history.iter().map(step).collect(),
        device_id: w.completion.as_ref().and_then(|c| c.device_id).map(|d| d.to_string()).unwrap_or_default(),
        in_warranty: w.completion.as_ref().is_some_and(|c| c.in_warranty),
        parts: w.completion.as_ref().map(|c| c.parts.iter().map(part_line).collect()).unwrap_or_default(),
        amount_due: w.completion.as_ref().map(|c| money_out(c.amount_due)),
        payment_collected: w.completion.as_ref().map(|c| money_out(c.collected)),
        labour_minutes: w.completion.as_ref().map_or(0, |c| c.labour_minutes),
        labour_charge: w.completion.as_ref().and_then(|c| c.labour_charge).map(money_out),
        invoice: w.invoice.as_ref().map(|i| pb::WorkOrderInvoice {
            invoice_id: i.id.to_string(),
            number: i.number.clone(),
            status: i.status.clone(),
            total: Some(money_out(i.total)),
            paid: Some(money_out(i.paid)),
        }),
    }
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

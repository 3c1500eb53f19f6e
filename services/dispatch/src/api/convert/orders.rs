//! Work orders: creation (vehicles, repair details) and the list filter in;
//! the order with its lines and history out.

use super::*;

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

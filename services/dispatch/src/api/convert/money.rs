//! Money, the parts catalogue, completion and cash (DSP-5, DSP-6).

use chrono::NaiveDate;
use crm_domain::{Currency, Invalid, Money, text};
use crm_platform::Violations;
use crm_proto::{common::v1 as common, dispatch::v1 as pb};
use tonic::Status;

use super::{LONG_TEXT, NOTE, line, optional_text, order_id, required_text, ts};
use crate::model::{
    WorkOrderId,
    base::DeviceId,
    cash::{Collection, Handover},
    charges::{Part, PartLine},
};

pub(crate) fn money_out(m: Money) -> common::Money {
    common::Money { amount_minor: m.amount_minor(), currency_code: m.currency().code().to_string() }
}

pub(crate) fn money_in(m: &common::Money) -> Result<Money, Invalid> {
    let currency = Currency::parse(&m.currency_code).map_err(|e| Invalid::new(e.to_string()))?;
    Ok(Money::new(m.amount_minor, currency))
}

pub(crate) fn part_line(l: &PartLine) -> pb::PartLine {
    pb::PartLine {
        part_code: l.code.clone(),
        name: l.name.clone(),
        quantity: l.quantity,
        unit_price: Some(money_out(l.unit_price)),
        // A stored line was priced without overflow at completion.
        line_total: l.total().ok().map(money_out),
        vat_rate_bp: l.vat_rate_bp,
        line_net: l.amounts().ok().map(|(net, _)| money_out(net)),
        line_vat: l.amounts().ok().map(|(_, vat)| money_out(vat)),
    }
}

/// A validated CompleteWorkOrder request (parts are priced by the caller).
pub(crate) struct CompletionInput {
    pub id: WorkOrderId,
    pub work_done: String,
    pub signed_off_by: String,
    /// (code, quantity), codes distinct.
    pub parts: Vec<(String, i32)>,
    pub device_id: Option<DeviceId>,
    pub terminal_swap: Option<(String, String)>,
    pub sim_swap: Option<(String, String)>,
    pub swap_reason: String,
    pub collected: Option<Money>,
    /// Labour on site, whole minutes.
    pub labour_minutes: i32,
}

fn swap_in(v: &mut Violations, field: &str, s: Option<&pb::NumberSwap>) -> Option<(String, String)> {
    let s = s?;
    let old = v.check(&format!("{field}.old_number"), text::single_line(&s.old_number, 50))?;
    let new = line(v, &format!("{field}.new_number"), &s.new_number, 50)?;
    Some((old, new))
}

pub(crate) fn completion(req: &pb::CompleteWorkOrderRequest) -> Result<CompletionInput, Status> {
    let mut v = Violations::default();
    let id = order_id(&mut v, "id", &req.id);
    let work_done = required_text(&mut v, "work_done", &req.work_done, LONG_TEXT);
    let signed_off_by = line(&mut v, "signed_off_by", &req.signed_off_by, NOTE);
    let mut parts: Vec<(String, i32)> = vec![];
    if req.parts.len() > 100 {
        v.add("parts", "at most 100 part lines");
    }
    for (i, p) in req.parts.iter().enumerate().take(100) {
        // Catalogue codes are stored upper-cased.
        let code = line(&mut v, &format!("parts[{i}].part_code"), &p.part_code, 50).map(|c| c.to_uppercase());
        if !(1..=1000).contains(&p.quantity) {
            v.add(&format!("parts[{i}].quantity"), "must be between 1 and 1000");
        }
        if let Some(code) = code {
            if parts.iter().any(|(c, _)| *c == code) {
                v.add(&format!("parts[{i}].part_code"), "is listed twice");
            }
            parts.push((code, p.quantity));
        }
    }
    let device_id = if req.device_id.is_empty() { None } else { v.check("device_id", DeviceId::parse(&req.device_id)) };
    let terminal_swap = swap_in(&mut v, "terminal_swap", req.terminal_swap.as_ref());
    let sim_swap = swap_in(&mut v, "sim_swap", req.sim_swap.as_ref());
    let any_swap = req.terminal_swap.is_some() || req.sim_swap.is_some();
    if any_swap && req.device_id.is_empty() {
        v.add("device_id", "name the registered device whose terminal or SIM was swapped (DSP-5)");
    }
    let swap_reason = optional_text(&mut v, "swap_reason", &req.swap_reason, NOTE);
    if any_swap && swap_reason.as_deref().is_some_and(str::is_empty) {
        v.add("swap_reason", "say why the terminal or SIM was swapped (DSP-1)");
    }
    let collected = req.payment_collected.as_ref().and_then(|m| v.check("payment_collected", money_in(m)));
    if !(0..=crate::model::charges::MAX_LABOUR_MINUTES).contains(&req.labour_minutes) {
        v.add(
            "labour_minutes",
            format!("must be between 0 and {} (whole minutes on site)", crate::model::charges::MAX_LABOUR_MINUTES),
        );
    }
    let (id, work_done, signed_off_by, swap_reason) = v.finish_with((id, work_done, signed_off_by, swap_reason))?;
    Ok(CompletionInput {
        id,
        work_done,
        signed_off_by,
        parts,
        device_id,
        terminal_swap,
        sim_swap,
        swap_reason,
        collected,
        labour_minutes: req.labour_minutes,
    })
}

pub(crate) fn part(p: &Part) -> pb::Part {
    pb::Part {
        id: p.id.to_string(),
        code: p.code.clone(),
        name: p.name.clone(),
        unit_price: Some(money_out(p.unit_price)),
        created_at: Some(ts(p.created_at)),
        vat_rate_bp: p.vat_rate_bp,
        active: p.active,
        changed_at: p.changed_at.map(ts),
    }
}

pub(crate) fn collection(c: &Collection) -> pb::CashCollection {
    pb::CashCollection {
        id: c.id.to_string(),
        work_order_id: c.work_order_id.to_string(),
        technician_id: c.technician_id.to_string(),
        amount: Some(money_out(c.amount)),
        collected_at: Some(ts(c.collected_at)),
        handover_id: c.handover_id.map(|h| h.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn handover(h: &Handover) -> pb::CashHandover {
    pb::CashHandover {
        id: h.id.to_string(),
        technician_id: h.technician_id.to_string(),
        expected: Some(money_out(h.expected)),
        counted: Some(money_out(h.counted)),
        difference: Some(money_out(h.difference())),
        reconciled: h.reconciled(),
        received_by: h.received_by.clone(),
        received_at: Some(ts(h.received_at)),
        collection_ids: h.collection_ids.iter().map(ToString::to_string).collect(),
        note: h.note.clone(),
    }
}

/// A labour rate to set: a non-negative hourly amount from a day that is not
/// in the past (`today`).
pub(crate) fn labour_rate_in(r: Option<&pb::LabourRate>, today: NaiveDate) -> Result<(Money, NaiveDate), Status> {
    let mut v = Violations::default();
    let r = r.cloned().unwrap_or_default();
    let hourly = match &r.hourly_rate {
        Some(m) => v.check("rate.hourly_rate", money_in(m)),
        None => {
            v.add("rate.hourly_rate", "is required");
            None
        }
    };
    if hourly.is_some_and(|m| m.is_negative()) {
        v.add("rate.hourly_rate", "must not be negative");
    }
    let from = super::required_date(&mut v, "rate.effective_from", r.effective_from.as_ref());
    if from.is_some_and(|d| d < today) {
        v.add("rate.effective_from", "must not be in the past (rates already applied stay as they were)");
    }
    let (h, f) = v.finish_with((hourly, from))?;
    Ok((h, f))
}

pub(crate) fn labour_rate(r: &crate::store::LabourRate) -> pb::LabourRate {
    pb::LabourRate {
        hourly_rate: Some(money_out(r.hourly)),
        effective_from: Some(super::date_out(r.effective_from)),
        set_by: r.set_by.clone(),
        set_time: Some(ts(r.set_at)),
    }
}

//! Devices of the installed base (DSP-1).

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{ids::CustomerId, text};
use crm_platform::{Violations, error::invalid_argument};
use crm_proto::dispatch::v1 as pb;
use tonic::Status;

use super::{date_out, line, required_date, ts};
use crate::model::base::{Device, DeviceId, DeviceStatus, SwapKind};

/// Validates a device to register; `today` is the local date.
pub(crate) fn new_device(
    d: Option<&pb::Device>,
    by: &str,
    at: DateTime<Utc>,
    today: NaiveDate,
) -> Result<Device, Status> {
    let mut v = Violations::default();
    let Some(d) = d else { return Err(invalid_argument("device", "is required")) };
    let customer_id = v.check("device.customer_id", CustomerId::parse(&d.customer_id));
    let model = line(&mut v, "device.model", &d.model, 100);
    let serial_number = line(&mut v, "device.serial_number", &d.serial_number, 50);
    let sim = v.check("device.sim_number", text::single_line(&d.sim_number, 50));
    let plate = v.check("device.vehicle_plate", text::single_line(&d.vehicle_plate, 20)).map(|p| p.to_uppercase());
    let site_address = v.check("device.site_address", text::single_line(&d.site_address, 500));
    if d.vehicle_plate.trim().is_empty() && d.site_address.trim().is_empty() {
        v.add("device.vehicle_plate", "a device is in a vehicle (plate) or at a site (site_address) (DSP-1)");
    }
    let driver_name = v.check("device.driver_name", text::single_line(&d.driver_name, 100));
    let purchase_date = required_date(&mut v, "device.purchase_date", d.purchase_date.as_ref());
    if purchase_date.is_some_and(|p| p > today) {
        v.add("device.purchase_date", "must not be in the future");
    }
    let warranty_end = required_date(&mut v, "device.warranty_end", d.warranty_end.as_ref());
    if let (Some(p), Some(w)) = (purchase_date, warranty_end)
        && w < p
    {
        v.add("device.warranty_end", "must not be before the purchase date");
    }
    let (customer_id, model, serial_number, sim, vehicle_plate, site_address, driver_name, purchase_date, warranty_end) =
        v.finish_with((
            customer_id,
            model,
            serial_number,
            sim,
            plate,
            site_address,
            driver_name,
            purchase_date,
            warranty_end,
        ))?;
    Ok(Device {
        id: DeviceId::new(),
        customer_id,
        model,
        serial_number,
        sim_number: (!sim.is_empty()).then_some(sim),
        vehicle_plate,
        site_address,
        driver_name,
        purchase_date,
        warranty_end,
        status: DeviceStatus::Active,
        decommission_reason: String::new(),
        registered_by: by.to_string(),
        registered_at: at,
        version: 1,
        swaps: vec![],
    })
}

pub(crate) fn device(d: &Device) -> pb::Device {
    pb::Device {
        id: d.id.to_string(),
        customer_id: d.customer_id.to_string(),
        model: d.model.clone(),
        serial_number: d.serial_number.clone(),
        sim_number: d.sim_number.clone().unwrap_or_default(),
        vehicle_plate: d.vehicle_plate.clone(),
        site_address: d.site_address.clone(),
        driver_name: d.driver_name.clone(),
        purchase_date: Some(date_out(d.purchase_date)),
        warranty_end: Some(date_out(d.warranty_end)),
        status: match d.status {
            DeviceStatus::Active => pb::DeviceStatus::Active as i32,
            DeviceStatus::Decommissioned => pb::DeviceStatus::Decommissioned as i32,
        },
        registered_by: d.registered_by.clone(),
        registered_at: Some(ts(d.registered_at)),
        etag: d.etag(),
        swaps: d
            .swaps
            .iter()
            .map(|s| pb::DeviceSwap {
                kind: match s.kind {
                    SwapKind::Terminal => pb::SwapKind::Terminal as i32,
                    SwapKind::Sim => pb::SwapKind::Sim as i32,
                },
                old_number: s.old_number.clone(),
                new_number: s.new_number.clone(),
                swapped_at: Some(ts(s.swapped_at)),
                swapped_by: s.swapped_by.clone(),
                reason: s.reason.clone(),
                work_order_id: s.work_order_id.map(|w| w.to_string()).unwrap_or_default(),
            })
            .collect(),
        decommission_reason: d.decommission_reason.clone(),
    }
}

//! DSP-1 installed base: devices at customers and the swaps of their
//! terminal and SIM, which are appended to the history and never rewritten.

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::ids::CustomerId;

use super::{RuleViolation, WorkOrderId};

crm_domain::typed_id!(
    /// An installed device (DSP-1).
    DeviceId
);

crm_domain::vocabulary!(DeviceStatus { Active = "active", Decommissioned = "decommissioned" });
crm_domain::vocabulary!(SwapKind { Terminal = "terminal", Sim = "sim" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub customer_id: CustomerId,
    pub model: String,
    pub serial_number: String,
    pub sim_number: Option<String>,
    pub vehicle_plate: String,
    pub site_address: String,
    pub driver_name: String,
    pub purchase_date: NaiveDate,
    pub warranty_end: NaiveDate,
    pub status: DeviceStatus,
    pub decommission_reason: String,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub version: i64,
    /// Loaded for a single device; empty in lists.
    pub swaps: Vec<Swap>,
}

/// One swap of a terminal or SIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub kind: SwapKind,
    pub old_number: String,
    pub new_number: String,
    pub swapped_at: DateTime<Utc>,
    pub swapped_by: String,
    pub reason: String,
    pub work_order_id: Option<WorkOrderId>,
}

impl Device {
    pub fn etag(&self) -> String {
        crm_domain::etag(self.version)
    }

    /// The number a swap of `kind` replaces ("" for a device without SIM).
    pub fn current_number(&self, kind: SwapKind) -> &str {
        match kind {
            SwapKind::Terminal => &self.serial_number,
            SwapKind::Sim => self.sim_number.as_deref().unwrap_or(""),
        }
    }

    pub fn check_active(&self) -> Result<(), RuleViolation> {
        if self.status != DeviceStatus::Active {
            return Err(RuleViolation::new("DEVICE_DECOMMISSIONED", format!("device {} is out of service", self.id)));
        }
        Ok(())
    }

    /// DSP-5: the swaps a completion reports on this device (terminal, then
    /// SIM), each by `by` at `at` for work order `work_order` of `customer`.
    /// The device must be that customer's; returns the swaps for the
    /// history.
    pub fn complete_swaps(
        &mut self,
        customer: CustomerId,
        swaps: [(SwapKind, Option<(String, String)>); 2],
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
        work_order: WorkOrderId,
    ) -> Result<Vec<Swap>, RuleViolation> {
        if self.customer_id != customer {
            return Err(RuleViolation::new(
                "DEVICE_OF_ANOTHER_CUSTOMER",
                "the device is registered to another customer than the work order's",
            ));
        }
        let mut done = vec![];
        for (kind, swap) in swaps {
            if let Some((old_number, new_number)) = swap {
                done.push(self.apply(Swap {
                    kind,
                    old_number,
                    new_number,
                    swapped_at: at,
                    swapped_by: by.to_string(),
                    reason: reason.to_string(),
                    work_order_id: Some(work_order),
                })?);
            }
        }
        Ok(done)
    }

    /// DSP-1/DSP-5: applies a swap of the terminal or SIM number. The
    /// technician's old number must be the registered one, so the registry
    /// never silently drifts from what is in the field. Returns the swap for
    /// the caller to append to the history.
    pub fn apply(&mut self, swap: Swap) -> Result<Swap, RuleViolation> {
        self.check_active()?;
        let current = self.current_number(swap.kind);
        if swap.old_number != current {
            return Err(RuleViolation::new(
                "DEVICE_NUMBER_MISMATCH",
                format!(
                    "the old {} number {:?} is not the registered {current:?}",
                    swap.kind.as_str(),
                    swap.old_number
                ),
            ));
        }
        if swap.new_number == current {
            return Err(RuleViolation::new("SWAP_WITHOUT_CHANGE", "the new number equals the old one"));
        }
        match swap.kind {
            SwapKind::Terminal => self.serial_number = swap.new_number.clone(),
            SwapKind::Sim => self.sim_number = Some(swap.new_number.clone()),
        }
        Ok(swap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap_or_default();
        Device {
            id: DeviceId::new(),
            customer_id: CustomerId::new(),
            model: "GT-06".into(),
            serial_number: "T-1".into(),
            sim_number: Some("S-1".into()),
            vehicle_plate: "京A1".into(),
            site_address: String::new(),
            driver_name: String::new(),
            purchase_date: d,
            warranty_end: d,
            status: DeviceStatus::Active,
            decommission_reason: String::new(),
            registered_by: "u".into(),
            registered_at: Utc::now(),
            version: 1,
            swaps: vec![],
        }
    }

    fn sw(kind: SwapKind, old: &str, new: &str) -> Swap {
        Swap {
            kind,
            old_number: old.into(),
            new_number: new.into(),
            swapped_at: Utc::now(),
            swapped_by: "tech".into(),
            reason: "dead".into(),
            work_order_id: None,
        }
    }

    #[test]
    fn a_swap_replaces_the_registered_number_and_reports_both() {
        let mut d = device();
        let s = d.apply(sw(SwapKind::Terminal, "T-1", "T-2"));
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.old_number.as_str(), s.new_number.as_str()), ("T-1", "T-2"));
        assert_eq!(d.serial_number, "T-2");
        let s = d.apply(sw(SwapKind::Sim, "S-1", "S-2"));
        assert!(s.is_ok());
        assert_eq!(d.sim_number.as_deref(), Some("S-2"));
    }

    #[test]
    fn wrong_old_numbers_same_numbers_and_retired_devices_are_refused() {
        let mut d = device();
        let r = |r: Result<Swap, RuleViolation>| r.map_err(|e| e.reason);
        assert_eq!(r(d.apply(sw(SwapKind::Terminal, "T-9", "T-2"))), Err("DEVICE_NUMBER_MISMATCH"));
        assert_eq!(r(d.apply(sw(SwapKind::Sim, "S-1", "S-1"))), Err("SWAP_WITHOUT_CHANGE"));
        assert_eq!(d.serial_number, "T-1");
        d.sim_number = None;
        assert!(d.apply(sw(SwapKind::Sim, "", "S-5")).is_ok());
        d.status = DeviceStatus::Decommissioned;
        assert_eq!(r(d.apply(sw(SwapKind::Sim, "S-5", "S-6"))), Err("DEVICE_DECOMMISSIONED"));
    }
}

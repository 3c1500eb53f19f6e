//! customer.merged (CUS-2): the merged-away customer's work orders, devices
//! and meters belong to the survivor from now on. A termination started for
//! the merged-away record stays with it: the survivor is a customer being
//! served.

use crm_events::aliases::Repoint;

/// Moved work orders and devices are new versions (their etags change).
pub(super) const CUSTOMERS_MERGED: Repoint = Repoint {
    schema: "dispatch",
    tables: &[("work_orders", ", version = version + 1"), ("devices", ", version = version + 1"), ("meters", "")],
};

//! customer.merged (CUS-2): the merged-away customer's complaints, and its
//! terminations waiting on them, belong to the survivor from now on.

use crm_events::aliases::Repoint;

/// A moved complaint is a new version (its etag changes).
pub(super) const CUSTOMERS_MERGED: Repoint = Repoint {
    schema: "complaints",
    tables: &[("complaints", ", version = version + 1, updated_at = now()"), ("pending_terminations", "")],
};

//! What a record's history holds (CMP-9 for complaints, the work order's
//! trail for dispatch): one step per change of a lifecycle.

use chrono::{DateTime, Utc};

/// One recorded step: what was done, from which state to which, by whom,
/// when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<S> {
    pub action: String,
    /// None for the step that created the record.
    pub from_state: Option<S>,
    pub to_state: S,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub note: String,
}

//! DSP-6 cash hand-over: what a technician collected on site is compared
//! with what finance counts; the difference is kept, never hidden.

use chrono::{DateTime, Utc};
use crm_domain::Money;

use super::{RuleViolation, TechnicianId, WorkOrderId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub id: uuid::Uuid,
    pub work_order_id: WorkOrderId,
    pub technician_id: TechnicianId,
    pub amount: Money,
    pub collected_at: DateTime<Utc>,
    pub handover_id: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub id: uuid::Uuid,
    pub technician_id: TechnicianId,
    pub expected: Money,
    pub counted: Money,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub note: String,
    pub collection_ids: Vec<uuid::Uuid>,
}

impl Handover {
    /// Settles every open collection of a technician against the cash
    /// counted. A difference needs a note explaining it.
    pub fn settle(
        technician_id: TechnicianId,
        open: &[Collection],
        counted: Money,
        note: String,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Handover, RuleViolation> {
        if open.is_empty() {
            return Err(RuleViolation::new("NOTHING_TO_HAND_OVER", "the technician holds no collected cash"));
        }
        let mut expected = Money::zero(counted.currency());
        for c in open {
            expected = expected.checked_add(c.amount).map_err(|_| {
                RuleViolation::new("CURRENCY_MISMATCH", "the counted cash is not in the currency collected")
            })?;
        }
        let h = Handover {
            id: uuid::Uuid::now_v7(),
            technician_id,
            expected,
            counted,
            received_by: by.to_string(),
            received_at: at,
            note,
            collection_ids: open.iter().map(|c| c.id).collect(),
        };
        if !h.reconciled() && h.note.is_empty() {
            return Err(RuleViolation::new(
                "DIFFERENCE_NEEDS_NOTE",
                format!("counted {} but {} was collected; explain the difference in `note`", h.counted, h.expected),
            ));
        }
        Ok(h)
    }

    /// Counted minus expected: negative is cash missing.
    pub fn difference(&self) -> Money {
        Money::new(self.counted.amount_minor().saturating_sub(self.expected.amount_minor()), self.counted.currency())
    }

    pub fn reconciled(&self) -> bool {
        self.counted == self.expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(amount: i64) -> Collection {
        Collection {
            id: uuid::Uuid::now_v7(),
            work_order_id: WorkOrderId::new(),
            technician_id: TechnicianId(uuid::Uuid::nil()),
            amount: Money::cny(amount),
            collected_at: Utc::now(),
            handover_id: None,
        }
    }

    #[test]
    fn a_full_count_reconciles_and_a_short_one_keeps_the_difference() {
        let t = TechnicianId(uuid::Uuid::nil());
        let open = [c(1_000), c(2_550)];
        let h = Handover::settle(t, &open, Money::cny(3_550), String::new(), "fin", Utc::now());
        let h = h.unwrap_or_else(|e| panic!("{e}"));
        assert!(h.reconciled());
        assert_eq!(h.difference(), Money::cny(0));
        assert_eq!(h.collection_ids.len(), 2);
        let short = Handover::settle(t, &open, Money::cny(3_500), String::new(), "fin", Utc::now());
        assert_eq!(short.map_err(|e| e.reason), Err("DIFFERENCE_NEEDS_NOTE"));
        let short = Handover::settle(t, &open, Money::cny(3_500), "lost 0.50".into(), "fin", Utc::now());
        let short = short.unwrap_or_else(|e| panic!("{e}"));
        assert!(!short.reconciled());
        assert_eq!(short.difference(), Money::cny(-50));
    }

    #[test]
    fn nothing_collected_is_nothing_to_hand_over() {
        let t = TechnicianId(uuid::Uuid::nil());
        let r = Handover::settle(t, &[], Money::cny(0), String::new(), "fin", Utc::now());
        assert_eq!(r.map_err(|e| e.reason), Err("NOTHING_TO_HAND_OVER"));
    }
}

//! What complaints publishes: the protobuf payloads of its events,
//! built from the model, and writing them into `complaints.outbox` on the
//! connection of the change they report.

use chrono::{DateTime, Utc};
use crm_events::{Payload, pb};
use crm_proto::common::v1 as common;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    model::{Compensation, Complaint, Verdict},
};

/// This service's schema, whose outbox its events go to.
pub(crate) const SCHEMA: &str = "complaints";

/// Writes one event about `aggregate` in the transaction of its change.
pub(crate) async fn emit(conn: &mut PgConnection, aggregate: Uuid, at: DateTime<Utc>, payload: Payload) -> Result<()> {
    crm_events::emit(conn, SCHEMA, aggregate, at, payload).await?;
    Ok(())
}

/// complaint.filed (CMP-1): the customers service counts complaints per
/// customer from it (CUS-8).
pub(crate) fn filed(c: &Complaint) -> Payload {
    Payload::ComplaintFiled(pb::ComplaintFiled {
        complaint_id: c.id.to_string(),
        number: c.number.clone(),
        customer_id: c.customer_id.to_string(),
        category: c.category.as_str().to_string(),
        filed_by: c.registered_by.clone(),
    })
}

/// complaint.accepted (CMP-3): acceptance notifies the quality manager.
pub(crate) fn accepted(c: &Complaint, by: &str) -> Payload {
    Payload::ComplaintAccepted(pb::ComplaintAccepted {
        complaint_id: c.id.to_string(),
        customer_id: c.customer_id.to_string(),
        accepted_by: by.to_string(),
    })
}

/// complaint.resolved (CMP-4, CMP-7): once per round.
pub(crate) fn resolved(c: &Complaint, verdict: Verdict, by: &str) -> Payload {
    Payload::ComplaintResolved(pb::ComplaintResolved {
        complaint_id: c.id.to_string(),
        customer_id: c.customer_id.to_string(),
        verdict: verdict.as_str().to_string(),
        resolved_by: by.to_string(),
    })
}

/// complaint.closed: the complaint reached a final state — closed with the
/// customer satisfied (CMP-7) or rejected (CMP-2, CMP-3); either way it is
/// no longer open and nothing follows.
pub(crate) fn closed(c: &Complaint, by: &str) -> Payload {
    Payload::ComplaintClosed(pb::ComplaintClosed {
        complaint_id: c.id.to_string(),
        customer_id: c.customer_id.to_string(),
        closed_by: by.to_string(),
    })
}

/// complaint.compensation_agreed (CMP-8): billing issues a credit note.
pub(crate) fn compensation_agreed(c: &Complaint, m: &Compensation, by: &str) -> Payload {
    Payload::CompensationAgreed(pb::CompensationAgreed {
        complaint_id: c.id.to_string(),
        customer_id: c.customer_id.to_string(),
        amount: Some(common::Money {
            amount_minor: m.amount.amount_minor(),
            currency_code: m.amount.currency().code().to_string(),
        }),
        approved_by: by.to_string(),
    })
}

/// complaint.report_amended (CMP-5): the reports side revokes the original
/// report and issues the corrected one.
pub(crate) fn report_amended(c: &Complaint, by: &str) -> Payload {
    Payload::ComplaintReportAmended(pb::ComplaintReportAmended {
        complaint_id: c.id.to_string(),
        customer_id: c.customer_id.to_string(),
        round: c.round,
        approved_by: by.to_string(),
    })
}

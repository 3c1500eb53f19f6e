//! complaint.compensation_agreed → a credit note (X-2, CMP-8, BIL-6).

use crm_events::{ApplyError, ApplyFuture, Handler, Payload, consumer::read, pb};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{actor, amount, poison};
use crate::{
    store::{self, Fund},
    usecases::posting,
};

pub struct Complaints;

impl Handler for Complaints {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let Some(Payload::CompensationAgreed(e)) = &event.payload else { return Err(read::wrong(event)) };
            compensate(conn, e).await
        })
    }
}

/// Issues the complaint's credit note exactly as IssueCreditNote with a
/// complaint id does; a complaint already credited with the same amount is
/// done, with another amount it is a conflict for people to resolve.
async fn compensate(conn: &mut PgConnection, e: &pb::CompensationAgreed) -> Result<(), ApplyError> {
    let complaint = read::id("complaint_id", &e.complaint_id)?;
    let customer = read::id("customer_id", &e.customer_id)?;
    let account = store::lock_account_of_customer(conn, customer)
        .await
        .map_err(ApplyError::of)?
        .ok_or_else(|| poison(format!("customer {customer} has no billing account to credit")))?;
    let amount = amount("amount", e.amount.as_ref(), &account.currency)?
        .filter(|a| *a > 0)
        .ok_or_else(|| poison("the compensation amount must be positive"))?;
    if let Some((note, credited)) = store::credit_note_of_complaint(conn, complaint).await.map_err(ApplyError::of)? {
        if credited == amount {
            tracing::info!(%complaint, %note, "complaint already credited");
            return Ok(());
        }
        return Err(poison(format!(
            "complaint {complaint} already has credit note {note} of {credited} (minor units), not {amount}"
        )));
    }
    let fund = Fund {
        id: Uuid::now_v7(),
        account_id: account.id,
        kind: "credit_note",
        method: None,
        amount_minor: amount,
        reference: String::new(),
        reason: format!("compensation for complaint {complaint}"),
        invoice_id: None,
        complaint_id: Some(complaint),
        work_order_id: None,
    };
    posting::issue_credit_note(conn, &account, &fund, &actor("complaints", &e.approved_by))
        .await
        .map_err(ApplyError::of)?;
    Ok(())
}

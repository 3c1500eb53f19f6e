//! Money in and out (BIL-5, BIL-6, BIL-8): payments allocated oldest first
//! (a cashier's inside their open shift), refunds of unallocated credit and
//! credit notes.

use crm_domain::text;
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::billing::v1 as pb;
use uuid::Uuid;

use super::{BillingApi, Caller, account_locked, convert, reload_account};
use crate::{
    error::Result,
    model::{
        AccountStatus, EntryKind, RuleViolation,
        access::takes_payments_in_a_shift,
        allocation::{Open, refund_plan},
    },
    store::{self, Fund, IDEMPOTENCY_TABLE},
    usecases::posting,
};

impl BillingApi {
    pub(super) async fn record_payment(
        &self,
        who: &Caller,
        req: pb::RecordPaymentRequest,
    ) -> Result<pb::RecordPaymentResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordPayment", who, &req.request_id, &req)?;
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let method =
            convert::required(convert::payment_method(req.method)).map_err(|e| invalid_argument("method", e.reason))?;
        let reference = text::single_line(&req.reference, 100).map_err(|e| invalid_argument("reference", e.reason))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let account = account_locked(&mut tx, account_id).await?;
        let mut v = Violations::default();
        let amount = convert::positive_amount(&mut v, "amount", req.amount.as_ref(), &account.currency);
        let amount = v.finish_with(amount)?;
        // BIL-8: a cashier takes payments in their open shift.
        let shift =
            if takes_payments_in_a_shift(|r| who.has(r)) {
                let open = store::open_shift_of(&mut tx, &who.sub).await?;
                Some(open.ok_or_else(|| {
                    RuleViolation::new("NO_OPEN_SHIFT", "open a cash-desk shift before taking payments")
                })?)
            } else {
                None
            };
        let fund = Fund {
            id: Uuid::now_v7(),
            account_id,
            kind: "payment",
            method: Some(method),
            amount_minor: amount,
            reference,
            reason: String::new(),
            invoice_id: None,
            complaint_id: None,
            work_order_id: None,
        };
        let (allocations, credit) = posting::receive_payment(&mut tx, &account, &fund, None, &who.sub).await?;
        if let Some(shift) = shift {
            store::set_fund_shift(&mut tx, fund.id, shift.id).await?;
        }
        let resp = pb::RecordPaymentResponse {
            payment_id: fund.id.to_string(),
            allocations: allocations.iter().map(convert::allocation).collect(),
            credit: Some(convert::money(credit, &account.currency)),
            account: Some(convert::account(&reload_account(&mut tx, account_id).await?)),
        };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn refund_credit(
        &self,
        who: &Caller,
        req: pb::RefundCreditRequest,
    ) -> Result<pb::RefundCreditResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RefundCredit", who, &req.request_id, &req)?;
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let reason = convert::reason("reason", &req.reason)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let account = account_locked(&mut tx, account_id).await?;
        let mut v = Violations::default();
        let amount = convert::positive_amount(&mut v, "amount", req.amount.as_ref(), &account.currency);
        let amount = v.finish_with(amount)?;
        if account.status == AccountStatus::Closed {
            return Err(RuleViolation::new("ACCOUNT_CLOSED", "the account is closed").into());
        }
        // Newest credit first.
        let funds: Vec<Open<Uuid>> = store::open_funds(&mut tx, account_id, true)
            .await?
            .into_iter()
            .map(|(id, free)| Open { id, outstanding: free })
            .collect();
        for (fund, take) in refund_plan(amount, &funds)? {
            store::take_from_fund(&mut tx, fund, take).await?;
        }
        store::post(&mut tx, account_id, EntryKind::Refund, amount, &format!("refund: {reason}"), None, None, &who.sub)
            .await?;
        posting::report_if_cleared(&mut tx, &account, crm_platform::proto_time::now()).await?;
        let resp =
            pb::RefundCreditResponse { account: Some(convert::account(&reload_account(&mut tx, account_id).await?)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn issue_credit_note(
        &self,
        who: &Caller,
        req: pb::IssueCreditNoteRequest,
    ) -> Result<pb::IssueCreditNoteResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "IssueCreditNote", who, &req.request_id, &req)?;
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let reason = convert::reason("reason", &req.reason)?;
        let invoice =
            if req.invoice_id.trim().is_empty() { None } else { Some(convert::uuid("invoice_id", &req.invoice_id)?) };
        let complaint = if req.complaint_id.trim().is_empty() {
            None
        } else {
            Some(convert::uuid("complaint_id", &req.complaint_id)?)
        };
        if invoice.is_some() && complaint.is_some() {
            return Err(
                invalid_argument("complaint_id", "a credit note settles an invoice or a complaint, not both").into()
            );
        }
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let account = account_locked(&mut tx, account_id).await?;
        let mut v = Violations::default();
        let amount = convert::positive_amount(&mut v, "amount", req.amount.as_ref(), &account.currency);
        let amount = v.finish_with(amount)?;
        let fund = Fund {
            id: Uuid::now_v7(),
            account_id,
            kind: "credit_note",
            method: None,
            amount_minor: amount,
            reference: String::new(),
            reason,
            invoice_id: invoice,
            complaint_id: complaint,
            work_order_id: None,
        };
        let allocations = posting::issue_credit_note(&mut tx, &account, &fund, &who.sub).await?;
        let resp = pb::IssueCreditNoteResponse {
            credit_note_id: fund.id.to_string(),
            allocations: allocations.iter().map(convert::allocation).collect(),
            account: Some(convert::account(&reload_account(&mut tx, account_id).await?)),
        };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }
}

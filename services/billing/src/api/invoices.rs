//! Invoices (BIL-4): drafting (the model prices the lines), issuing with a
//! number, voiding with a reversing ledger entry, reading.

use std::collections::HashMap;

use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::billing::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{BillingApi, Caller, account_locked, check_etag, convert, reload_account};
use crate::{
    error::{Error, Result},
    model::{
        EntryKind, InvoiceStatus,
        invoicing::{self, CataloguePrice, LineRequest},
        states::InvoiceEvent,
    },
    store::{self, IDEMPOTENCY_TABLE, Invoice},
    usecases::posting,
};

async fn invoice_locked(conn: &mut PgConnection, id: &str, given_etag: &str) -> Result<Invoice> {
    let id = convert::uuid("invoice_id", id)?;
    let inv = store::load_invoice(conn, id, true)
        .await?
        .ok_or_else(|| Error::NotFound { resource: "invoice", id: id.to_string() })?;
    check_etag(inv.version, given_etag)?;
    Ok(inv)
}

async fn reload_invoice(conn: &mut PgConnection, id: Uuid) -> Result<pb::Invoice> {
    let saved = store::load_invoice(conn, id, false).await?.ok_or_else(|| Error::Corrupt("invoice vanished".into()))?;
    Ok(convert::invoice(&saved))
}

/// The catalogue items the requested lines name, as drafting needs them.
async fn catalogue_prices(conn: &mut PgConnection, lines: &[LineRequest]) -> Result<HashMap<String, CataloguePrice>> {
    let codes: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            LineRequest::Catalogue { code, .. } => Some(code.clone()),
            LineRequest::Given { .. } => None,
        })
        .collect();
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(store::items(conn, &codes)
        .await?
        .into_iter()
        .map(|i| {
            let price = CataloguePrice {
                description: i.description,
                unit_price_minor: i.unit_price_minor,
                currency: i.currency,
                vat_rate_bp: i.vat_rate_bp,
                active: i.active,
            };
            (i.code, price)
        })
        .collect())
}

impl BillingApi {
    pub(super) async fn create_invoice(
        &self,
        who: &Caller,
        req: pb::CreateInvoiceRequest,
    ) -> Result<pb::CreateInvoiceResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateInvoice", who, &req.request_id, &req)?;
        let given = req.invoice.as_ref().ok_or_else(|| invalid_argument("invoice", "is required"))?;
        let asked = convert::invoice_header(given)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let account = account_locked(&mut tx, asked.account_id).await?;
        account.status.may_bill()?;
        // Every bad line at once: malformed ones, then those the catalogue refuses.
        let mut v = Violations::default();
        let (at, requests): (Vec<usize>, Vec<LineRequest>) =
            convert::invoice_lines_in(&mut v, &given.lines, &account.currency).into_iter().unzip();
        let catalogue = catalogue_prices(&mut tx, &requests).await?;
        let lines = match invoicing::draft_lines(&requests, &catalogue, &account.currency) {
            Ok(lines) => Some(lines),
            Err(problems) => {
                for p in problems {
                    v.add(&format!("invoice.lines[{}].{}", at[p.index], p.field), p.message);
                }
                None
            }
        };
        let lines = v.finish_with(lines)?;
        let (net_minor, vat_minor, total_minor) = invoicing::totals(&lines)?;
        let inv = Invoice {
            id: Uuid::now_v7(),
            account_id: asked.account_id,
            series: asked.series,
            number: None,
            status: InvoiceStatus::Draft,
            currency: account.currency.clone(),
            lines,
            net_minor,
            vat_minor,
            total_minor,
            paid_minor: 0,
            due_in_days: asked.due_in_days,
            due_on: None,
            issued_at: None,
            void_reason: None,
            version: 1,
            work_order_id: None,
        };
        store::insert_invoice(&mut tx, &inv, &who.sub).await?;
        let resp = pb::CreateInvoiceResponse { invoice: Some(reload_invoice(&mut tx, inv.id).await?) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn issue_invoice(
        &self,
        who: &Caller,
        req: pb::IssueInvoiceRequest,
    ) -> Result<pb::IssueInvoiceResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "IssueInvoice", who, &req.request_id, &req)?;
        convert::uuid("invoice_id", &req.invoice_id)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let mut inv = invoice_locked(&mut tx, &req.invoice_id, &req.etag).await?;
        let account = account_locked(&mut tx, inv.account_id).await?;
        inv.status.transition(InvoiceEvent::Issue)?;
        account.status.may_bill()?;
        posting::issue_invoice(&mut tx, &self.calendar, &account, &mut inv, &who.sub).await?;
        let resp = pb::IssueInvoiceResponse { invoice: Some(reload_invoice(&mut tx, inv.id).await?) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn void_invoice(
        &self,
        who: &Caller,
        req: pb::VoidInvoiceRequest,
    ) -> Result<pb::VoidInvoiceResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "VoidInvoice", who, &req.request_id, &req)?;
        convert::uuid("invoice_id", &req.invoice_id)?;
        let reason = convert::reason("reason", &req.reason)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let mut inv = invoice_locked(&mut tx, &req.invoice_id, &req.etag).await?;
        let was = inv.status;
        inv.status = inv.status.transition(InvoiceEvent::Void { paid_minor: inv.paid_minor })?;
        inv.void_reason = Some(reason.clone());
        store::save_invoice(&mut tx, &inv).await?;
        if was != InvoiceStatus::Draft {
            // The charge stays in the ledger; a reversing entry takes it back.
            let number = inv.number.clone().unwrap_or_default();
            store::post(
                &mut tx,
                inv.account_id,
                EntryKind::Adjustment,
                -inv.total_minor,
                &format!("void {number}: {reason}"),
                Some(inv.id),
                None,
                &who.sub,
            )
            .await?;
            let account = reload_account(&mut tx, inv.account_id).await?;
            posting::report_if_cleared(&mut tx, &account, crm_platform::proto_time::now()).await?;
        }
        let resp = pb::VoidInvoiceResponse { invoice: Some(reload_invoice(&mut tx, inv.id).await?) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn get_invoice(
        &self,
        _who: &Caller,
        req: pb::GetInvoiceRequest,
    ) -> Result<pb::GetInvoiceResponse> {
        let id = convert::uuid("invoice_id", &req.invoice_id)?;
        let mut conn = self.pool.acquire().await?;
        let inv = store::load_invoice(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "invoice", id: id.to_string() })?;
        Ok(pb::GetInvoiceResponse { invoice: Some(convert::invoice(&inv)) })
    }

    pub(super) async fn list_invoices(
        &self,
        _who: &Caller,
        req: pb::ListInvoicesRequest,
    ) -> Result<pb::ListInvoicesResponse> {
        let account = convert::uuid("account_id", &req.account_id)?;
        let status = convert::invoice_status(req.status).map_err(|e| invalid_argument("status", e.reason))?;
        let mut conn = self.pool.acquire().await?;
        let invoices = store::list_invoices(&mut conn, account, status).await?;
        Ok(pb::ListInvoicesResponse { invoices: invoices.iter().map(convert::invoice).collect() })
    }
}

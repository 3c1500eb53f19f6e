//! The parts (billing's catalogue, copied) and the technicians' cash (DSP-5, DSP-6): what is
//! collected on site is recorded at completion; finance receives it here and
//! the difference, if any, is kept.

use crm_domain::page;
use crm_platform::edge::Page;
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::dispatch::v1 as pb;

use super::{Caller, DispatchApi, convert};
use crate::{
    error::{Error, Result},
    model::cash::Handover,
    store::{self, IDEMPOTENCY_TABLE},
};

impl DispatchApi {
    pub(super) async fn list_parts(
        &self,
        _caller: &Caller,
        req: pb::ListPartsRequest,
    ) -> Result<pb::ListPartsResponse> {
        let fingerprint = page::fingerprint(&[b"parts", &[u8::from(req.include_inactive)]]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_parts(&mut conn, page.after, page.size, req.include_inactive).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id);
        Ok(pb::ListPartsResponse { parts: rows.iter().map(convert::part).collect(), next_page_token })
    }

    /// DSP-6: the hourly rate labour out of warranty is charged at.
    pub(super) async fn set_labour_rate(
        &self,
        caller: &Caller,
        req: pb::SetLabourRateRequest,
    ) -> Result<pb::SetLabourRateResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SetLabourRate", who, &req.request_id, &req)?;
        let (hourly, from) = convert::labour_rate_in(req.rate.as_ref(), self.calendar.local_date(self.clock.now()))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let rate = store::set_labour_rate(&mut tx, hourly, from, &who.sub).await?;
        let response = pb::SetLabourRateResponse { rate: Some(convert::labour_rate(&rate)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn get_labour_rate(
        &self,
        _caller: &Caller,
        req: pb::GetLabourRateRequest,
    ) -> Result<pb::GetLabourRateResponse> {
        let day = match &req.day {
            Some(d) => convert::date_in(d).map_err(|e| invalid_argument("day", e.reason))?,
            None => self.calendar.local_date(self.clock.now()),
        };
        let mut conn = self.pool.acquire().await?;
        let rate = store::labour_rate(&mut conn, day)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "labour rate on", id: day.to_string() })?;
        Ok(pb::GetLabourRateResponse { rate: Some(convert::labour_rate(&rate)) })
    }

    pub(super) async fn record_cash_handover(
        &self,
        caller: &Caller,
        req: pb::RecordCashHandoverRequest,
    ) -> Result<pb::RecordCashHandoverResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordCashHandover", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let technician_id = convert::technician_id(&mut v, "technician_id", &req.technician_id);
        let counted = match &req.counted {
            Some(m) => v.check("counted", convert::money_in(m)),
            None => {
                v.add("counted", "is required");
                None
            }
        };
        if counted.is_some_and(|m| m.is_negative()) {
            v.add("counted", "must not be negative");
        }
        let note = convert::optional_text(&mut v, "note", &req.note, convert::NOTE);
        let (technician_id, counted, note) = v.finish_with((technician_id, counted, note))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        store::load_technician(&mut tx, technician_id)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "technician", id: technician_id.to_string() })?;
        let open = store::open_collections_for_update(&mut tx, technician_id).await?;
        let h = Handover::settle(technician_id, &open, counted, note, &who.sub, self.clock.now())?;
        store::insert_handover(&mut tx, &h).await?;
        let response = pb::RecordCashHandoverResponse { handover: Some(convert::handover(&h)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn list_unreconciled_collections(
        &self,
        _caller: &Caller,
        req: pb::ListUnreconciledCollectionsRequest,
    ) -> Result<pb::ListUnreconciledCollectionsResponse> {
        let mut v = Violations::default();
        let technician_id = if req.technician_id.is_empty() {
            None
        } else {
            convert::technician_id(&mut v, "technician_id", &req.technician_id)
        };
        v.finish()?;
        let fingerprint = page::fingerprint(&[req.technician_id.as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_open_collections(&mut conn, technician_id, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id);
        Ok(pb::ListUnreconciledCollectionsResponse {
            collections: rows.iter().map(convert::collection).collect(),
            next_page_token,
        })
    }
}

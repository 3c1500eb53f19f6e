//! The technician's steps in the field (DSP-3, DSP-5, DSP-6): the
//! pre-departure checklist, travel, arrival and completion with parts,
//! swaps, warranty and payment — each only by the assigned technician.

use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::dispatch::v1 as pb;
use sqlx::PgConnection;

use super::{Caller, DispatchApi, Fresh, convert, step};
use crate::{
    error::{Error, Result},
    model::{
        Completion, WorkOrder, access,
        base::SwapKind,
        cash::Collection,
        charges::{self, ChargeRefusal},
        lifecycle::Event,
    },
    store::{self, IDEMPOTENCY_TABLE},
    usecases::publish,
};

/// Refuses anyone but the technician the order is assigned to.
async fn check_assignee(conn: &mut PgConnection, caller: &Caller, w: &WorkOrder) -> Result<()> {
    let sub = match w.technician_id {
        Some(t) => store::technician_sub(conn, t).await?,
        None => None,
    };
    Ok(access::may_work(&caller.who, w, sub.as_deref())?)
}

impl DispatchApi {
    pub(super) async fn confirm_checklist(
        &self,
        caller: &Caller,
        req: pb::ConfirmChecklistRequest,
    ) -> Result<pb::ConfirmChecklistResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ConfirmChecklist", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        match &req.checklist {
            None => v.add("checklist", "is required"),
            Some(c) => {
                for (field, done) in [
                    ("checklist.order_details_checked", c.order_details_checked),
                    ("checklist.tools_checked", c.tools_checked),
                    ("checklist.spare_parts_checked", c.spare_parts_checked),
                    ("checklist.documents_checked", c.documents_checked),
                ] {
                    if !done {
                        v.add(field, "must be checked before leaving (DSP-3)");
                    }
                }
            }
        }
        let id = v.finish_with(id)?;
        let Fresh { mut tx, mut w, to } = *crm_platform::fresh_or_replay!(
            self.begin_change(&call, id, &req.etag, |_| Event::ConfirmChecklist).await?
        );
        check_assignee(&mut tx, caller, &w).await?;
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        w.checklist_confirmed_by = Some(who.sub.clone());
        w.checklist_confirmed_at = Some(at);
        let s = step("checklist confirmed", from, &w, who, at, String::new());
        Self::finish_change(call, tx, &w, s, |p| pb::ConfirmChecklistResponse { work_order: Some(p) }).await
    }

    pub(super) async fn start_travel(
        &self,
        caller: &Caller,
        req: pb::StartTravelRequest,
    ) -> Result<pb::StartTravelResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "StartTravel", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { mut tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::StartTravel).await?);
        check_assignee(&mut tx, caller, &w).await?;
        w.check_ready_to_travel()?;
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        let s = step("travel started", from, &w, who, at, String::new());
        Self::finish_change(call, tx, &w, s, |p| pb::StartTravelResponse { work_order: Some(p) }).await
    }

    pub(super) async fn arrive_on_site(
        &self,
        caller: &Caller,
        req: pb::ArriveOnSiteRequest,
    ) -> Result<pb::ArriveOnSiteResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ArriveOnSite", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { mut tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::Arrive).await?);
        check_assignee(&mut tx, caller, &w).await?;
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        // DSP-4: the urgent-parts target is met when the technician is on
        // site with the parts; the history keeps whether it was.
        let note = match w.parts_due_at {
            Some(due) if at <= due => "parts target met".to_string(),
            Some(_) => "parts target missed".to_string(),
            None => String::new(),
        };
        let s = step("arrived on site", from, &w, who, at, note);
        Self::finish_change(call, tx, &w, s, |p| pb::ArriveOnSiteResponse { work_order: Some(p) }).await
    }

    pub(super) async fn complete_work_order(
        &self,
        caller: &Caller,
        req: pb::CompleteWorkOrderRequest,
    ) -> Result<pb::CompleteWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CompleteWorkOrder", who, &req.request_id, &req)?;
        let input = convert::completion(&req)?;
        let Fresh { mut tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, input.id, &req.etag, |_| Event::Complete).await?);
        check_assignee(&mut tx, caller, &w).await?;
        let at = self.clock.now();
        // DSP-5: the registry is updated in this transaction, swap by swap.
        let device = match input.device_id {
            Some(device_id) => {
                let mut d = store::load_device(&mut tx, device_id, true)
                    .await?
                    .ok_or_else(|| Error::NotFound { resource: "device", id: device_id.to_string() })?;
                let swaps =
                    [(SwapKind::Terminal, input.terminal_swap.clone()), (SwapKind::Sim, input.sim_swap.clone())];
                let done = d.complete_swaps(w.customer_id, swaps, &input.swap_reason, &who.sub, at, w.id)?;
                if !done.is_empty() {
                    store::save_device(&mut tx, &d, at).await?;
                    for s in &done {
                        store::insert_swap(&mut tx, d.id, s).await?;
                    }
                }
                Some(d)
            }
            None => None,
        };
        let found =
            store::parts_by_code(&mut tx, &input.parts.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()).await?;
        let lines = charges::price_lines(&input.parts, &found).map_err(|refused| {
            let mut v = Violations::default();
            for (i, why) in refused {
                v.add(&format!("parts[{i}].part_code"), why);
            }
            v.finish().err().unwrap_or_else(|| invalid_argument("parts", "cannot be priced"))
        })?;
        let today = self.calendar.local_date(at);
        let covered = charges::in_warranty(w.kind(), device.as_ref().map(|d| d.warranty_end), w.purchase_date(), today);
        // DSP-6: labour is charged out of warranty only at a rate that is set.
        let rate = store::labour_rate_on(&mut tx, today).await?;
        let charged =
            charges::settle(covered, &lines, input.labour_minutes, rate, input.collected).map_err(|r| match r {
                ChargeRefusal::Rule(v) => Error::from(v),
                ChargeRefusal::Collected(why) => Error::from(invalid_argument("payment_collected", why)),
            })?;
        let (due, collected) = (charged.amount_due, charged.collected);
        let completion = Completion {
            device_id: device.as_ref().map(|d| d.id),
            in_warranty: covered,
            parts: lines,
            amount_due: due,
            collected,
            labour_minutes: input.labour_minutes,
            labour_charge: charged.labour,
        };
        store::save_completion(&mut tx, w.id, &completion).await?;
        let technician_id = w
            .technician_id
            .ok_or_else(|| Error::Corrupt(format!("work order {} is on site with no technician", w.id)))?;
        if collected.amount_minor() > 0 {
            let c = Collection {
                id: uuid::Uuid::now_v7(),
                work_order_id: w.id,
                technician_id,
                amount: collected,
                collected_at: at,
                handover_id: None,
            };
            store::insert_collection(&mut tx, &c).await?;
        }
        let from = w.state;
        w.state = to;
        w.work_done = input.work_done;
        w.signed_off_by = input.signed_off_by;
        // billing invoices paid work from this event.
        publish::emit(&mut tx, w.id.0, at, publish::completed(&w, &completion, &who.sub)).await?;
        let note = if covered { "in warranty".to_string() } else { format!("amount due {}", completion.amount_due) };
        let s = step("completed", from, &w, who, at, note);
        Self::finish_change(call, tx, &w, s, |p| pb::CompleteWorkOrderResponse { work_order: Some(p) }).await
    }
}

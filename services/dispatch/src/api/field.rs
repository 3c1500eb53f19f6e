//! The technician's steps in the field (DSP-3): the pre-departure checklist,
//! travel, arrival and completion — each only by the assigned technician.

use crm_platform::{Violations, idempotency::IdempotentCall};
use crm_proto::dispatch::v1 as pb;
use sqlx::PgConnection;

use super::{Caller, Change, DispatchApi, Fresh, convert, incomplete, now, step};
use crate::{
    error::Result,
    model::{WorkOrder, access, lifecycle::Event},
    store::{self, IDEMPOTENCY_TABLE},
};

use convert::{LONG_TEXT, NOTE};

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
        v.finish()?;
        let Some(id) = id else { return Err(incomplete("checklist")) };
        let Fresh { mut tx, mut w, to } =
            match self.begin_change(&call, id, &req.etag, |_| Event::ConfirmChecklist).await? {
                Change::Replay(r) => return Ok(r),
                Change::Fresh(f) => *f,
            };
        check_assignee(&mut tx, caller, &w).await?;
        let at = now();
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
        v.finish()?;
        let Some(id) = id else { return Err(incomplete("travel")) };
        let Fresh { mut tx, mut w, to } = match self.begin_change(&call, id, &req.etag, |_| Event::StartTravel).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(f) => *f,
        };
        check_assignee(&mut tx, caller, &w).await?;
        w.check_ready_to_travel()?;
        let at = now();
        let from = w.state;
        w.state = to;
        let s = step("travel started", from, &w, who, at, String::new());
        Self::finish_change(call, tx, &w, s, |p| pb::StartTravelResponse { work_order: Some(p) }).await
    }

    pub(super) async fn arrive(
        &self,
        caller: &Caller,
        req: pb::ArriveOnSiteRequest,
    ) -> Result<pb::ArriveOnSiteResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ArriveOnSite", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        v.finish()?;
        let Some(id) = id else { return Err(incomplete("arrival")) };
        let Fresh { mut tx, mut w, to } = match self.begin_change(&call, id, &req.etag, |_| Event::Arrive).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(f) => *f,
        };
        check_assignee(&mut tx, caller, &w).await?;
        let at = now();
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

    pub(super) async fn complete(
        &self,
        caller: &Caller,
        req: pb::CompleteWorkOrderRequest,
    ) -> Result<pb::CompleteWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CompleteWorkOrder", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let work_done = convert::required_text(&mut v, "work_done", &req.work_done, LONG_TEXT);
        let signed_off_by = convert::line(&mut v, "signed_off_by", &req.signed_off_by, NOTE);
        v.finish()?;
        let (Some(id), Some(work_done), Some(signed_off_by)) = (id, work_done, signed_off_by) else {
            return Err(incomplete("completion"));
        };
        let Fresh { mut tx, mut w, to } = match self.begin_change(&call, id, &req.etag, |_| Event::Complete).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(f) => *f,
        };
        check_assignee(&mut tx, caller, &w).await?;
        let at = now();
        let from = w.state;
        w.state = to;
        w.work_done = work_done;
        w.signed_off_by = signed_off_by;
        let s = step("completed", from, &w, who, at, String::new());
        Self::finish_change(call, tx, &w, s, |p| pb::CompleteWorkOrderResponse { work_order: Some(p) }).await
    }
}

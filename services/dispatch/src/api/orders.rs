//! Work orders from intake to closing (DSP-2): creation with the customer
//! checked over gRPC, submission, approval, cancellation, closing, reads and
//! the urgent-parts watch list (DSP-4).

use crm_platform::edge::Page;

use chrono::Duration as Span;
use crm_domain::{ids::CustomerId, page};
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::{
    customers::v1::{self as cpb},
    dispatch::v1 as pb,
};

use super::{Caller, DispatchApi, Fresh, Opened, convert, step};
use crate::{
    error::{Error, Result},
    model::{
        ServiceLevel, Step, WorkOrder,
        access::{self, OrderScope},
        lifecycle::Event,
        planning,
    },
    store::{self, IDEMPOTENCY_TABLE},
    usecases::cancellation,
    usecases::publish,
};

use convert::NOTE;

/// The furthest ahead ListAtRisk looks: a day.
const MAX_WITHIN_MINUTES: i32 = 1440;

impl DispatchApi {
    /// The customer's id, name, service level and branch as the customers
    /// service knows them now: unknown is NOT_FOUND, terminated is refused
    /// (DSP-2). A merged-away id answers with its survivor's (CUS-2).
    pub(super) async fn customer(
        &self,
        id: CustomerId,
        request_id: Option<&str>,
    ) -> Result<(CustomerId, String, ServiceLevel, String)> {
        let c = self.customers.current(id, request_id).await?;
        if c.terminated {
            return Err(crate::model::customer_terminated().into());
        }
        // A customer not yet classified is served at the general level.
        let level = match c.service_level {
            cpb::ServiceLevel::Key => ServiceLevel::Key,
            cpb::ServiceLevel::Special => ServiceLevel::Special,
            _ => ServiceLevel::General,
        };
        Ok((c.id, c.display_name, level, c.branch))
    }

    pub(super) async fn create_work_order(
        &self,
        caller: &Caller,
        req: pb::CreateWorkOrderRequest,
    ) -> Result<pb::CreateWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateWorkOrder", who, &req.request_id, &req)?;
        let at = self.clock.now();
        let new = convert::new_work_order(&req, self.calendar.local_date(at))?;
        // A retry of a creation that went through is answered from the key,
        // without asking the customers service again.
        match self.open::<pb::CreateWorkOrderResponse>(&call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx.rollback().await?,
        }
        // Asked outside the transaction: no locks are held across the call.
        let (id, name, level, branch) = self.customer(new.customer_id, caller.request_id.as_deref()).await?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        // The survivor, also when the merge was applied after the lookup (CUS-2).
        let mut new = new;
        new.customer_id = CustomerId(crm_events::aliases::resolve(&mut tx, "dispatch", id.0).await?);
        // CUS-11: once the customer's termination has started, its open work
        // was cancelled and no new work is taken.
        if store::is_terminating(&mut tx, new.customer_id).await? {
            return Err(crate::model::customer_terminated().into());
        }
        let mut w = WorkOrder::create(new, name, level, &who.sub, at);
        w.branch = branch;
        store::insert_work_order(&mut tx, &w).await?;
        let s = Step {
            action: "created".into(),
            from_state: None,
            to_state: w.state,
            actor: who.sub.clone(),
            at,
            note: String::new(),
        };
        store::record_step(&mut tx, w.id, &s).await?;
        let saved = store::load(&mut tx, w.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("work order {} vanished inside its transaction", w.id)))?;
        let response = pb::CreateWorkOrderResponse { work_order: Some(convert::work_order(&saved)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn get_work_order(
        &self,
        caller: &Caller,
        req: pb::GetWorkOrderRequest,
    ) -> Result<pb::GetWorkOrderResponse> {
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let mut conn = self.pool.acquire().await?;
        let not_found = || Error::NotFound { resource: "work order", id: id.to_string() };
        let w = store::load(&mut conn, id, false).await?.ok_or_else(not_found)?;
        // CUS-13: an order outside the caller's scope does not exist for them.
        let scope = OrderScope::of(&caller.who);
        let sub = match (&scope, w.technician_id) {
            (OrderScope::AssignedTo(_), Some(t)) => store::technician_sub(&mut conn, t).await?,
            _ => None,
        };
        if !scope.covers(&w, sub.as_deref()) {
            return Err(not_found());
        }
        Ok(pb::GetWorkOrderResponse { work_order: Some(convert::work_order(&w)) })
    }

    pub(super) async fn list_work_orders(
        &self,
        caller: &Caller,
        req: pb::ListWorkOrdersRequest,
    ) -> Result<pb::ListWorkOrdersResponse> {
        let (mut filter, fingerprint) = convert::list_filter(&req)?;
        // CUS-13: technicians list their own orders, branch dispatchers their territory.
        filter.scope = OrderScope::of(&caller.who);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        Ok(pb::ListWorkOrdersResponse { work_orders: rows.iter().map(convert::work_order).collect(), next_page_token })
    }

    pub(super) async fn submit_work_order(
        &self,
        caller: &Caller,
        req: pb::SubmitWorkOrderRequest,
    ) -> Result<pb::SubmitWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SubmitWorkOrder", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::Submit).await?);
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        let s = step("submitted for approval", from, &w, who, at, String::new());
        Self::finish_change(call, tx, &w, s, |p| pb::SubmitWorkOrderResponse { work_order: Some(p) }).await
    }

    pub(super) async fn approve_work_order(
        &self,
        caller: &Caller,
        req: pb::ApproveWorkOrderRequest,
    ) -> Result<pb::ApproveWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ApproveWorkOrder", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let note = convert::optional_text(&mut v, "note", &req.note, NOTE);
        let (id, note) = v.finish_with((id, note))?;
        let Fresh { mut tx, mut w, to } = *crm_platform::fresh_or_replay!(
            self.begin_change(&call, id, &req.etag, |w| Event::approval_for(w.kind())).await?
        );
        access::may_approve(who, w.kind())?;
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        w.parts_due_at = planning::parts_due(w.kind(), w.urgency, at);
        publish::emit(&mut tx, w.id.0, at, publish::approved(&w, &who.sub)).await?;
        let s = step("approved", from, &w, who, at, note);
        Self::finish_change(call, tx, &w, s, |p| pb::ApproveWorkOrderResponse { work_order: Some(p) }).await
    }

    pub(super) async fn cancel_work_order(
        &self,
        caller: &Caller,
        req: pb::CancelWorkOrderRequest,
    ) -> Result<pb::CancelWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CancelWorkOrder", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let reason = convert::required_text(&mut v, "reason", &req.reason, NOTE);
        let (id, reason) = v.finish_with((id, reason))?;
        let Fresh { mut tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::Cancel).await?);
        let s = cancellation::cancel(&mut tx, &mut w, to, reason, &who.sub, self.clock.now(), None).await?;
        Self::finish_change(call, tx, &w, s, |p| pb::CancelWorkOrderResponse { work_order: Some(p) }).await
    }

    pub(super) async fn close_work_order(
        &self,
        caller: &Caller,
        req: pb::CloseWorkOrderRequest,
    ) -> Result<pb::CloseWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CloseWorkOrder", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::Close).await?);
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        let s = step("closed", from, &w, who, at, String::new());
        Self::finish_change(call, tx, &w, s, |p| pb::CloseWorkOrderResponse { work_order: Some(p) }).await
    }

    pub(super) async fn list_at_risk(
        &self,
        _caller: &Caller,
        req: pb::ListAtRiskRequest,
    ) -> Result<pb::ListAtRiskResponse> {
        if !(0..=MAX_WITHIN_MINUTES).contains(&req.within_minutes) {
            return Err(
                invalid_argument("within_minutes", format!("must be between 0 and {MAX_WITHIN_MINUTES}")).into()
            );
        }
        let fingerprint = page::fingerprint(&[&req.within_minutes.to_be_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 500, fingerprint)?;
        let at = self.clock.now();
        let until = at + Span::minutes(i64::from(req.within_minutes));
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_at_risk(&mut conn, until, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        Ok(pb::ListAtRiskResponse {
            work_orders: rows
                .iter()
                .map(|w| pb::AtRiskWorkOrder {
                    work_order: Some(convert::work_order(w)),
                    parts_due_at: w.parts_due_at.map(crm_platform::proto_time::to_proto),
                    overdue: w.parts_due_at.is_some_and(|d| d < at),
                })
                .collect(),
            next_page_token,
        })
    }
}

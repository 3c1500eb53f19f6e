//! Technicians, proposals and assignment (DSP-3): candidates are ranked by
//! the model; booking a technician's day is a conditional upsert under the
//! day row's lock, so no technician is ever booked beyond capacity.

use chrono::NaiveDate;
use crm_domain::page;
use crm_platform::edge::Page;
use crm_platform::{Violations, idempotency::IdempotentCall};
use crm_proto::dispatch::v1 as pb;

use super::{Caller, DispatchApi, Fresh, convert, step};
use crate::{
    error::{Error, Result},
    model::{
        RuleViolation, TechnicianId, WorkOrder,
        lifecycle::Event,
        planning::{self, Candidate},
    },
    store::{self, IDEMPOTENCY_TABLE},
};

const DEFAULT_PROPOSALS: i32 = 10;
const MAX_PROPOSALS: i32 = 100;

fn fully_booked(t: &TechnicianId, day: NaiveDate) -> RuleViolation {
    RuleViolation::new(
        "TECHNICIAN_FULLY_BOOKED",
        format!("technician {t} has no capacity left on {day} (DSP-3); propose technicians for another choice"),
    )
}

impl DispatchApi {
    fn check_day(&self, day: NaiveDate) -> Result<()> {
        Ok(planning::check_day(&self.calendar, day, self.calendar.local_date(self.clock.now()))?)
    }

    pub(super) async fn create_technician(
        &self,
        caller: &Caller,
        req: pb::CreateTechnicianRequest,
    ) -> Result<pb::CreateTechnicianResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateTechnician", who, &req.request_id, &req)?;
        let t = convert::new_technician(req.technician.as_ref(), &who.sub, self.clock.now())?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        store::insert_technician(&mut tx, &t).await?;
        let response = pb::CreateTechnicianResponse { technician: Some(convert::technician(&t)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn get_technician(
        &self,
        _caller: &Caller,
        req: pb::GetTechnicianRequest,
    ) -> Result<pb::GetTechnicianResponse> {
        let mut v = Violations::default();
        let id = convert::technician_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let mut conn = self.pool.acquire().await?;
        let t = store::load_technician(&mut conn, id)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "technician", id: id.to_string() })?;
        Ok(pb::GetTechnicianResponse { technician: Some(convert::technician(&t)) })
    }

    pub(super) async fn list_technicians(
        &self,
        _caller: &Caller,
        req: pb::ListTechniciansRequest,
    ) -> Result<pb::ListTechniciansResponse> {
        let territory = req.territory.trim();
        let fingerprint = page::fingerprint(&[territory.as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let filter = (!territory.is_empty()).then_some(territory);
        let rows = store::list_technicians(&mut conn, filter, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        Ok(pb::ListTechniciansResponse { technicians: rows.iter().map(convert::technician).collect(), next_page_token })
    }

    /// The ranked candidates for `w` on `day` (those with room left).
    async fn candidates(&self, conn: &mut sqlx::PgConnection, w: &WorkOrder, day: NaiveDate) -> Result<Vec<Candidate>> {
        let all = store::technicians_with_load(conn, day).await?;
        let assessed = all.into_iter().map(|(t, booked)| Candidate::assess(w, t, booked)).collect();
        Ok(planning::rank(w.priority, assessed))
    }

    pub(super) async fn propose_technicians(
        &self,
        _caller: &Caller,
        req: pb::ProposeTechniciansRequest,
    ) -> Result<pb::ProposeTechniciansResponse> {
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "work_order_id", &req.work_order_id);
        let day = convert::required_date(&mut v, "day", req.day.as_ref());
        if !(0..=MAX_PROPOSALS).contains(&req.limit) {
            v.add("limit", format!("must be between 0 and {MAX_PROPOSALS}"));
        }
        let (id, day) = v.finish_with((id, day))?;
        let limit = if req.limit == 0 { DEFAULT_PROPOSALS } else { req.limit };
        let mut conn = self.pool.acquire().await?;
        let w = store::load(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "work order", id: id.to_string() })?;
        // Proposals are for orders that could be assigned now.
        w.state.transition(Event::Assign)?;
        self.check_day(day)?;
        let ranked = self.candidates(&mut conn, &w, day).await?;
        Ok(pb::ProposeTechniciansResponse {
            candidates: ranked.iter().take(usize::try_from(limit).unwrap_or(10)).map(convert::candidate).collect(),
        })
    }

    pub(super) async fn assign_work_order(
        &self,
        caller: &Caller,
        req: pb::AssignWorkOrderRequest,
    ) -> Result<pb::AssignWorkOrderResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AssignWorkOrder", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let technician_id = convert::technician_id(&mut v, "technician_id", &req.technician_id);
        let day = convert::required_date(&mut v, "day", req.day.as_ref());
        let (id, technician_id, day) = v.finish_with((id, technician_id, day))?;
        let Fresh { mut tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::Assign).await?);
        self.check_day(day)?;
        let t = store::load_technician(&mut tx, technician_id)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "technician", id: technician_id.to_string() })?;
        let c = Candidate::assess(&w, t, 0);
        if !c.qualified() {
            let missing: Vec<&str> =
                w.required_skills.iter().filter(|s| !c.technician.skills.contains(s)).map(String::as_str).collect();
            return Err(RuleViolation::new(
                "SKILLS_MISSING",
                format!("the technician lacks required skills: {} (DSP-3)", missing.join(", ")),
            )
            .into());
        }
        if !store::book(&mut tx, technician_id, day, c.capacity).await? {
            return Err(fully_booked(&technician_id, day).into());
        }
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        w.technician_id = Some(technician_id);
        w.scheduled_on = Some(day);
        let s = step("assigned", from, &w, who, at, format!("{} on {day}", c.technician.display_name));
        Self::finish_change(call, tx, &w, s, |p| pb::AssignWorkOrderResponse { work_order: Some(p) }).await
    }

    pub(super) async fn auto_assign(
        &self,
        caller: &Caller,
        req: pb::AutoAssignRequest,
    ) -> Result<pb::AutoAssignResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AutoAssign", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::order_id(&mut v, "id", &req.id);
        let day = convert::required_date(&mut v, "day", req.day.as_ref());
        let (id, day) = v.finish_with((id, day))?;
        let Fresh { mut tx, mut w, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, |_| Event::Assign).await?);
        self.check_day(day)?;
        let ranked = self.candidates(&mut tx, &w, day).await?;
        // The ranking was read without locks: a candidate filled by a
        // concurrent assignment refuses the booking and the next one is tried.
        let mut chosen = None;
        for c in ranked.into_iter().filter(Candidate::qualified) {
            if store::book(&mut tx, c.technician.id, day, c.capacity).await? {
                chosen = Some(c);
                break;
            }
        }
        let Some(mut c) = chosen else {
            return Err(RuleViolation::new(
                "NO_TECHNICIAN_AVAILABLE",
                format!("no qualified technician has capacity left on {day} (DSP-3)"),
            )
            .into());
        };
        c.booked += 1;
        let at = self.clock.now();
        let from = w.state;
        w.state = to;
        w.technician_id = Some(c.technician.id);
        w.scheduled_on = Some(day);
        let s = step("assigned", from, &w, who, at, format!("auto: {} on {day}", c.technician.display_name));
        let chosen = convert::candidate(&c);
        Self::finish_change(call, tx, &w, s, |p| pb::AutoAssignResponse { work_order: Some(p), chosen: Some(chosen) })
            .await
    }
}

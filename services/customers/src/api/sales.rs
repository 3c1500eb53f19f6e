//! The sales-workflow RPCs: lead distribution (CUS-3), first contact (CUS-4),
//! timely entry (CUS-5), interactions and follow-ups (CUS-6), visits (CUS-7),
//! surveys (CUS-10), account plans (CUS-12) and merging (CUS-2).

use chrono::{Datelike, Utc};
use crm_domain::{PageSize, ids::CustomerId, page::fingerprint};
use crm_platform::edge::Page;
use crm_platform::{error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crm_events::{Payload, pb as ev};

use super::{Caller, CustomersApi, convert, sales_convert as sc};
use crate::{
    error::{Error, Result},
    model::{
        Customer, RuleViolation,
        access::{
            AUDIT_READERS, EDITORS, MANAGERS, MINUTES_REVIEWERS, READERS, REPORT_READERS, SURVEY_TAKERS, Scope,
            VISIT_APPROVERS,
        },
        contact_rules::{self, MINUTES_WORKING_DAYS, SATISFIED_SCORE},
        leads::{self, Participant},
        plan::{self, ContractStage},
        records::{AccountPlan, SurveyAnswer, Visit},
        visit::{self, VisitStep},
    },
    store::{self, IDEMPOTENCY_TABLE},
    usecases::publish::emit,
};

/// One CUS-7 step request: its key, who may take it, the visit and its etag.
struct StepCall<'a> {
    call: IdempotentCall,
    roles: &'a [crm_domain::Role],
    visit_id: &'a str,
    etag: &'a str,
    step: VisitStep,
}

/// The customer in the caller's scope (NOT_FOUND otherwise), locked.
async fn customer_in_scope(conn: &mut PgConnection, id: CustomerId, scope: &Scope) -> Result<Customer> {
    store::load(conn, id, scope, true)
        .await?
        .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })
}

/// The customer, if the caller's scope covers it (NOT_FOUND otherwise).
async fn visible(conn: &mut PgConnection, id: CustomerId, scope: &Scope) -> Result<Customer> {
    store::load(conn, id, scope, false)
        .await?
        .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })
}

/// CUS-11: a terminated customer is do-not-contact; no new work for it.
fn live(c: &Customer) -> Result<()> {
    Ok(c.check_contactable()?)
}

fn check_etag(version: i64, etag: &str) -> Result<()> {
    match convert::etag(etag) {
        Some(want) if want != crate::model::etag(version) => {
            Err(Error::StaleEtag { current: crate::model::etag(version) })
        }
        _ => Ok(()),
    }
}

impl CustomersApi {
    pub(super) async fn distribute_leads(
        &self,
        who: &Caller,
        req: pb::DistributeLeadsRequest,
    ) -> Result<pb::DistributeLeadsResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "DistributeLeads", who, &req.request_id, &req)?;
        let input = sc::distribution(&req)?;
        let scope = Scope::of(who, MANAGERS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let owners: Vec<String> = input.salespeople.iter().map(|(o, _)| o.clone()).collect();
        let mut customers = Vec::with_capacity(input.customers.len());
        for id in &input.customers {
            let c = customer_in_scope(&mut tx, *id, &scope).await?;
            live(&c)?;
            customers.push(c);
        }
        // The leads are handed out afresh: one a participant holds already
        // counts as a lead, not as part of their existing load.
        let mut before = store::owned_counts(&mut tx, &owners).await?;
        for c in &customers {
            if let Some(i) = owners.iter().position(|o| *o == c.owner_id) {
                before[i] -= 1;
            }
        }
        let participants: Vec<Participant> = input
            .salespeople
            .iter()
            .zip(&before)
            .map(|((_, w), owned)| Participant { owned: *owned, weight: *w })
            .collect();
        let picks = leads::distribute(&participants, customers.len());
        let now = Utc::now();
        let reason = format!("campaign {}", input.campaign);
        let mut assignments = Vec::with_capacity(customers.len());
        let mut after = before.clone();
        for (mut c, i) in customers.into_iter().zip(picks) {
            let owner = &owners[i];
            after[i] += 1;
            if &c.owner_id != owner {
                c.owner_id = owner.clone();
                c = c.with_assignment_clock(&who.sub, now);
                store::save_customer(&mut tx, &c).await?;
                store::record_owner(&mut tx, &c, &who.sub, &reason, false).await?;
            }
            assignments.push(pb::LeadAssignment { customer_id: c.id.to_string(), owner_id: owner.clone() });
        }
        let loads = owners
            .iter()
            .enumerate()
            .map(|(i, o)| pb::SalespersonLoad {
                owner_id: o.clone(),
                owned_before: before[i],
                owned_after: after[i],
                fair_share: leads::fair_share(&participants, assignments.len(), i),
            })
            .collect();
        let resp = pb::DistributeLeadsResponse { assignments, loads };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_ownership_history(
        &self,
        who: &Caller,
        req: pb::ListOwnershipHistoryRequest,
    ) -> Result<pb::ListOwnershipHistoryResponse> {
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let c = visible(&mut conn, id, &scope).await?;
        let records = store::ownership_history(&mut conn, c.id).await?;
        Ok(pb::ListOwnershipHistoryResponse { records: records.iter().map(sc::ownership).collect() })
    }

    pub(super) async fn list_overdue_first_contacts(
        &self,
        who: &Caller,
        req: pb::ListOverdueFirstContactsRequest,
    ) -> Result<pb::ListOverdueFirstContactsResponse> {
        let owner = sc::optional_text("owner_id", &req.owner_id)?;
        let fp = fingerprint(&[b"overdue", owner.as_deref().unwrap_or("").as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fp)?;
        let scope = Scope::of(who, REPORT_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows =
            store::overdue_first_contacts(&mut conn, &scope, owner.as_deref(), Utc::now(), page.after, page.size)
                .await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id);
        Ok(pb::ListOverdueFirstContactsResponse { overdue: rows.iter().map(sc::overdue).collect(), next_page_token })
    }

    pub(super) async fn get_entry_timeliness(
        &self,
        who: &Caller,
        req: pb::GetEntryTimelinessRequest,
    ) -> Result<pb::GetEntryTimelinessResponse> {
        let (from, to) = sc::period(req.start_time.as_ref(), req.end_time.as_ref())?;
        let salesperson = sc::optional_text("owner_id", &req.owner_id)?;
        let scope = Scope::of(who, REPORT_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::entry_timeliness(&mut conn, &scope, from, to, salesperson.as_deref()).await?;
        Ok(pb::GetEntryTimelinessResponse { salespeople: rows.iter().map(sc::timeliness).collect() })
    }

    pub(super) async fn log_interaction(
        &self,
        who: &Caller,
        req: pb::LogInteractionRequest,
    ) -> Result<pb::LogInteractionResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "LogInteraction", who, &req.request_id, &req)?;
        let (mut interaction, follow_up) = sc::interaction(&req, &who.sub)?;
        let scope = Scope::of(who, EDITORS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let c = customer_in_scope(&mut tx, interaction.customer_id, &scope).await?;
        live(&c)?;
        interaction.customer_id = c.id;
        store::insert_interaction(&mut tx, &interaction).await?;
        // CUS-4: the owner's first interaction after an assignment stops the clock.
        if who.sub == c.owner_id {
            store::record_first_contact(&mut tx, c.id, &c.owner_id, interaction.occurred_at).await?;
        }
        let mut next = None;
        if let Some(fid) = follow_up {
            let f = store::lock_follow_up(&mut tx, fid, c.id)
                .await?
                .ok_or_else(|| Error::NotFound { resource: "follow-up", id: fid.to_string() })?;
            if f.done_at.is_some() {
                return Err(RuleViolation::new("FOLLOW_UP_DONE", "this follow-up was already carried out").into());
            }
            store::complete_follow_up(&mut tx, f.id, interaction.id, interaction.occurred_at).await?;
            if let Some(n) = f.next_after(interaction.occurred_at) {
                store::insert_follow_up(&mut tx, &n, &who.sub).await?;
                next = Some(sc::follow_up(&n));
            }
        }
        let resp =
            pb::LogInteractionResponse { interaction: Some(sc::interaction_pb(&interaction)), next_follow_up: next };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_interactions(
        &self,
        who: &Caller,
        req: pb::ListInteractionsRequest,
    ) -> Result<pb::ListInteractionsResponse> {
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let fp = fingerprint(&[b"interactions", id.to_string().as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fp)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let c = visible(&mut conn, id, &scope).await?;
        let rows = store::list_interactions(&mut conn, c.id, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id);
        Ok(pb::ListInteractionsResponse {
            interactions: rows.iter().map(sc::interaction_pb).collect(),
            next_page_token,
        })
    }

    pub(super) async fn schedule_follow_up(
        &self,
        who: &Caller,
        req: pb::ScheduleFollowUpRequest,
    ) -> Result<pb::ScheduleFollowUpResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ScheduleFollowUp", who, &req.request_id, &req)?;
        let mut f = sc::new_follow_up(&req)?;
        let scope = Scope::of(who, EDITORS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let c = customer_in_scope(&mut tx, f.customer_id, &scope).await?;
        live(&c)?;
        f.customer_id = c.id;
        f.owner_id = c.owner_id.clone();
        store::insert_follow_up(&mut tx, &f, &who.sub).await?;
        let resp = pb::ScheduleFollowUpResponse { follow_up: Some(sc::follow_up(&f)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_due_follow_ups(
        &self,
        who: &Caller,
        req: pb::ListDueFollowUpsRequest,
    ) -> Result<pb::ListDueFollowUpsResponse> {
        let before = match &req.due_before {
            Some(t) => crm_platform::proto_time::from_proto(t).map_err(|e| invalid_argument("due_before", e.reason))?,
            None => Utc::now(),
        };
        let owner = sc::optional_text("owner_id", &req.owner_id)?;
        let fp = fingerprint(&[
            b"followups",
            before.timestamp_micros().to_be_bytes().as_slice(),
            owner.as_deref().unwrap_or("").as_bytes(),
        ]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fp)?;
        let scope = Scope::of(who, EDITORS)?;
        let mut conn = self.pool.acquire().await?;
        let rows =
            store::list_due_follow_ups(&mut conn, &scope, owner.as_deref(), before, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id);
        Ok(pb::ListDueFollowUpsResponse { follow_ups: rows.iter().map(sc::follow_up).collect(), next_page_token })
    }

    pub(super) async fn plan_visit(&self, who: &Caller, req: pb::PlanVisitRequest) -> Result<pb::PlanVisitResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "PlanVisit", who, &req.request_id, &req)?;
        let mut v = sc::new_visit(&req, &who.sub)?;
        let scope = Scope::of(who, EDITORS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let c = customer_in_scope(&mut tx, v.customer_id, &scope).await?;
        live(&c)?;
        v.customer_id = c.id;
        store::insert_visit(&mut tx, &v).await?;
        let resp = pb::PlanVisitResponse { visit: Some(sc::visit(&v)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    /// One CUS-7 step: the visit (its customer in scope for `roles`), its
    /// etag, the state machine, then `apply` fills in who/when/what.
    async fn visit_step<R: prost::Message + Default>(
        &self,
        who: &Caller,
        s: StepCall<'_>,
        apply: impl FnOnce(&mut Visit) -> Result<(), RuleViolation>,
        respond: impl FnOnce(pb::Visit) -> R,
    ) -> Result<R> {
        let StepCall { call, roles, visit_id, etag, step } = s;
        let id = Uuid::try_parse(visit_id).map_err(|_| invalid_argument("visit_id", "must be a UUID"))?;
        let scope = Scope::of(who, roles)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let mut v = store::load_visit(&mut tx, id, true)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "visit", id: id.to_string() })?;
        // A visit of a customer outside the caller's scope does not exist for them.
        store::load(&mut tx, v.customer_id, &scope, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "visit", id: id.to_string() })?;
        check_etag(v.version, etag)?;
        v.state = v.state.transition(step)?;
        apply(&mut v)?;
        store::save_visit(&mut tx, &v).await?;
        let saved = store::load_visit(&mut tx, id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("visit {id} vanished inside its transaction")))?;
        let resp = respond(sc::visit(&saved));
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn approve_visit(
        &self,
        who: &Caller,
        req: pb::ApproveVisitRequest,
    ) -> Result<pb::ApproveVisitResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ApproveVisit", who, &req.request_id, &req)?;
        let (by, now) = (who.sub.clone(), Utc::now());
        self.visit_step(
            who,
            StepCall {
                call,
                roles: VISIT_APPROVERS,
                visit_id: &req.visit_id,
                etag: &req.etag,
                step: VisitStep::Approve,
            },
            |v| {
                // CUS-7: approved before the visit, not after its planned time.
                visit::approval_in_time(v.planned_for, now)?;
                v.approved_by = Some(by);
                v.approved_at = Some(now);
                Ok(())
            },
            |v| pb::ApproveVisitResponse { visit: Some(v) },
        )
        .await
    }

    pub(super) async fn record_visit_done(
        &self,
        who: &Caller,
        req: pb::RecordVisitDoneRequest,
    ) -> Result<pb::RecordVisitDoneResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordVisitDone", who, &req.request_id, &req)?;
        let at = match &req.visit_time {
            Some(t) => crm_platform::proto_time::from_proto(t)
                .and_then(convert::not_in_future)
                .map_err(|e| invalid_argument("visit_time", e.reason))?,
            None => Utc::now(),
        };
        // CUS-7: minutes are due 2 working days after the visit.
        let due = self.calendar.working_days_deadline(at, MINUTES_WORKING_DAYS);
        self.visit_step(
            who,
            StepCall { call, roles: EDITORS, visit_id: &req.visit_id, etag: &req.etag, step: VisitStep::RecordDone },
            |v| {
                // CUS-7: a visit happens after its approval.
                visit::done_after_approval(v.approved_at, at)?;
                v.visited_at = Some(at);
                v.minutes_due = Some(due);
                Ok(())
            },
            |v| pb::RecordVisitDoneResponse { visit: Some(v) },
        )
        .await
    }

    pub(super) async fn submit_visit_minutes(
        &self,
        who: &Caller,
        req: pb::SubmitVisitMinutesRequest,
    ) -> Result<pb::SubmitVisitMinutesResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SubmitVisitMinutes", who, &req.request_id, &req)?;
        let minutes =
            crm_domain::text::required(&req.minutes, 20_000).map_err(|e| invalid_argument("minutes", e.reason))?;
        let now = Utc::now();
        self.visit_step(
            who,
            StepCall { call, roles: EDITORS, visit_id: &req.visit_id, etag: &req.etag, step: VisitStep::SubmitMinutes },
            |v| {
                v.minutes = minutes;
                v.minutes_submitted_at = Some(now);
                v.minutes_late = v.minutes_due.is_some_and(|due| now >= due);
                Ok(())
            },
            |v| pb::SubmitVisitMinutesResponse { visit: Some(v) },
        )
        .await
    }

    pub(super) async fn review_visit_minutes(
        &self,
        who: &Caller,
        req: pb::ReviewVisitMinutesRequest,
    ) -> Result<pb::ReviewVisitMinutesResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ReviewVisitMinutes", who, &req.request_id, &req)?;
        let (by, now) = (who.sub.clone(), Utc::now());
        self.visit_step(
            who,
            StepCall {
                call,
                roles: MINUTES_REVIEWERS,
                visit_id: &req.visit_id,
                etag: &req.etag,
                step: VisitStep::ReviewMinutes,
            },
            |v| {
                v.reviewed_by = Some(by);
                v.reviewed_at = Some(now);
                Ok(())
            },
            |v| pb::ReviewVisitMinutesResponse { visit: Some(v) },
        )
        .await
    }

    pub(super) async fn send_visit_minutes(
        &self,
        who: &Caller,
        req: pb::SendVisitMinutesRequest,
    ) -> Result<pb::SendVisitMinutesResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SendVisitMinutes", who, &req.request_id, &req)?;
        let now = Utc::now();
        self.visit_step(
            who,
            StepCall { call, roles: EDITORS, visit_id: &req.visit_id, etag: &req.etag, step: VisitStep::SendMinutes },
            |v| {
                v.sent_at = Some(now);
                Ok(())
            },
            |v| pb::SendVisitMinutesResponse { visit: Some(v) },
        )
        .await
    }

    pub(super) async fn confirm_visit_receipt(
        &self,
        who: &Caller,
        req: pb::ConfirmVisitReceiptRequest,
    ) -> Result<pb::ConfirmVisitReceiptResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ConfirmVisitReceipt", who, &req.request_id, &req)?;
        let by = crm_domain::text::required(&req.confirmed_by, 100)
            .map_err(|e| invalid_argument("confirmed_by", e.reason))?;
        let now = Utc::now();
        self.visit_step(
            who,
            StepCall {
                call,
                roles: EDITORS,
                visit_id: &req.visit_id,
                etag: &req.etag,
                step: VisitStep::ConfirmReceipt,
            },
            |v| {
                v.receipt_confirmed_by = Some(by);
                v.receipt_at = Some(now);
                Ok(())
            },
            |v| pb::ConfirmVisitReceiptResponse { visit: Some(v) },
        )
        .await
    }

    pub(super) async fn list_visits(&self, who: &Caller, req: pb::ListVisitsRequest) -> Result<pb::ListVisitsResponse> {
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let c = visible(&mut conn, id, &scope).await?;
        let visits = store::list_visits(&mut conn, c.id).await?;
        Ok(pb::ListVisitsResponse { visits: visits.iter().map(sc::visit).collect() })
    }

    pub(super) async fn record_survey(
        &self,
        who: &Caller,
        req: pb::RecordSurveyRequest,
    ) -> Result<pb::RecordSurveyResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordSurvey", who, &req.request_id, &req)?;
        let mut s: SurveyAnswer = sc::survey(&req, &who.sub, self.calendar.local_date(Utc::now()))?;
        let scope = Scope::of(who, SURVEY_TAKERS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let c = customer_in_scope(&mut tx, s.customer_id, &scope).await?;
        s.customer_id = c.id;
        store::insert_survey(&mut tx, &s).await?;
        let resp = pb::RecordSurveyResponse { answer: Some(sc::survey_pb(&s)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn get_satisfaction(
        &self,
        who: &Caller,
        req: pb::GetSatisfactionRequest,
    ) -> Result<pb::GetSatisfactionResponse> {
        let (from, to) = sc::date_period(req.start_date.as_ref(), req.end_date.as_ref())?;
        let tier = convert::value_tier(req.value_tier).map_err(|e| invalid_argument("value_tier", e.reason))?;
        let scope = Scope::of(who, REPORT_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let (answers, satisfied) = store::satisfaction(&mut conn, &scope, from, to, tier, SATISFIED_SCORE).await?;
        // The period of equal length just before, for the trend.
        let days = (to - from).num_days() + 1;
        let prev_to = from - chrono::Duration::days(1);
        let prev_from = from - chrono::Duration::days(days);
        let (prev_answers, prev_satisfied) =
            store::satisfaction(&mut conn, &scope, prev_from, prev_to, tier, SATISFIED_SCORE).await?;
        let rate = |s: i64, a: i64| if a == 0 { 0.0 } else { s as f64 / a as f64 };
        let (now_rate, prev_rate) = (rate(satisfied, answers), rate(prev_satisfied, prev_answers));
        let target = contact_rules::satisfaction_target(to.year());
        Ok(pb::GetSatisfactionResponse {
            answers,
            satisfied,
            satisfaction_rate: now_rate,
            target_rate: target,
            meets_target: answers > 0 && now_rate + 1e-12 >= target,
            previous_answers: prev_answers,
            previous_satisfaction_rate: prev_rate,
            trend: if answers > 0 && prev_answers > 0 { now_rate - prev_rate } else { 0.0 },
        })
    }

    pub(super) async fn create_account_plan(
        &self,
        who: &Caller,
        req: pb::CreateAccountPlanRequest,
    ) -> Result<pb::CreateAccountPlanResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateAccountPlan", who, &req.request_id, &req)?;
        let mut p: AccountPlan = sc::new_plan(&req, &who.sub)?;
        let scope = Scope::of(who, EDITORS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let c = customer_in_scope(&mut tx, p.customer_id, &scope).await?;
        live(&c)?;
        plan::may_have_plan(c.classification.value_tier)?;
        p.customer_id = c.id;
        store::insert_plan(&mut tx, &p).await?;
        let saved = self.reload_plan(&mut tx, p.id).await?;
        let resp = pb::CreateAccountPlanResponse { plan: Some(sc::plan(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn reload_plan(&self, conn: &mut PgConnection, id: Uuid) -> Result<AccountPlan> {
        store::load_plan(conn, id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("plan {id} vanished inside its transaction")))
    }

    /// The plan, locked, if its customer is in the caller's scope.
    async fn plan_in_scope(
        &self,
        conn: &mut PgConnection,
        plan_id: &str,
        scope: &Scope,
        etag: &str,
    ) -> Result<AccountPlan> {
        let id = Uuid::try_parse(plan_id).map_err(|_| invalid_argument("plan_id", "must be a UUID"))?;
        let p = store::load_plan(conn, id, true)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "account plan", id: id.to_string() })?;
        store::load(conn, p.customer_id, scope, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "account plan", id: id.to_string() })?;
        check_etag(p.version, etag)?;
        Ok(p)
    }

    pub(super) async fn review_account_plan(
        &self,
        who: &Caller,
        req: pb::ReviewAccountPlanRequest,
    ) -> Result<pb::ReviewAccountPlanResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ReviewAccountPlan", who, &req.request_id, &req)?;
        let (quarter, summary) = sc::review(&req)?;
        let scope = Scope::of(who, MANAGERS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let p = self.plan_in_scope(&mut tx, &req.plan_id, &scope, &req.etag).await?;
        store::upsert_review(&mut tx, p.id, quarter, &summary, &who.sub).await?;
        let saved = self.reload_plan(&mut tx, p.id).await?;
        let resp = pb::ReviewAccountPlanResponse { plan: Some(sc::plan(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn advance_contract_stage(
        &self,
        who: &Caller,
        req: pb::AdvanceContractStageRequest,
    ) -> Result<pb::AdvanceContractStageResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AdvanceContractStage", who, &req.request_id, &req)?;
        let to: ContractStage = sc::contract_stage(req.stage)?;
        let scope = Scope::of(who, EDITORS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let p = self.plan_in_scope(&mut tx, &req.plan_id, &scope, &req.etag).await?;
        store::save_plan_stage(&mut tx, p.id, p.contract_stage.advance(to)?).await?;
        let saved = self.reload_plan(&mut tx, p.id).await?;
        let resp = pb::AdvanceContractStageResponse { plan: Some(sc::plan(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_account_plans(
        &self,
        who: &Caller,
        req: pb::ListAccountPlansRequest,
    ) -> Result<pb::ListAccountPlansResponse> {
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let c = visible(&mut conn, id, &scope).await?;
        let plans = store::list_plans(&mut conn, c.id).await?;
        Ok(pb::ListAccountPlansResponse { plans: plans.iter().map(sc::plan).collect() })
    }

    pub(super) async fn merge_customers(
        &self,
        who: &Caller,
        req: pb::MergeCustomersRequest,
    ) -> Result<pb::MergeCustomersResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "MergeCustomers", who, &req.request_id, &req)?;
        let (survivor_id, merged_id, reason) = sc::merge(&req)?;
        let scope = Scope::of(who, MANAGERS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        // Lock both rows in id order so concurrent merges cannot deadlock.
        let (first, second) = if survivor_id < merged_id { (survivor_id, merged_id) } else { (merged_id, survivor_id) };
        let a = customer_in_scope(&mut tx, first, &scope).await?;
        let b = customer_in_scope(&mut tx, second, &scope).await?;
        let (mut survivor, merged) = if a.id == survivor_id { (a, b) } else { (b, a) };
        if survivor.id != survivor_id || merged.id != merged_id {
            // One of the ids had already been merged and resolved elsewhere.
            return Err(RuleViolation::new(
                "ALREADY_MERGED",
                "one of the customers was already merged; use its survivor",
            )
            .into());
        }
        live(&survivor)?;
        live(&merged)?;
        let years = store::conflicting_plan_years(&mut tx, survivor.id, merged.id).await?;
        if !years.is_empty() {
            return Err(RuleViolation::new(
                "PLAN_CONFLICT",
                format!("both customers have an account plan for {years:?}; keep one before merging"),
            )
            .into());
        }
        store::move_children(&mut tx, merged.id, survivor.id).await?;
        store::mark_merged(&mut tx, merged.id, survivor.id).await?;
        survivor.absorb(&merged);
        store::save_customer(&mut tx, &survivor).await?;
        emit(
            &mut tx,
            survivor.id.0,
            Payload::CustomersMerged(ev::CustomersMerged {
                survivor_id: survivor.id.to_string(),
                merged_id: merged.id.to_string(),
                merged_by: who.sub.clone(),
                reason: reason.clone(),
            }),
        )
        .await?;
        let saved = store::load(&mut tx, survivor.id, &Scope::All, false)
            .await?
            .ok_or_else(|| Error::Corrupt("survivor vanished inside its transaction".into()))?;
        let resp = pb::MergeCustomersResponse { survivor: Some(convert::customer(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_audit_events(
        &self,
        who: &Caller,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let size = PageSize::parse(req.page_size, 50, 1000).map_err(|e| invalid_argument("page_size", e.reason))?;
        let before = sc::decode_audit_token(&req.page_token, &id)?;
        let scope = Scope::of(who, AUDIT_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let c = visible(&mut conn, id, &scope).await?;
        let mut events = store::audit_events(&mut conn, c.id, before, size.0).await?;
        let more = events.len() > size.0 as usize;
        events.truncate(size.0 as usize);
        let next_page_token = match events.last() {
            Some(last) if more => sc::encode_audit_token(last.id, &id),
            _ => String::new(),
        };
        Ok(pb::ListAuditEventsResponse { events: events.iter().map(sc::audit_event).collect(), next_page_token })
    }
}

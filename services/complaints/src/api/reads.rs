//! Reads and reports (CMP-6, CMP-9), and the deadline policy.

use chrono::Duration;
use crm_domain::page;
use crm_platform::edge::Page;
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::complaints::v1 as pb;

use super::{Caller, ComplaintsApi, convert};
use crate::{
    error::{Error, Result},
    model::deadline::{DeadlinePolicy, DeadlineRule},
    store::{self, IDEMPOTENCY_TABLE},
};

/// The furthest ahead ListDueComplaints looks: 30 days.
const MAX_WITHIN_HOURS: i32 = 720;

impl ComplaintsApi {
    pub(super) async fn get_complaint(
        &self,
        _caller: &Caller,
        req: pb::GetComplaintRequest,
    ) -> Result<pb::GetComplaintResponse> {
        // By id or by number: the service desk is phoned about
        // "CMP-2026-000123". `number` and `id` name the same thing.
        let mut v = Violations::default();
        let (field, given) = match (req.id.trim(), req.number.trim()) {
            ("", "") => ("id", ""),
            (id, "") => ("id", id),
            ("", number) => ("number", number),
            _ => {
                v.add("number", "give the id or the number, not both");
                ("id", req.id.as_str())
            }
        };
        let which = convert::complaint_ref(&mut v, field, given);
        let which = v.finish_with(which)?;
        let mut conn = self.pool.acquire().await?;
        let id = match which {
            convert::ComplaintRef::Id(id) => id,
            convert::ComplaintRef::Number(n) => store::id_by_number(&mut conn, &n)
                .await?
                .ok_or_else(|| Error::NotFound { resource: "complaint", id: n.clone() })?,
        };
        let c = store::load(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "complaint", id: id.to_string() })?;
        Ok(pb::GetComplaintResponse { complaint: Some(convert::complaint(&c, &self.calendar)) })
    }

    pub(super) async fn list_complaints(
        &self,
        _caller: &Caller,
        req: pb::ListComplaintsRequest,
    ) -> Result<pb::ListComplaintsResponse> {
        let (filter, fingerprint) = convert::list_filter(&req)?;
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        Ok(pb::ListComplaintsResponse {
            complaints: rows.iter().map(|c| convert::complaint(c, &self.calendar)).collect(),
            next_page_token,
        })
    }

    pub(super) async fn list_due_complaints(
        &self,
        _caller: &Caller,
        req: pb::ListDueComplaintsRequest,
    ) -> Result<pb::ListDueComplaintsResponse> {
        if !(0..=MAX_WITHIN_HOURS).contains(&req.within_hours) {
            return Err(invalid_argument("within_hours", format!("must be between 0 and {MAX_WITHIN_HOURS}")).into());
        }
        let fingerprint = page::fingerprint(&[&req.within_hours.to_be_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 500, fingerprint)?;
        let at = self.clock.now();
        let until = at + Duration::hours(i64::from(req.within_hours));
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_due(&mut conn, until, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |(last, _)| last.id.0);
        Ok(pb::ListDueComplaintsResponse {
            complaints: rows
                .iter()
                .map(|(c, due)| pb::DueComplaint {
                    complaint: Some(convert::complaint(c, &self.calendar)),
                    due_at: Some(crm_platform::proto_time::to_proto(*due)),
                    overdue: *due < at,
                    due_date: Some(convert::date_out(self.calendar.due_date(*due))),
                })
                .collect(),
            next_page_token,
        })
    }

    pub(super) async fn list_deadline_policies(
        &self,
        _caller: &Caller,
        _req: pb::ListDeadlinePoliciesRequest,
    ) -> Result<pb::ListDeadlinePoliciesResponse> {
        let mut conn = self.pool.acquire().await?;
        let policies = store::list_policies(&mut conn).await?;
        Ok(pb::ListDeadlinePoliciesResponse { policies: policies.iter().map(convert::policy).collect() })
    }

    pub(super) async fn set_deadline_policy(
        &self,
        caller: &Caller,
        req: pb::SetDeadlinePolicyRequest,
    ) -> Result<pb::SetDeadlinePolicyResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SetDeadlinePolicy", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let p = req.policy.clone().unwrap_or_default();
        if req.policy.is_none() {
            v.add("policy", "is required");
        }
        let level = v.check("policy.service_level", convert::required(convert::service_level_in(p.service_level)));
        let urgency = v.check("policy.urgency", convert::required(convert::urgency_in(p.urgency)));
        let unit = v.check("policy.unit", convert::required(convert::unit_in(p.unit)));
        let rule = unit.and_then(|u| v.check("policy.amount", DeadlineRule::parse(u, p.amount)));
        let (service_level, urgency, rule) = v.finish_with((level, urgency, rule))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let policy =
            DeadlinePolicy { service_level, urgency, rule, updated_by: who.sub.clone(), updated_at: self.clock.now() };
        let saved = store::set_policy(&mut tx, &policy).await?;
        tracing::info!(
            service_level = service_level.as_str(),
            urgency = urgency.as_str(),
            unit = rule.unit.as_str(),
            amount = rule.amount,
            by = %who.sub,
            "deadline policy changed"
        );
        let response = pb::SetDeadlinePolicyResponse { policy: Some(convert::policy(&saved)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn get_complaint_stats(
        &self,
        _caller: &Caller,
        req: pb::GetComplaintStatsRequest,
    ) -> Result<pb::GetComplaintStatsResponse> {
        let mut v = Violations::default();
        let from = convert::timestamp("from", &mut v, req.from.as_ref());
        let to = convert::timestamp("to", &mut v, req.to.as_ref());
        let period = v.check("period", convert::period_in(req.period));
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                v.add("to", "must be after from");
            } else if t - f > Duration::days(3 * 366) {
                v.add("to", "a report covers at most three years");
            }
        }
        let (from, to, period) = v.finish_with((from, to, period))?;
        let mut conn = self.pool.acquire().await?;
        let zone = self.calendar.zone();
        let rows = store::stats(&mut conn, from, to, period, zone.name()).await?;
        Ok(convert::stats(&rows))
    }
}

//! The termination saga's RPCs (CUS-11), behaviour figures and the tier
//! policy (CUS-8).

use crm_domain::{Currency, ids::CustomerId, text};
use crm_events::pb as ev;
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall, proto_time};
use crm_proto::{common::v1 as common, customers::v1 as pb};
use uuid::Uuid;

use super::{Caller, CustomersApi, convert};
use crate::{
    error::{Error, Result},
    model::{
        access::{EDITORS, READERS, Scope},
        termination::{MAX_NOTICE_DAYS, StepOutcome, Termination},
        tiering::TierPolicy,
    },
    store::{self, IDEMPOTENCY_TABLE},
    usecases::publish::emit,
};

fn termination_pb(t: &Termination) -> pb::Termination {
    let t_opt = |v: Option<chrono::DateTime<chrono::Utc>>| v.map(proto_time::to_proto);
    // Participants that have not reported yet show as pending.
    let steps = crate::model::termination::PARTICIPANTS
        .iter()
        .map(|p| match t.steps.iter().find(|s| s.participant == *p) {
            Some(s) => pb::TerminationStep {
                participant: s.participant.clone(),
                outcome: convert::step_outcome_pb(s.outcome),
                code: s.code.clone(),
                reason: s.reason.clone(),
                update_time: Some(proto_time::to_proto(s.updated_at)),
            },
            None => pb::TerminationStep {
                participant: (*p).to_string(),
                outcome: convert::step_outcome_pb(StepOutcome::Pending),
                ..Default::default()
            },
        })
        .collect();
    pb::Termination {
        id: t.id.to_string(),
        customer_id: t.customer_id.to_string(),
        reason: convert::termination_reason_pb(t.reason),
        note: t.note.clone(),
        notice_days: t.notice_days,
        state: convert::termination_state_pb(t.state),
        requested_by: t.requested_by.clone(),
        request_time: Some(proto_time::to_proto(t.requested_at)),
        decided_by: t.decided_by.clone().unwrap_or_default(),
        decide_time: t_opt(t.decided_at),
        rejection_reason: t.rejection_reason.clone().unwrap_or_default(),
        notice_end_time: t_opt(t.notice_ends_at),
        clearing_start_time: t_opt(t.clearing_started_at),
        terminate_time: t_opt(t.terminated_at),
        steps,
        held_reason: t.held_reason(),
        etag: t.etag(),
    }
}

fn termination_id(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::InvalidField { field: "termination_id", reason: "must be a UUID".into() })
}

fn check_etag(t: &Termination, etag: &str) -> Result<()> {
    match convert::etag(etag) {
        Some(want) if want != crate::model::etag(t.version) => Err(Error::StaleEtag { current: t.etag() }),
        _ => Ok(()),
    }
}

fn money(minor: i64, currency: &str) -> common::Money {
    common::Money { amount_minor: minor, currency_code: currency.to_string() }
}

impl CustomersApi {
    /// The termination, if its customer is in the caller's scope.
    async fn visible_termination(
        &self,
        conn: &mut sqlx::PgConnection,
        id: Uuid,
        scope: &Scope,
        lock: bool,
    ) -> Result<Termination> {
        let t = store::load_termination(conn, id, lock).await?;
        let t = t.ok_or_else(|| Error::NotFound { resource: "termination", id: id.to_string() })?;
        if store::load(conn, t.customer_id, scope, false).await?.is_none() {
            return Err(Error::NotFound { resource: "termination", id: id.to_string() });
        }
        Ok(t)
    }

    pub(super) async fn request_termination(
        &self,
        who: &Caller,
        req: pb::RequestTerminationRequest,
    ) -> Result<pb::RequestTerminationResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RequestTermination", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = v.check("customer_id", CustomerId::parse(&req.customer_id));
        let reason = v.check("reason", convert::required(convert::termination_reason(req.reason)));
        let note = v.check("note", text::required(&req.note, 2000));
        if !(0..=MAX_NOTICE_DAYS).contains(&req.notice_days) {
            v.add("notice_days", format!("must be between 0 and {MAX_NOTICE_DAYS}"));
        }
        let (id, reason, note) = v.finish_with((id, reason, note))?;
        let scope = Scope::of(who, EDITORS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let c = store::load(&mut tx, id, &scope, true)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })?;
        c.check_terminable()?;
        let now = proto_time::now();
        let t = Termination::request(c.id, reason, note, req.notice_days, &who.sub, now);
        store::insert_termination(&mut tx, &t).await?;
        emit(
            &mut tx,
            t.id,
            ev::event::Payload::TerminationRequested(ev::TerminationRequested {
                saga_id: t.id.to_string(),
                customer_id: c.id.to_string(),
                reason: reason.as_str().into(),
                requested_by: who.sub.clone(),
                notice_days: t.notice_days,
            }),
        )
        .await?;
        let saved = store::load_termination(&mut tx, t.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt("termination vanished inside its transaction".into()))?;
        let resp = pb::RequestTerminationResponse { termination: Some(termination_pb(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn approve_termination(
        &self,
        who: &Caller,
        req: pb::ApproveTerminationRequest,
    ) -> Result<pb::ApproveTerminationResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ApproveTermination", who, &req.request_id, &req)?;
        let id = termination_id(&req.termination_id)?;
        let scope = Scope::All;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let mut t = self.visible_termination(&mut tx, id, &scope, true).await?;
        check_etag(&t, &req.etag)?;
        t.approve(&who.sub, proto_time::now())?;
        store::save_termination(&mut tx, &t).await?;
        emit(
            &mut tx,
            t.id,
            ev::event::Payload::TerminationApproved(ev::TerminationApproved {
                saga_id: t.id.to_string(),
                customer_id: t.customer_id.to_string(),
                approved_by: who.sub.clone(),
                notice_ends_at: t.notice_ends_at.map(proto_time::to_proto),
            }),
        )
        .await?;
        let saved = store::load_termination(&mut tx, t.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt("termination vanished inside its transaction".into()))?;
        let resp = pb::ApproveTerminationResponse { termination: Some(termination_pb(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn reject_termination(
        &self,
        who: &Caller,
        req: pb::RejectTerminationRequest,
    ) -> Result<pb::RejectTerminationResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RejectTermination", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let reason = v.check("reason", text::required(&req.reason, 1000));
        let id = Uuid::parse_str(&req.termination_id).ok();
        if id.is_none() {
            v.add("termination_id", "must be a UUID");
        }
        let (id, reason) = v.finish_with((id, reason))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let mut t = self.visible_termination(&mut tx, id, &Scope::All, true).await?;
        check_etag(&t, &req.etag)?;
        t.reject(&who.sub, &reason, proto_time::now())?;
        store::save_termination(&mut tx, &t).await?;
        let saved = store::load_termination(&mut tx, t.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt("termination vanished inside its transaction".into()))?;
        let resp = pb::RejectTerminationResponse { termination: Some(termination_pb(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn get_termination(
        &self,
        who: &Caller,
        req: pb::GetTerminationRequest,
    ) -> Result<pb::GetTerminationResponse> {
        let id = termination_id(&req.termination_id)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let t = self.visible_termination(&mut conn, id, &scope, false).await?;
        Ok(pb::GetTerminationResponse { termination: Some(termination_pb(&t)) })
    }

    pub(super) async fn list_terminations(
        &self,
        who: &Caller,
        req: pb::ListTerminationsRequest,
    ) -> Result<pb::ListTerminationsResponse> {
        let mut v = Violations::default();
        let customer =
            if req.customer_id.is_empty() { None } else { v.check("customer_id", CustomerId::parse(&req.customer_id)) };
        let state = v.check("state", convert::termination_state(req.state)).flatten();
        let size = match req.page_size {
            0 => 50,
            n @ 1..=200 => i64::from(n),
            _ => {
                v.add("page_size", "must be between 1 and 200");
                0
            }
        };
        v.finish()?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        // Resolve a merged id to its survivor, inside the caller's scope.
        let customer = match customer {
            Some(id) => Some(
                store::load(&mut conn, id, &scope, false)
                    .await?
                    .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })?
                    .id,
            ),
            None => None,
        };
        let found = store::list_terminations(&mut conn, customer, state, size).await?;
        let mut terminations = Vec::with_capacity(found.len());
        for t in found {
            if customer.is_some() || store::load(&mut conn, t.customer_id, &scope, false).await?.is_some() {
                terminations.push(termination_pb(&t));
            }
        }
        Ok(pb::ListTerminationsResponse { terminations })
    }

    pub(super) async fn get_customer_behaviour(
        &self,
        who: &Caller,
        req: pb::GetCustomerBehaviourRequest,
    ) -> Result<pb::GetCustomerBehaviourResponse> {
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let c = store::load(&mut conn, id, &scope, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })?;
        let policy = store::tier_policy(&mut conn).await?.policy;
        let now = proto_time::now();
        let b = store::behaviour(&mut conn, c.id, &policy.currency, now).await?;
        Ok(pb::GetCustomerBehaviourResponse {
            behaviour: Some(pb::CustomerBehaviour {
                customer_id: c.id.to_string(),
                purchases_last_year: b.figures.purchases_last_year,
                purchase_amount_last_year: Some(money(b.figures.purchase_minor_last_year, &policy.currency)),
                complaints_last_year: b.figures.complaints_last_year,
                lifetime_value: Some(money(b.figures.lifetime_value_minor, &policy.currency)),
                purchases_total: b.purchases_total,
                complaints_total: b.complaints_total,
                first_purchase_time: b.first_purchase.map(proto_time::to_proto),
                last_purchase_time: b.last_purchase.map(proto_time::to_proto),
                as_of: Some(proto_time::to_proto(now)),
                suggested_tier: convert::value_tier_pb(policy.tier(&b.figures)),
                current_tier: convert::value_tier_pb(c.classification.value_tier),
            }),
        })
    }

    pub(super) async fn get_tier_policy(
        &self,
        _who: &Caller,
        _req: pb::GetTierPolicyRequest,
    ) -> Result<pb::GetTierPolicyResponse> {
        let mut conn = self.pool.acquire().await?;
        let stored = store::tier_policy(&mut conn).await?;
        Ok(pb::GetTierPolicyResponse { policy: Some(policy_pb(&stored)) })
    }

    pub(super) async fn set_tier_policy(
        &self,
        who: &Caller,
        req: pb::SetTierPolicyRequest,
    ) -> Result<pb::SetTierPolicyResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SetTierPolicy", who, &req.request_id, &req)?;
        let Some(p) = req.policy.as_ref() else { return Err(invalid_argument("policy", "is required").into()) };
        let mut v = Violations::default();
        let mut amount = |field: &str, m: Option<&common::Money>| match m {
            None => {
                v.add(field, "is required");
                None
            }
            Some(m) => match Currency::parse(&m.currency_code) {
                Ok(c) => Some((m.amount_minor, c.code().to_string())),
                Err(e) => {
                    v.add(field, e.to_string());
                    None
                }
            },
        };
        let key = amount("policy.key_min_amount", p.key_min_amount.as_ref());
        let vip = amount("policy.vip_min_amount", p.vip_min_amount.as_ref());
        if let (Some(k), Some(x)) = (&key, &vip)
            && k.1 != x.1
        {
            v.add("policy.vip_min_amount", "must be in the currency of key_min_amount");
        }
        let ((key_min_minor, currency), (vip_min_minor, _)) = v.finish_with((key, vip))?;
        let policy = TierPolicy {
            automatic: p.automatic,
            currency,
            key_min_minor,
            vip_min_minor,
            max_complaints_for_upgrade: i64::from(p.max_complaints_for_upgrade),
        };
        policy.check().map_err(|(field, reason)| invalid_argument(field, reason))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        store::save_tier_policy(&mut tx, &policy, &who.sub).await?;
        let stored = store::tier_policy(&mut tx).await?;
        let resp = pb::SetTierPolicyResponse { policy: Some(policy_pb(&stored)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }
}

fn policy_pb(s: &store::StoredPolicy) -> pb::TierPolicy {
    pb::TierPolicy {
        automatic: s.policy.automatic,
        key_min_amount: Some(money(s.policy.key_min_minor, &s.policy.currency)),
        vip_min_amount: Some(money(s.policy.vip_min_minor, &s.policy.currency)),
        max_complaints_for_upgrade: i32::try_from(s.policy.max_complaints_for_upgrade).unwrap_or(i32::MAX),
        updated_by: s.updated_by.clone(),
        update_time: Some(proto_time::to_proto(s.updated_at)),
    }
}

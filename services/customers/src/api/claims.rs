//! CUS-2/CUS-3 ownership claims: filed by the salesperson whose registration
//! was refused because the customer exists, decided by a sales manager.

use crm_domain::{ids::CustomerId, page::fingerprint, text};
use crm_platform::edge::Page;
use crm_platform::{Violations, idempotency::IdempotentCall, proto_time};
use crm_proto::customers::v1 as pb;
use uuid::Uuid;

use super::{
    Caller, CustomersApi,
    handlers::{refresh_doc, updated},
};
use crate::{
    error::{Error, Result},
    model::{
        RuleViolation,
        access::{self, EDITORS, MANAGERS, Scope},
        claims::{ClaimState, OwnershipClaim},
        contact_rules::{self, Reassignment},
    },
    store::{self, ClaimsOf, IDEMPOTENCY_TABLE},
};

fn claim_pb(k: &OwnershipClaim) -> pb::OwnershipClaim {
    pb::OwnershipClaim {
        id: k.id.to_string(),
        customer_id: k.customer_id.to_string(),
        claimant_id: k.claimant_id.clone(),
        claimant_branch: k.claimant_branch.clone(),
        owner_id: k.owner_id.clone(),
        reason: k.reason.clone(),
        state: state_pb(k.state) as i32,
        file_time: Some(proto_time::to_proto(k.filed_at)),
        decided_by: k.decided_by.clone().unwrap_or_default(),
        decide_time: k.decided_at.map(proto_time::to_proto),
        decision_reason: k.decision_reason.clone().unwrap_or_default(),
        etag: k.etag(),
    }
}

fn state_pb(s: ClaimState) -> pb::OwnershipClaimState {
    match s {
        ClaimState::Pending => pb::OwnershipClaimState::Pending,
        ClaimState::Granted => pb::OwnershipClaimState::Granted,
        ClaimState::Rejected => pb::OwnershipClaimState::Rejected,
    }
}

fn state_filter(v: i32) -> std::result::Result<Option<ClaimState>, crm_domain::Invalid> {
    match pb::OwnershipClaimState::try_from(v) {
        Ok(pb::OwnershipClaimState::Unspecified) => Ok(None),
        Ok(pb::OwnershipClaimState::Pending) => Ok(Some(ClaimState::Pending)),
        Ok(pb::OwnershipClaimState::Granted) => Ok(Some(ClaimState::Granted)),
        Ok(pb::OwnershipClaimState::Rejected) => Ok(Some(ClaimState::Rejected)),
        Err(_) => Err(crm_domain::Invalid::new("is not a claim state")),
    }
}

impl CustomersApi {
    pub(super) async fn file_ownership_claim(
        &self,
        who: &Caller,
        req: pb::FileOwnershipClaimRequest,
    ) -> Result<pb::FileOwnershipClaimResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "FileOwnershipClaim", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = v.check("customer_id", CustomerId::parse(&req.customer_id));
        let reason = v.check("reason", text::required(&req.reason, 1000));
        let (id, reason) = v.finish_with((id, reason))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        // The claimant usually cannot see the customer (someone else owns
        // it): the refusal named its id, and the claim shows no more than that.
        let c = store::load(&mut tx, id, &Scope::All, true)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "customer", id: id.to_string() })?;
        let claim = OwnershipClaim::file(&c, &who.sub, who.branch.as_deref(), reason, proto_time::now())?;
        if !store::insert_claim(&mut tx, &claim).await? {
            let open = store::pending_claim(&mut tx, c.id, &who.sub).await?;
            return Err(RuleViolation::new(
                "CLAIM_PENDING",
                format!(
                    "you already have a claim on this customer waiting for a decision: {}",
                    open.map(|k| k.id.to_string()).unwrap_or_default()
                ),
            )
            .into());
        }
        let resp = pb::FileOwnershipClaimResponse { claim: Some(claim_pb(&claim)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn decide_ownership_claim(
        &self,
        who: &Caller,
        req: pb::DecideOwnershipClaimRequest,
    ) -> Result<pb::DecideOwnershipClaimResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "DecideOwnershipClaim", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = Uuid::try_parse(&req.claim_id).ok();
        if id.is_none() {
            v.add("claim_id", "must be a UUID");
        }
        let reason = v.check("reason", text::required(&req.reason, 1000));
        let (id, reason) = v.finish_with((id, reason))?;
        let scope = Scope::of(who, MANAGERS)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        let not_found = || Error::NotFound { resource: "ownership claim", id: id.to_string() };
        let mut claim = store::load_claim(&mut tx, id, true).await?.ok_or_else(not_found)?;
        // A branch's manager decides the claims on the branch's customers.
        let mut c = store::load(&mut tx, claim.customer_id, &scope, true).await?.ok_or_else(not_found)?;
        if let Some(want) = super::convert::etag(&req.etag)
            && want != claim.etag()
        {
            return Err(Error::StaleEtag { current: claim.etag() });
        }
        let now = proto_time::now();
        claim.decide(req.grant, &who.sub, reason.clone(), now)?;
        if req.grant {
            // The manager's decision is the final word (CUS-3): it overrides
            // the owner's first-contact protection (CUS-4), recorded as such.
            let (owner, branch) = access::reassignment(who, &c, &claim.claimant_id, Some(&claim.claimant_branch))
                .map_err(|e| match e {
                    access::ReassignError::Denied(d) => Error::Denied(d),
                    access::ReassignError::Rule(r) => Error::Rule(r),
                })?;
            let overridden = contact_rules::may_reassign(&c, now, true)? == Reassignment::Override;
            c.owner_id = owner;
            c.branch = branch;
            c = c.with_assignment_clock(&who.sub, now);
            store::save_customer(&mut tx, &c).await?;
            let history = format!("ownership claim {} granted: {reason}", claim.id);
            store::record_owner(&mut tx, &c, &who.sub, &history, overridden).await?;
            refresh_doc(&mut tx, c.id).await?;
            updated(&mut tx, c.id, vec!["owner_id".into(), "branch".into()], who).await?;
        }
        store::save_claim(&mut tx, &claim).await?;
        let saved = store::load_claim(&mut tx, id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("claim {id} vanished inside its transaction")))?;
        let resp = pb::DecideOwnershipClaimResponse { claim: Some(claim_pb(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_ownership_claims(
        &self,
        who: &Caller,
        req: pb::ListOwnershipClaimsRequest,
    ) -> Result<pb::ListOwnershipClaimsResponse> {
        let mut v = Violations::default();
        let customer =
            if req.customer_id.is_empty() { None } else { v.check("customer_id", CustomerId::parse(&req.customer_id)) };
        let state = v.check("state", state_filter(req.state)).flatten();
        v.finish()?;
        let fp =
            fingerprint(&[b"claims", req.customer_id.as_bytes(), state.map(|s| s.as_str()).unwrap_or("").as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 200, fp)?;
        // A salesperson sees the claims they filed, a branch's managers
        // their branch's, the rest all.
        let scope = Scope::of(who, EDITORS)?;
        let mut conn = self.pool.acquire().await?;
        let rows =
            store::list_claims(&mut conn, &ClaimsOf::of(&scope), customer, state, page.after, i64::from(page.size))
                .await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id);
        Ok(pb::ListOwnershipClaimsResponse { claims: rows.iter().map(claim_pb).collect(), next_page_token })
    }
}

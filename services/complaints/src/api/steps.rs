//! The lifecycle RPCs (CMP-3..CMP-8): each validates its request, opens the
//! change under the complaint's row lock, lets the model decide, records
//! who and when, and commits with the idempotency key.

use chrono::{DateTime, Utc};
use crm_platform::{Principal, Violations, idempotency::IdempotentCall};
use crm_proto::complaints::v1 as pb;

use super::{Caller, ComplaintsApi, Fresh, convert};
use crate::{
    error::{Error, Result},
    events,
    model::{
        Complaint, EscalationLevel, Round, State, Step,
        access::{self, Denied, SENIOR_ESCALATORS},
        deadline::default_rule,
        escalation,
        lifecycle::Event,
    },
    store::{self, IDEMPOTENCY_TABLE},
};

use convert::{LONG_TEXT, NOTE};

pub(super) fn step(action: &str, from: State, c: &Complaint, who: &Principal, at: DateTime<Utc>, note: String) -> Step {
    Step { action: action.into(), from_state: Some(from), to_state: c.state, actor: who.sub.clone(), at, note }
}

fn current_round(c: &mut Complaint) -> Result<&mut Round> {
    let (id, n) = (c.id, c.round);
    c.current_round_mut().ok_or_else(|| Error::Corrupt(format!("complaint {id} has no round {n}")))
}

impl ComplaintsApi {
    /// The answer deadline of a round opened at `at` (CMP-6).
    async fn answer_due(&self, tx: &mut sqlx::PgConnection, c: &Complaint, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let rule = store::policy_for(tx, c.service_level, c.urgency).await?.unwrap_or_else(|| default_rule(c.urgency));
        Ok(rule.due(&self.calendar, at))
    }

    pub(super) async fn accept_complaint(
        &self,
        caller: &Caller,
        req: pb::AcceptComplaintRequest,
    ) -> Result<pb::AcceptComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AcceptComplaint", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let note = convert::optional_text(&mut v, "note", &req.note, NOTE);
        let (id, note) = v.finish_with((id, note))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::Accept).await?);
        let at = self.clock.now();
        let round = Round::open(1, at, self.answer_due(&mut tx, &c, at).await?);
        store::insert_round(&mut tx, c.id, &round).await?;
        let from = c.state;
        c.state = to;
        c.accepted_by = Some(who.sub.clone());
        c.accepted_at = Some(at);
        c.round = 1;
        // CMP-3: acceptance notifies the quality manager.
        events::emit(&mut tx, c.id.0, at, events::accepted(&c, &who.sub)).await?;
        let s = step("accepted", from, &c, who, at, note);
        self.finish_change(call, tx, &c, s, |p| pb::AcceptComplaintResponse { complaint: Some(p) }).await
    }

    pub(super) async fn reject_complaint(
        &self,
        caller: &Caller,
        req: pb::RejectComplaintRequest,
    ) -> Result<pb::RejectComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RejectComplaint", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let reason = v.check("reason", convert::required(convert::rejection_in(req.reason)));
        let note = convert::required_text(&mut v, "note", &req.note, NOTE);
        let (id, reason, note) = v.finish_with((id, reason, note))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::Reject).await?);
        let at = self.clock.now();
        let from = c.state;
        c.state = to;
        c.rejection_reason = Some(reason);
        c.rejection_note = note.clone();
        c.rejected_by = Some(who.sub.clone());
        c.rejected_at = Some(at);
        // A rejected complaint is final: closed for everyone counting open ones.
        events::emit(&mut tx, c.id.0, at, events::closed(&c, &who.sub)).await?;
        let s = step("rejected", from, &c, who, at, format!("{}: {note}", reason.as_str()));
        self.finish_change(call, tx, &c, s, |p| pb::RejectComplaintResponse { complaint: Some(p) }).await
    }

    pub(super) async fn start_investigation(
        &self,
        caller: &Caller,
        req: pb::StartInvestigationRequest,
    ) -> Result<pb::StartInvestigationResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "StartInvestigation", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::StartInvestigation).await?);
        let at = self.clock.now();
        let from = c.state;
        c.state = to;
        let round = current_round(&mut c)?;
        round.investigated_by = Some(who.sub.clone());
        round.investigation_started_at = Some(at);
        store::save_round(&mut tx, id, round).await?;
        let s = step("investigation started", from, &c, who, at, String::new());
        self.finish_change(call, tx, &c, s, |p| pb::StartInvestigationResponse { complaint: Some(p) }).await
    }

    pub(super) async fn escalate_complaint(
        &self,
        caller: &Caller,
        req: pb::EscalateComplaintRequest,
    ) -> Result<pb::EscalateComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "EscalateComplaint", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let to_level = v.check("to_level", convert::required(convert::level_in(req.to_level)));
        if to_level == Some(EscalationLevel::Department) {
            v.add("to_level", "escalation goes to the office or senior management");
        }
        let reason = convert::required_text(&mut v, "reason", &req.reason, NOTE);
        let team = convert::people(&mut v, "team_members", &req.team_members);
        let (id, to_level, reason) = v.finish_with((id, to_level, reason))?;
        // CMP-4: what is important enough for senior management is decided
        // above the department.
        if to_level == EscalationLevel::SeniorManagement && !who.has_any(SENIOR_ESCALATORS) {
            return Err(Denied::new(
                "SENIOR_ESCALATION_NOT_ALLOWED",
                "only the office, the quality manager or senior management escalate to senior management (CMP-4)",
            )
            .into());
        }
        let Fresh { mut tx, mut c, .. } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::Escalate).await?);
        let cause = escalation::Cause::ByHand { to: to_level, reason, team };
        let escalation::Escalated { record, step: s } =
            escalation::escalate(&mut c, cause, &who.sub, self.clock.now())?;
        if let Some(e) = &record {
            store::insert_escalation(&mut tx, c.id, e).await?;
        }
        self.finish_change(call, tx, &c, s, |p| pb::EscalateComplaintResponse { complaint: Some(p) }).await
    }

    pub(super) async fn record_retest(
        &self,
        caller: &Caller,
        req: pb::RecordRetestRequest,
    ) -> Result<pb::RecordRetestResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordRetest", who, &req.request_id, &req)?;
        let at = self.clock.now();
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let retest = convert::retest(&mut v, req.retest.as_ref(), &who.sub, at);
        let (id, retest) = v.finish_with((id, retest))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::RecordRetest).await?);
        c.check_retest_applies()?;
        c.check_retest_replaceable()?;
        let from = c.state;
        c.state = to;
        let note = format!("outcome {}", retest.outcome.as_str());
        let round = current_round(&mut c)?;
        round.retest = Some(retest);
        store::save_round(&mut tx, id, round).await?;
        let s = step("re-test recorded", from, &c, who, at, note);
        self.finish_change(call, tx, &c, s, |p| pb::RecordRetestResponse { complaint: Some(p) }).await
    }

    pub(super) async fn approve_amendment(
        &self,
        caller: &Caller,
        req: pb::ApproveAmendmentRequest,
    ) -> Result<pb::ApproveAmendmentResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ApproveAmendment", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let id = v.finish_with(id)?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::ApproveAmendment).await?);
        c.check_amendment_pending()?;
        let at = self.clock.now();
        let from = c.state;
        c.state = to;
        let cid = c.id;
        let round = current_round(&mut c)?;
        let Some(retest) = round.retest.as_mut() else {
            return Err(Error::Corrupt(format!("complaint {cid}: an amendment awaits approval without a re-test")));
        };
        access::may_approve_amendment(&who.sub, retest)?;
        retest.approved_by = Some(who.sub.clone());
        retest.approved_at = Some(at);
        store::save_round(&mut tx, cid, round).await?;
        events::emit(&mut tx, cid.0, at, events::report_amended(&c, &who.sub)).await?;
        let s = step("amendment approved", from, &c, who, at, String::new());
        self.finish_change(call, tx, &c, s, |p| pb::ApproveAmendmentResponse { complaint: Some(p) }).await
    }

    pub(super) async fn resolve_complaint(
        &self,
        caller: &Caller,
        req: pb::ResolveComplaintRequest,
    ) -> Result<pb::ResolveComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ResolveComplaint", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let findings = convert::findings(&mut v, req.findings.as_ref());
        let (id, findings) = v.finish_with((id, findings))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::Resolve).await?);
        c.check_resolvable()?;
        let at = self.clock.now();
        let from = c.state;
        c.state = to;
        let note = findings.verdict.as_str().to_string();
        events::emit(&mut tx, c.id.0, at, events::resolved(&c, findings.verdict, &who.sub)).await?;
        let round = current_round(&mut c)?;
        round.findings = Some(findings);
        round.resolved_by = Some(who.sub.clone());
        round.resolved_at = Some(at);
        store::save_round(&mut tx, id, round).await?;
        let s = step("resolved", from, &c, who, at, note);
        self.finish_change(call, tx, &c, s, |p| pb::ResolveComplaintResponse { complaint: Some(p) }).await
    }

    pub(super) async fn commit_answer_time(
        &self,
        caller: &Caller,
        req: pb::CommitAnswerTimeRequest,
    ) -> Result<pb::CommitAnswerTimeResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CommitAnswerTime", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let committed = convert::timestamp("committed_answer_at", &mut v, req.committed_answer_at.as_ref());
        let (id, committed) = v.finish_with((id, committed))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::CommitAnswerTime).await?);
        let at = self.clock.now();
        c.check_commitment(committed, at)?;
        let from = c.state;
        c.state = to;
        let round = current_round(&mut c)?;
        round.committed_answer_at = Some(committed);
        store::save_round(&mut tx, id, round).await?;
        let s = step("answer time committed", from, &c, who, at, committed.to_rfc3339());
        self.finish_change(call, tx, &c, s, |p| pb::CommitAnswerTimeResponse { complaint: Some(p) }).await
    }

    pub(super) async fn answer_complaint(
        &self,
        caller: &Caller,
        req: pb::AnswerComplaintRequest,
    ) -> Result<pb::AnswerComplaintResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AnswerComplaint", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        let answer = convert::required_text(&mut v, "answer", &req.answer, LONG_TEXT);
        let (id, answer) = v.finish_with((id, answer))?;
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, Event::Answer).await?);
        let at = self.clock.now();
        let from = c.state;
        c.state = to;
        let round = current_round(&mut c)?;
        let on_time = at <= round.due_at();
        round.answer = answer;
        round.answered_by = Some(who.sub.clone());
        round.answered_at = Some(at);
        store::save_round(&mut tx, id, round).await?;
        let note = if on_time { "on time" } else { "late" };
        let s = step("answered", from, &c, who, at, note.to_string());
        self.finish_change(call, tx, &c, s, |p| pb::AnswerComplaintResponse { complaint: Some(p) }).await
    }

    pub(super) async fn record_feedback(
        &self,
        caller: &Caller,
        req: pb::RecordFeedbackRequest,
    ) -> Result<pb::RecordFeedbackResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordFeedback", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = convert::complaint_id(&mut v, "id", &req.id);
        // What the customer is unhappy with is what the next round looks at.
        let feedback = if req.satisfied {
            convert::optional_text(&mut v, "feedback", &req.feedback, NOTE)
        } else {
            convert::required_text(&mut v, "feedback", &req.feedback, NOTE)
        };
        let (id, feedback) = v.finish_with((id, feedback))?;
        let event = if req.satisfied { Event::FeedbackSatisfied } else { Event::FeedbackUnsatisfied };
        let Fresh { mut tx, mut c, to } =
            *crm_platform::fresh_or_replay!(self.begin_change(&call, id, &req.etag, event).await?);
        let at = self.clock.now();
        let from = c.state;
        let round = current_round(&mut c)?;
        round.satisfied = Some(req.satisfied);
        round.feedback = feedback.clone();
        round.feedback_by = Some(who.sub.clone());
        round.feedback_at = Some(at);
        store::save_round(&mut tx, id, round).await?;
        c.state = to;
        let action = if req.satisfied {
            c.closed_at = Some(at);
            events::emit(&mut tx, c.id.0, at, events::closed(&c, &who.sub)).await?;
            "closed"
        } else {
            // CMP-7: investigated again, in a round of its own with a fresh
            // deadline.
            c.reopen_count += 1;
            c.round += 1;
            let mut next = Round::open(c.round, at, self.answer_due(&mut tx, &c, at).await?);
            next.investigation_started_at = Some(at);
            store::insert_round(&mut tx, c.id, &next).await?;
            store::save_round(&mut tx, c.id, &next).await?;
            c.rounds.push(next);
            "reopened"
        };
        let s = step(action, from, &c, who, at, feedback);
        self.finish_change(call, tx, &c, s, |p| pb::RecordFeedbackResponse { complaint: Some(p) }).await
    }
}

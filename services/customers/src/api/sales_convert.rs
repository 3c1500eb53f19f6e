//! The edge for the sales workflow: protobuf ⇄ model, validated on receipt.

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Currency, Invalid, Money, ids::CustomerId, text};
use crm_platform::{
    Violations,
    error::{invalid_argument, parsed},
    proto_time,
};
use crm_proto::{common::v1 as common, customers::v1 as pb};
use tonic::Status;
use uuid::Uuid;

use super::convert::not_in_future;
use crate::{
    model::{
        contact_rules::InteractionChannel,
        plan::ContractStage,
        records::{AccountPlan, FollowUp, Interaction, PlanReview, PlanTarget, SurveyAnswer, Visit},
        visit::VisitState,
    },
    store::{OverdueFirstContact, OwnershipRecord, Timeliness},
};

pub(crate) struct Distribution {
    pub campaign: String,
    pub customers: Vec<CustomerId>,
    pub salespeople: Vec<(String, u32)>,
}

pub(crate) fn optional_text(field: &str, s: &str) -> Result<Option<String>, Status> {
    let t = text::single_line(s, 100).map_err(|e| invalid_argument(field, e.reason))?;
    Ok((!t.is_empty()).then_some(t))
}

fn time(v: &mut Violations, field: &str, t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    match t {
        Some(t) => v.check(field, proto_time::from_proto(t)),
        None => {
            v.add(field, "is required");
            None
        }
    }
}

fn date(v: &mut Violations, field: &str, d: Option<&common::Date>) -> Option<NaiveDate> {
    match d {
        Some(d) => {
            let parsed = u32::try_from(d.month)
                .ok()
                .zip(u32::try_from(d.day).ok())
                .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day));
            v.check(field, parsed.ok_or_else(|| Invalid::new("is not a calendar date")))
        }
        None => {
            v.add(field, "is required");
            None
        }
    }
}

fn date_pb(d: NaiveDate) -> common::Date {
    use chrono::Datelike;
    common::Date {
        year: d.year(),
        month: i32::try_from(d.month()).unwrap_or(0),
        day: i32::try_from(d.day()).unwrap_or(0),
    }
}

fn ts(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(proto_time::to_proto)
}

pub(crate) fn distribution(req: &pb::DistributeLeadsRequest) -> Result<Distribution, Status> {
    let mut v = Violations::default();
    let campaign = v.check("campaign", text::required(&req.campaign, 200));
    if req.customer_ids.is_empty() || req.customer_ids.len() > 1000 {
        v.add("customer_ids", "give 1 to 1000 customers");
    }
    let mut customers = Vec::with_capacity(req.customer_ids.len());
    for (i, id) in req.customer_ids.iter().enumerate() {
        if let Some(id) = v.check(&format!("customer_ids[{i}]"), CustomerId::parse(id)) {
            if customers.contains(&id) {
                v.add(&format!("customer_ids[{i}]"), "is listed twice");
            }
            customers.push(id);
        }
    }
    if req.salespeople.is_empty() || req.salespeople.len() > 100 {
        v.add("salespeople", "give 1 to 100 salespeople");
    }
    let mut salespeople: Vec<(String, u32)> = Vec::with_capacity(req.salespeople.len());
    let mut seen: Vec<&str> = Vec::with_capacity(req.salespeople.len());
    for (i, s) in req.salespeople.iter().enumerate() {
        if seen.contains(&s.owner_id.trim()) {
            v.add(&format!("salespeople[{i}].owner_id"), "is listed twice");
        }
        seen.push(s.owner_id.trim());
        let owner = v.check(&format!("salespeople[{i}].owner_id"), crate::model::input::owner_id(&s.owner_id));
        let weight = v.check(
            &format!("salespeople[{i}].capacity_weight"),
            u32::try_from(s.capacity_weight)
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .ok_or_else(|| Invalid::new("must be 1 to 1000")),
        );
        if let (Some(o), Some(w)) = (owner, weight) {
            salespeople.push((o, w));
        }
    }
    v.finish()?;
    Ok(Distribution { campaign: parsed(campaign)?, customers, salespeople })
}

pub(crate) fn ownership(r: &OwnershipRecord) -> pb::OwnershipRecord {
    pb::OwnershipRecord {
        owner_id: r.owner_id.clone(),
        branch: r.branch.clone(),
        assigned_by: r.assigned_by.clone(),
        reason: r.reason.clone(),
        assign_time: Some(proto_time::to_proto(r.assigned_at)),
        first_contact_override: r.first_contact_override,
    }
}

pub(crate) fn overdue(r: &OverdueFirstContact) -> pb::OverdueFirstContact {
    pb::OverdueFirstContact {
        customer_id: r.id.to_string(),
        display_name: r.display_name.clone(),
        owner_id: r.owner_id.clone(),
        assign_time: ts(r.assigned_at),
        first_contact_due_time: ts(r.first_contact_due),
    }
}

pub(crate) fn period(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Status> {
    let mut v = Violations::default();
    let from = time(&mut v, "start_time", start);
    let to = time(&mut v, "end_time", end);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        v.add("end_time", "must be after start_time");
    }
    v.finish()?;
    Ok((parsed(from)?, parsed(to)?))
}

pub(crate) fn date_period(
    start: Option<&common::Date>,
    end: Option<&common::Date>,
) -> Result<(NaiveDate, NaiveDate), Status> {
    let mut v = Violations::default();
    let from = date(&mut v, "start_date", start);
    let to = date(&mut v, "end_date", end);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            v.add("end_date", "must not be before start_date");
        } else if (t - f).num_days() > 3660 {
            v.add("end_date", "a period is at most ten years");
        }
    }
    v.finish()?;
    Ok((parsed(from)?, parsed(to)?))
}

pub(crate) fn timeliness(t: &Timeliness) -> pb::EntryTimeliness {
    pb::EntryTimeliness {
        salesperson_id: t.salesperson.clone(),
        entries: t.entries,
        late: t.late,
        on_time_rate: if t.entries == 0 { 0.0 } else { (t.entries - t.late) as f64 / t.entries as f64 },
    }
}

fn channel(v: i32) -> Result<InteractionChannel, Invalid> {
    use pb::InteractionChannel as P;
    Ok(match P::try_from(v).map_err(|_| Invalid::new(format!("unknown value {v}")))? {
        P::Unspecified => return Err(Invalid::new("is required (UNSPECIFIED is not a value)")),
        P::Phone => InteractionChannel::Phone,
        P::Email => InteractionChannel::Email,
        P::Fax => InteractionChannel::Fax,
        P::Letter => InteractionChannel::Letter,
        P::ThankYouCard => InteractionChannel::ThankYouCard,
        P::SeminarInvitation => InteractionChannel::SeminarInvitation,
        P::Visit => InteractionChannel::Visit,
    })
}

fn channel_pb(c: InteractionChannel) -> i32 {
    use pb::InteractionChannel as P;
    (match c {
        InteractionChannel::Phone => P::Phone,
        InteractionChannel::Email => P::Email,
        InteractionChannel::Fax => P::Fax,
        InteractionChannel::Letter => P::Letter,
        InteractionChannel::ThankYouCard => P::ThankYouCard,
        InteractionChannel::SeminarInvitation => P::SeminarInvitation,
        InteractionChannel::Visit => P::Visit,
    }) as i32
}

pub(crate) fn interaction(req: &pb::LogInteractionRequest, by: &str) -> Result<(Interaction, Option<Uuid>), Status> {
    let mut v = Violations::default();
    let i = req.interaction.clone().unwrap_or_default();
    if req.interaction.is_none() {
        v.add("interaction", "is required");
    }
    let customer = v.check("interaction.customer_id", CustomerId::parse(&i.customer_id));
    let ch = v.check("interaction.channel", channel(i.channel));
    let occurred = match &i.occur_time {
        Some(t) => v.check("interaction.occur_time", proto_time::from_proto(t).and_then(not_in_future)),
        None => Some(Utc::now()),
    };
    let contact_name = v.check("interaction.contact_name", text::single_line(&i.contact_name, 100));
    let summary = v.check("interaction.summary", text::required(&i.summary, 4000));
    let outcome = v.check("interaction.outcome", text::optional(&i.outcome, 4000));
    let follow_up = if req.follow_up_id.trim().is_empty() {
        None
    } else {
        v.check("follow_up_id", Uuid::try_parse(req.follow_up_id.trim()).map_err(|_| Invalid::new("must be a UUID")))
    };
    v.finish()?;
    Ok((
        Interaction {
            id: Uuid::now_v7(),
            customer_id: parsed(customer)?,
            channel: parsed(ch)?,
            occurred_at: parsed(occurred)?,
            contact_name: parsed(contact_name)?,
            summary: parsed(summary)?,
            outcome: parsed(outcome)?,
            recorded_by: by.to_string(),
        },
        follow_up,
    ))
}

pub(crate) fn interaction_pb(i: &Interaction) -> pb::Interaction {
    pb::Interaction {
        id: i.id.to_string(),
        customer_id: i.customer_id.to_string(),
        channel: channel_pb(i.channel),
        occur_time: Some(proto_time::to_proto(i.occurred_at)),
        contact_name: i.contact_name.clone(),
        summary: i.summary.clone(),
        outcome: i.outcome.clone(),
        recorded_by: i.recorded_by.clone(),
    }
}

pub(crate) fn new_follow_up(req: &pb::ScheduleFollowUpRequest) -> Result<FollowUp, Status> {
    let mut v = Violations::default();
    let f = req.follow_up.clone().unwrap_or_default();
    if req.follow_up.is_none() {
        v.add("follow_up", "is required");
    }
    let customer = v.check("follow_up.customer_id", CustomerId::parse(&f.customer_id));
    let due = time(&mut v, "follow_up.due_time", f.due_time.as_ref());
    if !(0..=366).contains(&f.repeat_every_days) {
        v.add("follow_up.repeat_every_days", "must be 0 (once) to 366");
    }
    let note = v.check("follow_up.note", text::optional(&f.note, 2000));
    v.finish()?;
    Ok(FollowUp {
        id: Uuid::now_v7(),
        customer_id: parsed(customer)?,
        owner_id: String::new(),
        due_at: parsed(due)?,
        repeat_every_days: f.repeat_every_days,
        note: parsed(note)?,
        done_at: None,
    })
}

pub(crate) fn follow_up(f: &FollowUp) -> pb::FollowUp {
    pb::FollowUp {
        id: f.id.to_string(),
        customer_id: f.customer_id.to_string(),
        owner_id: f.owner_id.clone(),
        due_time: Some(proto_time::to_proto(f.due_at)),
        repeat_every_days: f.repeat_every_days,
        note: f.note.clone(),
        done_time: ts(f.done_at),
    }
}

pub(crate) fn new_visit(req: &pb::PlanVisitRequest, by: &str) -> Result<Visit, Status> {
    let mut v = Violations::default();
    let x = req.visit.clone().unwrap_or_default();
    if req.visit.is_none() {
        v.add("visit", "is required");
    }
    let customer = v.check("visit.customer_id", CustomerId::parse(&x.customer_id));
    let purpose = v.check("visit.purpose", text::required(&x.purpose, 2000));
    let goals = v.check("visit.goals", text::optional(&x.goals, 4000));
    if x.attendees.len() > 50 {
        v.add("visit.attendees", "at most 50 people");
    }
    let attendees: Vec<String> = x
        .attendees
        .iter()
        .enumerate()
        .filter_map(|(i, a)| v.check(&format!("visit.attendees[{i}]"), text::required(a, 100)))
        .collect();
    let planned_for = time(&mut v, "visit.plan_time", x.plan_time.as_ref());
    v.finish()?;
    Ok(Visit {
        id: Uuid::now_v7(),
        customer_id: parsed(customer)?,
        state: VisitState::Planned,
        purpose: parsed(purpose)?,
        goals: parsed(goals)?,
        attendees,
        planned_for: parsed(planned_for)?,
        planned_by: by.to_string(),
        approved_by: None,
        approved_at: None,
        visited_at: None,
        minutes: String::new(),
        minutes_due: None,
        minutes_submitted_at: None,
        minutes_late: false,
        reviewed_by: None,
        reviewed_at: None,
        sent_at: None,
        receipt_confirmed_by: None,
        receipt_at: None,
        version: 1,
    })
}

fn visit_state_pb(s: VisitState) -> i32 {
    use pb::VisitState as P;
    (match s {
        VisitState::Planned => P::Planned,
        VisitState::Approved => P::Approved,
        VisitState::Done => P::Done,
        VisitState::MinutesSubmitted => P::MinutesSubmitted,
        VisitState::MinutesReviewed => P::MinutesReviewed,
        VisitState::MinutesSent => P::MinutesSent,
        VisitState::ReceiptConfirmed => P::ReceiptConfirmed,
    }) as i32
}

pub(crate) fn visit(v: &Visit) -> pb::Visit {
    pb::Visit {
        id: v.id.to_string(),
        customer_id: v.customer_id.to_string(),
        state: visit_state_pb(v.state),
        purpose: v.purpose.clone(),
        goals: v.goals.clone(),
        attendees: v.attendees.clone(),
        plan_time: Some(proto_time::to_proto(v.planned_for)),
        planned_by: v.planned_by.clone(),
        approved_by: v.approved_by.clone().unwrap_or_default(),
        approve_time: ts(v.approved_at),
        visit_time: ts(v.visited_at),
        minutes: v.minutes.clone(),
        minutes_due_time: ts(v.minutes_due),
        minutes_submit_time: ts(v.minutes_submitted_at),
        minutes_late: v.minutes_late,
        reviewed_by: v.reviewed_by.clone().unwrap_or_default(),
        review_time: ts(v.reviewed_at),
        send_time: ts(v.sent_at),
        receipt_confirmed_by: v.receipt_confirmed_by.clone().unwrap_or_default(),
        receipt_time: ts(v.receipt_at),
        etag: crate::model::etag(v.version),
    }
}

pub(crate) fn survey(req: &pb::RecordSurveyRequest, by: &str, today: NaiveDate) -> Result<SurveyAnswer, Status> {
    let mut v = Violations::default();
    let a = req.answer.clone().unwrap_or_default();
    if req.answer.is_none() {
        v.add("answer", "is required");
    }
    let customer = v.check("answer.customer_id", CustomerId::parse(&a.customer_id));
    let score = v.check(
        "answer.score",
        i16::try_from(a.score).ok().filter(|s| (1..=5).contains(s)).ok_or_else(|| Invalid::new("must be 1 to 5")),
    );
    let ch = v.check("answer.channel", text::single_line(&a.channel, 50));
    let answered_on = date(&mut v, "answer.answer_date", a.answer_date.as_ref());
    if answered_on.is_some_and(|d| d > today) {
        v.add("answer.answer_date", "must not be in the future");
    }
    let comments = v.check("answer.comments", text::optional(&a.comments, 4000));
    v.finish()?;
    Ok(SurveyAnswer {
        id: Uuid::now_v7(),
        customer_id: parsed(customer)?,
        score: parsed(score)?,
        channel: parsed(ch)?,
        answered_on: parsed(answered_on)?,
        comments: parsed(comments)?,
        recorded_by: by.to_string(),
    })
}

pub(crate) fn survey_pb(s: &SurveyAnswer) -> pb::SurveyAnswer {
    pb::SurveyAnswer {
        id: s.id.to_string(),
        customer_id: s.customer_id.to_string(),
        score: i32::from(s.score),
        channel: s.channel.clone(),
        answer_date: Some(date_pb(s.answered_on)),
        comments: s.comments.clone(),
        recorded_by: s.recorded_by.clone(),
    }
}

pub(crate) fn contract_stage(v: i32) -> Result<ContractStage, Status> {
    use pb::ContractStage as P;
    Ok(match P::try_from(v).map_err(|_| invalid_argument("stage", format!("unknown value {v}")))? {
        P::Unspecified => return Err(invalid_argument("stage", "is required (UNSPECIFIED is not a value)")),
        P::DataCollection => ContractStage::DataCollection,
        P::BusinessReview => ContractStage::BusinessReview,
        P::Discussion => ContractStage::Discussion,
        P::DraftContract => ContractStage::DraftContract,
        P::Negotiation => ContractStage::Negotiation,
        P::Signed => ContractStage::Signed,
    })
}

fn contract_stage_pb(s: ContractStage) -> i32 {
    use pb::ContractStage as P;
    (match s {
        ContractStage::DataCollection => P::DataCollection,
        ContractStage::BusinessReview => P::BusinessReview,
        ContractStage::Discussion => P::Discussion,
        ContractStage::DraftContract => P::DraftContract,
        ContractStage::Negotiation => P::Negotiation,
        ContractStage::Signed => P::Signed,
    }) as i32
}

pub(crate) fn new_plan(req: &pb::CreateAccountPlanRequest, by: &str) -> Result<AccountPlan, Status> {
    let mut v = Violations::default();
    let p = req.plan.clone().unwrap_or_default();
    if req.plan.is_none() {
        v.add("plan", "is required");
    }
    let customer = v.check("plan.customer_id", CustomerId::parse(&p.customer_id));
    if !(2000..=2100).contains(&p.year) {
        v.add("plan.year", "must be a year between 2000 and 2100");
    }
    let strategy = v.check("plan.strategy", text::required(&p.strategy, 4000));
    if p.activities.len() > 50 {
        v.add("plan.activities", "at most 50 activities");
    }
    let activities: Vec<String> = p
        .activities
        .iter()
        .enumerate()
        .filter_map(|(i, a)| v.check(&format!("plan.activities[{i}]"), text::required(a, 500)))
        .collect();
    if p.targets.len() > 50 {
        v.add("plan.targets", "at most 50 targets");
    }
    let mut targets = Vec::with_capacity(p.targets.len());
    for (i, t) in p.targets.iter().enumerate() {
        let description = v.check(&format!("plan.targets[{i}].description"), text::required(&t.description, 500));
        let amount = match &t.amount {
            Some(m) => v.check(
                &format!("plan.targets[{i}].amount"),
                Currency::parse(&m.currency_code)
                    .map(|c| Some(Money::new(m.amount_minor, c)))
                    .map_err(|e| Invalid::new(e.to_string())),
            ),
            None => Some(None),
        };
        if let (Some(description), Some(amount)) = (description, amount) {
            targets.push(PlanTarget { description, amount });
        }
    }
    v.finish()?;
    Ok(AccountPlan {
        id: Uuid::now_v7(),
        customer_id: parsed(customer)?,
        year: p.year,
        strategy: parsed(strategy)?,
        activities,
        targets,
        contract_stage: ContractStage::DataCollection,
        reviews: Vec::new(),
        created_by: by.to_string(),
        version: 1,
    })
}

fn review_pb(r: &PlanReview) -> pb::QuarterlyReview {
    pb::QuarterlyReview {
        quarter: i32::from(r.quarter),
        summary: r.summary.clone(),
        reviewed_by: r.reviewed_by.clone(),
        review_time: Some(proto_time::to_proto(r.reviewed_at)),
    }
}

pub(crate) fn plan(p: &AccountPlan) -> pb::AccountPlan {
    pb::AccountPlan {
        id: p.id.to_string(),
        customer_id: p.customer_id.to_string(),
        year: p.year,
        strategy: p.strategy.clone(),
        activities: p.activities.clone(),
        targets: p
            .targets
            .iter()
            .map(|t| pb::PlanTarget {
                description: t.description.clone(),
                amount: t.amount.map(|m| common::Money {
                    amount_minor: m.amount_minor(),
                    currency_code: m.currency().code().to_string(),
                }),
            })
            .collect(),
        contract_stage: contract_stage_pb(p.contract_stage),
        reviews: p.reviews.iter().map(review_pb).collect(),
        created_by: p.created_by.clone(),
        etag: crate::model::etag(p.version),
    }
}

pub(crate) fn review(req: &pb::ReviewAccountPlanRequest) -> Result<(i16, String), Status> {
    let mut v = Violations::default();
    let quarter = v.check(
        "quarter",
        i16::try_from(req.quarter).ok().filter(|q| (1..=4).contains(q)).ok_or_else(|| Invalid::new("must be 1 to 4")),
    );
    let summary = v.check("summary", text::required(&req.summary, 4000));
    v.finish()?;
    Ok((parsed(quarter)?, parsed(summary)?))
}

pub(crate) fn merge(req: &pb::MergeCustomersRequest) -> Result<(CustomerId, CustomerId, String), Status> {
    let mut v = Violations::default();
    let survivor = v.check("survivor_id", CustomerId::parse(&req.survivor_id));
    let merged = v.check("merged_id", CustomerId::parse(&req.merged_id));
    if survivor.is_some() && survivor == merged {
        v.add("merged_id", "must differ from survivor_id");
    }
    let reason = v.check("reason", text::required(&req.reason, 1000));
    v.finish()?;
    Ok((parsed(survivor)?, parsed(merged)?, parsed(reason)?))
}

pub(crate) fn audit_event(e: &crate::store::AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id,
        occur_time: Some(proto_time::to_proto(e.occurred_at)),
        actor: e.actor.clone(),
        action: e.action.clone(),
        operation: e.operation.clone(),
        table_name: e.table_name.clone(),
        row_id: e.row_id.clone().unwrap_or_default(),
        changed_columns: e.changed.clone().unwrap_or_default(),
        request_id: e.request_id.clone().unwrap_or_default(),
    }
}

/// Audit events page by their (bigint) id; the token is the domain page
/// token with the id in the low bytes of its key, bound to the customer.
pub(crate) fn encode_audit_token(last_id: i64, customer: &CustomerId) -> String {
    let key = Uuid::from_u64_pair(0, last_id.unsigned_abs());
    crm_domain::PageToken { after: key, filter: audit_fingerprint(customer) }.encode()
}

pub(crate) fn decode_audit_token(token: &str, customer: &CustomerId) -> Result<Option<i64>, Status> {
    let t = crm_domain::PageToken::decode(token, audit_fingerprint(customer))
        .map_err(|e| invalid_argument("page_token", e.to_string()))?;
    t.map(|t| i64::try_from(t.after.as_u64_pair().1).map_err(|_| invalid_argument("page_token", "out of range")))
        .transpose()
}

fn audit_fingerprint(customer: &CustomerId) -> u64 {
    crm_domain::page::fingerprint(&[b"audit", customer.to_string().as_bytes()])
}

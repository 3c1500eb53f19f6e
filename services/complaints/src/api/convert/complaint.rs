//! The complaint itself: registration, re-tests, findings and the list
//! filter in; the complaint with its rounds, escalations and history out.

use super::*;

/// Validates a registration; `today` is the local date, for the report date.
pub(crate) fn new_complaint(req: &pb::RegisterComplaintRequest, today: NaiveDate) -> Result<NewComplaint, Status> {
    let mut v = Violations::default();
    let customer_id = v.check("customer_id", CustomerId::parse(&req.customer_id));
    let channel = v.check("channel", required(channel_in(req.channel)));
    let category = v.check("category", required(category_in(req.category)));
    let department = v.check("department", text::single_line(&req.department, 100).and_then(non_empty));
    let urgency = v.check("urgency", required(urgency_in(req.urgency)));
    let description = v.check("description", text::required(&req.description, LONG_TEXT));
    let r = req.references.clone().unwrap_or_default();
    let references = References {
        work_order_ids: ids(&mut v, "references.work_order_ids", &r.work_order_ids),
        invoice_ids: ids(&mut v, "references.invoice_ids", &r.invoice_ids),
        report_ids: ids(&mut v, "references.report_ids", &r.report_ids),
    };
    let received = req.report_received_on.as_ref().and_then(|d| v.check("report_received_on", date_in(d)));
    if let Some(d) = received
        && d > today
    {
        v.add("report_received_on", "must not be in the future");
    }
    if category == Some(Category::TestResult) {
        if req.report_received_on.is_none() {
            v.add("report_received_on", "is required for a complaint about a test result (CMP-2)");
        }
        if channel.is_some_and(|c| !crate::model::intake::is_written(c)) {
            v.add("channel", "a complaint about a test result is lodged in writing: email, letter or web (CMP-2)");
        }
    }
    let (customer_id, channel, category, department, urgency, description) =
        v.finish_with((customer_id, channel, category, department, urgency, description))?;
    Ok(NewComplaint {
        customer_id,
        channel,
        category,
        department,
        urgency,
        description,
        references,
        report_received_on: received,
    })
}

/// CMP-5 re-test as recorded; `by`/`at` are the recorder.
pub(crate) fn retest(v: &mut Violations, r: Option<&pb::Retest>, by: &str, at: DateTime<Utc>) -> Option<Retest> {
    let Some(r) = r else {
        v.add("retest", "is required");
        return None;
    };
    let review = required_text(v, "retest.records_review", &r.records_review, LONG_TEXT);
    let testers = people(v, "retest.testers", &r.testers);
    if r.retested && testers.len() < 2 {
        v.add("retest.testers", "a re-test is performed by two different people (CMP-5)");
    }
    if !r.retested && !testers.is_empty() {
        v.add("retest.testers", "name testers only when the sample was re-tested");
    }
    let outcome = v.check("retest.outcome", required(outcome_in(r.outcome)));
    let report = |v: &mut Violations, field: &str, s: &str| {
        v.check(field, text::single_line(s, 100)).and_then(|s| (!s.is_empty()).then_some(s))
    };
    let revoked = report(v, "retest.revoked_report_id", &r.revoked_report_id);
    let corrected = report(v, "retest.corrected_report_id", &r.corrected_report_id);
    match outcome {
        Some(RetestOutcome::Amended) => {
            if revoked.is_none() {
                v.add("retest.revoked_report_id", "is required when the report is amended");
            }
            if corrected.is_none() {
                v.add("retest.corrected_report_id", "is required when the report is amended");
            }
            if revoked.is_some() && revoked == corrected {
                v.add("retest.corrected_report_id", "must differ from the revoked report");
            }
        }
        Some(RetestOutcome::Upheld) if revoked.is_some() || corrected.is_some() => {
            v.add("retest.revoked_report_id", "an upheld report is neither revoked nor corrected");
        }
        Some(RetestOutcome::Upheld) | None => {}
    }
    Some(Retest {
        records_review: review?,
        retested: r.retested,
        testers,
        outcome: outcome?,
        revoked_report_id: revoked,
        corrected_report_id: corrected,
        recorded_by: by.to_string(),
        recorded_at: at,
        approved_by: None,
        approved_at: None,
    })
}

pub(crate) fn findings(v: &mut Violations, f: Option<&pb::Findings>) -> Option<Findings> {
    let Some(f) = f else {
        v.add("findings", "is required");
        return None;
    };
    let verdict = v.check("findings.verdict", required(verdict_in(f.verdict)));
    let facts = required_text(v, "findings.facts", &f.facts, LONG_TEXT);
    // A justified complaint says why it happened and what was done (CMP-4).
    let (root, corrective) = if verdict == Some(Verdict::Justified) {
        (
            required_text(v, "findings.root_cause", &f.root_cause, LONG_TEXT),
            required_text(v, "findings.corrective_actions", &f.corrective_actions, LONG_TEXT),
        )
    } else {
        (
            optional_text(v, "findings.root_cause", &f.root_cause, LONG_TEXT),
            optional_text(v, "findings.corrective_actions", &f.corrective_actions, LONG_TEXT),
        )
    };
    let preventive = optional_text(v, "findings.preventive_actions", &f.preventive_actions, LONG_TEXT);
    Some(Findings {
        verdict: verdict?,
        facts: facts?,
        root_cause: root?,
        corrective_actions: corrective?,
        preventive_actions: preventive?,
    })
}

pub(crate) fn list_filter(req: &pb::ListComplaintsRequest) -> Result<(ListFilter, u64), Status> {
    let mut v = Violations::default();
    let customer_id = if req.customer_id.trim().is_empty() {
        None
    } else {
        v.check("customer_id", CustomerId::parse(&req.customer_id)).map(|c| c.0)
    };
    let department = v.check("department", text::single_line(&req.department, 100)).filter(|d| !d.is_empty());
    let number = if req.number.trim().is_empty() { None } else { v.check("number", complaint_number(&req.number)) };
    let text =
        v.check("text", text::single_line(&crm_domain::name::width_fold(&req.text), 100)).filter(|t| !t.is_empty());
    let f = ListFilter {
        state: v.check("state", state_in(req.state)).flatten(),
        customer_id,
        category: v.check("category", category_in(req.category)).flatten(),
        department,
        urgency: v.check("urgency", urgency_in(req.urgency)).flatten(),
        number,
        text,
    };
    v.finish()?;
    let fp = page::fingerprint(&[
        f.state.map(|s| s.as_str()).unwrap_or_default().as_bytes(),
        f.customer_id.map(|c| c.to_string()).unwrap_or_default().as_bytes(),
        f.category.map(|s| s.as_str()).unwrap_or_default().as_bytes(),
        f.department.clone().unwrap_or_default().as_bytes(),
        f.urgency.map(|s| s.as_str()).unwrap_or_default().as_bytes(),
        f.number.clone().unwrap_or_default().as_bytes(),
        f.text.clone().unwrap_or_default().as_bytes(),
    ]);
    Ok((f, fp))
}

/// The complaint as the API shows it; `cal` gives each deadline's calendar
/// date (a deadline at local midnight falls due the day before).
pub(crate) fn complaint(c: &Complaint, cal: &WorkingCalendar) -> pb::Complaint {
    let round = c.current_round();
    pb::Complaint {
        id: c.id.to_string(),
        number: c.number.clone(),
        customer_id: c.customer_id.to_string(),
        customer_name: c.customer_name.clone(),
        service_level: service_level_out(c.service_level),
        customer_tier: tier_out(c.customer_tier),
        channel: channel_out(c.channel),
        category: category_out(c.category),
        department: c.department.clone(),
        urgency: urgency_out(c.urgency),
        description: c.description.clone(),
        references: Some(pb::References {
            work_order_ids: c.references.work_order_ids.clone(),
            invoice_ids: c.references.invoice_ids.clone(),
            report_ids: c.references.report_ids.clone(),
        }),
        report_received_on: c.report_received_on.map(date_out),
        state: state_out(c.state),
        escalation_level: level_out(c.escalation_level),
        rejection_reason: c.rejection_reason.map(rejection_out).unwrap_or_default(),
        rejection_note: c.rejection_note.clone(),
        round: c.round,
        reopen_count: c.reopen_count,
        answer_due_at: round.and_then(|r| ts(r.answer_due_at)),
        answer_due_date: round.map(|r| date_out(cal.due_date(r.answer_due_at))),
        committed_answer_at: round.and_then(|r| opt_ts(r.committed_answer_at)),
        rounds: c.rounds.iter().map(|r| round_out(r, cal)).collect(),
        escalations: c.escalations.iter().map(escalation).collect(),
        compensation: c.compensation.as_ref().map(|m| pb::Compensation {
            amount: Some(common::Money {
                amount_minor: m.amount.amount_minor(),
                currency_code: m.amount.currency().code().to_string(),
            }),
            reason: m.reason.clone(),
            proposed_by: m.proposed_by.clone(),
            proposed_at: ts(m.proposed_at),
            approved_by: m.approved_by.clone().unwrap_or_default(),
            approved_at: opt_ts(m.approved_at),
        }),
        registered_by: c.registered_by.clone(),
        registered_at: ts(c.registered_at),
        accepted_by: c.accepted_by.clone().unwrap_or_default(),
        accepted_at: opt_ts(c.accepted_at),
        rejected_by: c.rejected_by.clone().unwrap_or_default(),
        rejected_at: opt_ts(c.rejected_at),
        closed_at: opt_ts(c.closed_at),
        updated_at: ts(c.updated_at),
        etag: c.etag(),
        history: c.history.iter().map(step).collect(),
    }
}

fn round_out(r: &Round, cal: &WorkingCalendar) -> pb::Round {
    pb::Round {
        number: r.number,
        opened_at: ts(r.opened_at),
        answer_due_at: ts(r.answer_due_at),
        answer_due_date: Some(date_out(cal.due_date(r.answer_due_at))),
        committed_answer_at: opt_ts(r.committed_answer_at),
        investigated_by: r.investigated_by.clone().unwrap_or_default(),
        investigation_started_at: opt_ts(r.investigation_started_at),
        findings: r.findings.as_ref().map(|f| pb::Findings {
            verdict: verdict_out(f.verdict),
            facts: f.facts.clone(),
            root_cause: f.root_cause.clone(),
            corrective_actions: f.corrective_actions.clone(),
            preventive_actions: f.preventive_actions.clone(),
        }),
        resolved_by: r.resolved_by.clone().unwrap_or_default(),
        resolved_at: opt_ts(r.resolved_at),
        retest: r.retest.as_ref().map(|t| pb::Retest {
            records_review: t.records_review.clone(),
            retested: t.retested,
            testers: t.testers.clone(),
            outcome: outcome_out(t.outcome),
            revoked_report_id: t.revoked_report_id.clone().unwrap_or_default(),
            corrected_report_id: t.corrected_report_id.clone().unwrap_or_default(),
            approved_by: t.approved_by.clone().unwrap_or_default(),
            approved_at: opt_ts(t.approved_at),
            recorded_by: t.recorded_by.clone(),
            recorded_at: ts(t.recorded_at),
        }),
        answer: r.answer.clone(),
        answered_by: r.answered_by.clone().unwrap_or_default(),
        answered_at: opt_ts(r.answered_at),
        satisfied: r.satisfied,
        feedback: r.feedback.clone(),
        feedback_by: r.feedback_by.clone().unwrap_or_default(),
        feedback_at: opt_ts(r.feedback_at),
    }
}

fn escalation(e: &Escalation) -> pb::Escalation {
    pb::Escalation {
        from_level: level_out(e.from_level),
        to_level: level_out(e.to_level),
        reason: e.reason.clone(),
        team_members: e.team_members.clone(),
        escalated_by: e.escalated_by.clone(),
        escalated_at: ts(e.escalated_at),
        round: e.round,
    }
}

fn step(s: &Step) -> pb::Step {
    pb::Step {
        action: s.action.clone(),
        from_state: s.from_state.map(state_out).unwrap_or_default(),
        to_state: state_out(s.to_state),
        actor: s.actor.clone(),
        at: ts(s.at),
        note: s.note.clone(),
    }
}

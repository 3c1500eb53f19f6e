//! Deadline policies and the statistics report.

use super::*;

pub(crate) fn period_in(v: i32) -> Result<Period, Invalid> {
    match pb::StatsPeriod::try_from(v) {
        Ok(pb::StatsPeriod::Unspecified) | Ok(pb::StatsPeriod::Month) => Ok(Period::Month),
        Ok(pb::StatsPeriod::Week) => Ok(Period::Week),
        Ok(pb::StatsPeriod::Day) => Ok(Period::Day),
        Err(_) => Err(Invalid::new(format!("unknown value {v}"))),
    }
}

pub(crate) fn policy(p: &DeadlinePolicy) -> pb::DeadlinePolicy {
    pb::DeadlinePolicy {
        service_level: service_level_out(p.service_level),
        urgency: urgency_out(p.urgency),
        unit: unit_out(p.rule.unit),
        amount: i32::try_from(p.rule.amount).unwrap_or(i32::MAX),
        updated_by: p.updated_by.clone(),
        updated_at: ts(p.updated_at),
    }
}

fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

pub(crate) fn stats(rows: &[StatsRow]) -> pb::GetComplaintStatsResponse {
    let (on_time, answered) = rows.iter().fold((0, 0), |(o, a), r| (o + r.on_time, a + r.answered));
    pb::GetComplaintStatsResponse {
        rows: rows
            .iter()
            .map(|r| pb::StatsRow {
                period_start: Some(date_out(r.period_start)),
                category: category_out(r.category),
                department: r.department.clone(),
                customer_tier: tier_out(r.customer_tier),
                complaints: r.complaints,
                answered: r.answered,
                median_hours_to_answer: r.median_hours.unwrap_or_default(),
                p90_hours_to_answer: r.p90_hours.unwrap_or_default(),
                on_time_share: share(r.on_time, r.answered),
                satisfied_share: share(r.satisfied, r.feedback),
                feedback_count: r.feedback,
            })
            .collect(),
        on_time_share: share(on_time, answered),
    }
}

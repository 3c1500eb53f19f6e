//! Reads across complaints: lists, due lists, the deadline policy, reports.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::{ComplaintRow, complaint_columns, parse};
use crate::{
    error::Result,
    model::{
        Category, Complaint, CustomerTier, DeadlineUnit, ServiceLevel, State, Urgency,
        deadline::{DeadlinePolicy, DeadlineRule},
    },
};

/// ListComplaints filters; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub state: Option<State>,
    pub customer_id: Option<Uuid>,
    pub category: Option<Category>,
    pub department: Option<String>,
    pub urgency: Option<Urgency>,
    /// The complaint's number, exactly (normalised by the caller).
    pub number: Option<String>,
    /// A substring of the number, the customer's name or the description.
    pub text: Option<String>,
}

/// A page of complaints in id (creation) order, one more than `limit` when
/// there is a next page.
#[tracing::instrument(skip(conn))]
pub async fn list(conn: &mut PgConnection, f: &ListFilter, after: Option<Uuid>, limit: u32) -> Result<Vec<Complaint>> {
    let mut q = QueryBuilder::new(concat!("SELECT ", complaint_columns!(), " FROM complaints.complaints c WHERE TRUE"));
    if let Some(v) = f.state {
        q.push(" AND c.state = ").push_bind(v.as_str());
    }
    if let Some(v) = f.customer_id {
        q.push(" AND c.customer_id = ").push_bind(v);
    }
    if let Some(v) = f.category {
        q.push(" AND c.category = ").push_bind(v.as_str());
    }
    if let Some(v) = &f.department {
        q.push(" AND c.department = ").push_bind(v.clone());
    }
    if let Some(v) = f.urgency {
        q.push(" AND c.urgency = ").push_bind(v.as_str());
    }
    if let Some(v) = &f.number {
        q.push(" AND c.number = ").push_bind(v.clone());
    }
    if let Some(v) = &f.text {
        // LIKE's wildcards in the text are matched literally.
        let pattern = format!("%{}%", v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        q.push(" AND (c.number ILIKE ").push_bind(pattern.clone());
        q.push(" OR c.customer_name ILIKE ").push_bind(pattern.clone());
        q.push(" OR c.description ILIKE ").push_bind(pattern).push(")");
    }
    if let Some(a) = after {
        q.push(" AND c.id > ").push_bind(a);
    }
    q.push(" ORDER BY c.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<ComplaintRow> = q.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter().map(ComplaintRow::into_model).collect()
}

/// The deadline that counts for a round, in SQL: a commitment only brings it
/// forward (`Round::due_at`).
const DUE: &str = "LEAST(r.answer_due_at, COALESCE(r.committed_answer_at, r.answer_due_at))";

/// Unanswered complaints due by `until` (overdue included), earliest first,
/// one more than `limit` when there is a next page. The page key is the
/// last complaint's (due, id).
#[tracing::instrument(skip(conn))]
pub async fn list_due(
    conn: &mut PgConnection,
    until: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<(Complaint, DateTime<Utc>)>> {
    let mut q = QueryBuilder::new(concat!("SELECT ", complaint_columns!()));
    q.push(format!(", {DUE} AS due_at FROM complaints.complaints c "));
    q.push("JOIN complaints.rounds r ON r.complaint_id = c.id AND r.number = c.round ");
    q.push("WHERE c.state IN ('accepted', 'investigating', 'resolved') AND r.answered_at IS NULL AND ");
    q.push(DUE).push(" <= ").push_bind(until);
    if let Some(a) = after {
        q.push(format!(" AND ({DUE}, c.id) > (SELECT {DUE}, r.complaint_id FROM complaints.complaints c "));
        q.push("JOIN complaints.rounds r ON r.complaint_id = c.id AND r.number = c.round WHERE c.id = ");
        q.push_bind(a).push(")");
    }
    q.push(" ORDER BY due_at, c.id LIMIT ").push_bind(i64::from(limit) + 1);
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        c: ComplaintRow,
        due_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = q.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter().map(|r| Ok((r.c.into_model()?, r.due_at))).collect()
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    service_level: String,
    urgency: String,
    unit: String,
    amount: i32,
    updated_by: String,
    updated_at: DateTime<Utc>,
}

impl PolicyRow {
    fn into_model(self) -> Result<DeadlinePolicy> {
        let unit = parse("deadline unit", &self.unit, DeadlineUnit::from_db)?;
        Ok(DeadlinePolicy {
            service_level: parse("service level", &self.service_level, ServiceLevel::from_db)?,
            urgency: parse("urgency", &self.urgency, Urgency::from_db)?,
            rule: DeadlineRule { unit, amount: u32::try_from(self.amount).unwrap_or(1) },
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        })
    }
}

const POLICY_COLUMNS: &str = "service_level, urgency, unit, amount, updated_by, updated_at";

pub async fn list_policies(conn: &mut PgConnection) -> Result<Vec<DeadlinePolicy>> {
    let rows: Vec<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM complaints.deadline_policies ORDER BY \
         array_position(ARRAY['general', 'key', 'special'], service_level), urgency"
    )))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(PolicyRow::into_model).collect()
}

pub async fn policy_for(
    conn: &mut PgConnection,
    level: ServiceLevel,
    urgency: Urgency,
) -> Result<Option<DeadlineRule>> {
    let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM complaints.deadline_policies WHERE service_level = $1 AND urgency = $2"
    )))
    .bind(level.as_str())
    .bind(urgency.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(PolicyRow::into_model).transpose()?.map(|p| p.rule))
}

pub async fn set_policy(conn: &mut PgConnection, p: &DeadlinePolicy) -> Result<DeadlinePolicy> {
    let row: PolicyRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO complaints.deadline_policies (service_level, urgency, unit, amount, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (service_level, urgency) DO UPDATE SET unit = EXCLUDED.unit, \
         amount = EXCLUDED.amount, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at \
         RETURNING {POLICY_COLUMNS}"
    )))
    .bind(p.service_level.as_str())
    .bind(p.urgency.as_str())
    .bind(p.rule.unit.as_str())
    .bind(i32::try_from(p.rule.amount).unwrap_or(i32::MAX))
    .bind(&p.updated_by)
    .bind(p.updated_at)
    .fetch_one(conn)
    .await?;
    row.into_model()
}

/// Bucket size of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    fn sql(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// One group of the CMP-9 report.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub period_start: NaiveDate,
    pub category: Category,
    pub department: String,
    pub customer_tier: CustomerTier,
    pub complaints: i64,
    pub answered: i64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    pub on_time: i64,
    pub feedback: i64,
    pub satisfied: i64,
}

/// CMP-9 over complaints registered in `[from, to)`: response time is from
/// acceptance to the first round's answer; on time means by that round's
/// deadline (a commitment counts when earlier); satisfaction is the first
/// round's feedback. Periods are local business dates in `zone`.
#[tracing::instrument(skip(conn))]
pub async fn stats(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    period: Period,
    zone: &str,
) -> Result<Vec<StatsRow>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        period_start: NaiveDate,
        category: String,
        department: String,
        customer_tier: String,
        complaints: i64,
        answered: i64,
        median_hours: Option<f64>,
        p90_hours: Option<f64>,
        on_time: i64,
        feedback: i64,
        satisfied: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH base AS ( \
           SELECT date_trunc($3, c.registered_at AT TIME ZONE $4)::date AS period_start, \
                  c.category, c.department, c.customer_tier, \
                  EXTRACT(EPOCH FROM (r.answered_at - c.accepted_at))::float8 / 3600.0 AS hours, \
                  r.answered_at IS NOT NULL AS answered, \
                  r.answered_at <= {DUE} AS on_time, \
                  r.satisfied \
           FROM complaints.complaints c \
           LEFT JOIN complaints.rounds r ON r.complaint_id = c.id AND r.number = 1 \
           WHERE c.registered_at >= $1 AND c.registered_at < $2) \
         SELECT period_start, category, department, customer_tier, \
                count(*) AS complaints, \
                count(*) FILTER (WHERE answered) AS answered, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS median_hours, \
                percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90_hours, \
                count(*) FILTER (WHERE on_time) AS on_time, \
                count(satisfied) AS feedback, \
                count(*) FILTER (WHERE satisfied) AS satisfied \
         FROM base GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    )))
    .bind(from)
    .bind(to)
    .bind(period.sql())
    .bind(zone)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StatsRow {
                period_start: r.period_start,
                category: parse("category", &r.category, Category::from_db)?,
                department: r.department,
                customer_tier: parse("customer tier", &r.customer_tier, CustomerTier::from_db)?,
                complaints: r.complaints,
                answered: r.answered,
                median_hours: r.median_hours,
                p90_hours: r.p90_hours,
                on_time: r.on_time,
                feedback: r.feedback,
                satisfied: r.satisfied,
            })
        })
        .collect()
}

//! Persistence of the sales workflow: interactions, follow-ups, visits,
//! surveys, account plans, first-contact and timeliness queries, merging and
//! the outbox.

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Currency, Money, ids::CustomerId};
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::{parse, push_scope};
use crate::{
    error::{Error, Result},
    model::{
        ValueTier,
        access::Scope,
        contact_rules::InteractionChannel,
        plan::ContractStage,
        records::{AccountPlan, FollowUp, Interaction, PlanReview, PlanTarget, SurveyAnswer, Visit},
        visit::VisitState,
    },
};

// ---- interactions and follow-ups (CUS-6) ---------------------------------------

#[derive(sqlx::FromRow)]
struct InteractionRow {
    id: Uuid,
    customer_id: Uuid,
    channel: String,
    occurred_at: DateTime<Utc>,
    contact_name: String,
    summary: String,
    outcome: String,
    recorded_by: String,
}

impl InteractionRow {
    fn into_model(self) -> Result<Interaction> {
        Ok(Interaction {
            id: self.id,
            customer_id: CustomerId(self.customer_id),
            channel: parse("channel", &self.channel, InteractionChannel::from_db)?,
            occurred_at: self.occurred_at,
            contact_name: self.contact_name,
            summary: self.summary,
            outcome: self.outcome,
            recorded_by: self.recorded_by,
        })
    }
}

pub async fn insert_interaction(conn: &mut PgConnection, i: &Interaction) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.interactions (id, customer_id, channel, occurred_at, contact_name, summary, outcome, \
         recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(i.id)
    .bind(i.customer_id.0)
    .bind(i.channel.as_str())
    .bind(i.occurred_at)
    .bind(&i.contact_name)
    .bind(&i.summary)
    .bind(&i.outcome)
    .bind(&i.recorded_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first (by id: logging order), after `before` when paging.
pub async fn list_interactions(
    conn: &mut PgConnection,
    customer: CustomerId,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Interaction>> {
    let rows: Vec<InteractionRow> = sqlx::query_as(
        "SELECT id, customer_id, channel, occurred_at, contact_name, summary, outcome, recorded_by \
         FROM customers.interactions WHERE customer_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(customer.0)
    .bind(before)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(InteractionRow::into_model).collect()
}

/// CUS-4: the owner's first interaction after an assignment stops the clock.
/// Returns whether it did.
pub async fn record_first_contact(
    conn: &mut PgConnection,
    customer: CustomerId,
    owner: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE customers.customers SET first_contact_at = $3, updated_at = now(), version = version + 1 \
         WHERE id = $1 AND owner_id = $2 AND first_contact_due IS NOT NULL AND first_contact_at IS NULL",
    )
    .bind(customer.0)
    .bind(owner)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct FollowUpRow {
    id: Uuid,
    customer_id: Uuid,
    owner_id: String,
    due_at: DateTime<Utc>,
    repeat_every_days: i32,
    note: String,
    done_at: Option<DateTime<Utc>>,
}

impl From<FollowUpRow> for FollowUp {
    fn from(r: FollowUpRow) -> Self {
        FollowUp {
            id: r.id,
            customer_id: CustomerId(r.customer_id),
            owner_id: r.owner_id,
            due_at: r.due_at,
            repeat_every_days: r.repeat_every_days,
            note: r.note,
            done_at: r.done_at,
        }
    }
}

pub async fn insert_follow_up(conn: &mut PgConnection, f: &FollowUp, by: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.follow_ups (id, customer_id, owner_id, due_at, repeat_every_days, note, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(f.id)
    .bind(f.customer_id.0)
    .bind(&f.owner_id)
    .bind(f.due_at)
    .bind(f.repeat_every_days)
    .bind(&f.note)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A follow-up of `customer`, locked for completion.
pub async fn lock_follow_up(conn: &mut PgConnection, id: Uuid, customer: CustomerId) -> Result<Option<FollowUp>> {
    let row: Option<FollowUpRow> = sqlx::query_as(
        "SELECT id, customer_id, owner_id, due_at, repeat_every_days, note, done_at FROM customers.follow_ups \
         WHERE id = $1 AND customer_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(customer.0)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn complete_follow_up(conn: &mut PgConnection, id: Uuid, interaction: Uuid, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE customers.follow_ups SET done_at = $3, done_by_interaction = $2 WHERE id = $1")
        .bind(id)
        .bind(interaction)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Open follow-ups due before `before`, earliest first, of customers in scope.
pub async fn list_due_follow_ups(
    conn: &mut PgConnection,
    scope: &Scope,
    owner: Option<&str>,
    before: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<FollowUp>> {
    let mut q = QueryBuilder::new(
        "SELECT f.id, f.customer_id, f.owner_id, f.due_at, f.repeat_every_days, f.note, f.done_at \
         FROM customers.follow_ups f JOIN customers.customers c ON c.id = f.customer_id \
         WHERE f.done_at IS NULL AND c.merged_into IS NULL AND f.due_at < ",
    );
    q.push_bind(before);
    push_scope(&mut q, scope);
    if let Some(o) = owner {
        q.push(" AND f.owner_id = ").push_bind(o.to_string());
    }
    if let Some(id) = after {
        // Keyset on (due_at, id), anchored at the last follow-up returned.
        q.push(" AND (f.due_at, f.id) > (SELECT a.due_at, a.id FROM customers.follow_ups a WHERE a.id = ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY f.due_at, f.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<FollowUpRow> = q.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

// ---- visits (CUS-7) --------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct VisitRow {
    id: Uuid,
    customer_id: Uuid,
    state: String,
    purpose: String,
    goals: String,
    attendees: Vec<String>,
    planned_for: DateTime<Utc>,
    planned_by: String,
    approved_by: Option<String>,
    approved_at: Option<DateTime<Utc>>,
    visited_at: Option<DateTime<Utc>>,
    minutes: String,
    minutes_due: Option<DateTime<Utc>>,
    minutes_submitted_at: Option<DateTime<Utc>>,
    minutes_late: bool,
    reviewed_by: Option<String>,
    reviewed_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    receipt_confirmed_by: Option<String>,
    receipt_at: Option<DateTime<Utc>>,
    version: i64,
}

impl VisitRow {
    fn into_model(self) -> Result<Visit> {
        Ok(Visit {
            id: self.id,
            customer_id: CustomerId(self.customer_id),
            state: parse("visit state", &self.state, VisitState::from_db)?,
            purpose: self.purpose,
            goals: self.goals,
            attendees: self.attendees,
            planned_for: self.planned_for,
            planned_by: self.planned_by,
            approved_by: self.approved_by,
            approved_at: self.approved_at,
            visited_at: self.visited_at,
            minutes: self.minutes,
            minutes_due: self.minutes_due,
            minutes_submitted_at: self.minutes_submitted_at,
            minutes_late: self.minutes_late,
            reviewed_by: self.reviewed_by,
            reviewed_at: self.reviewed_at,
            sent_at: self.sent_at,
            receipt_confirmed_by: self.receipt_confirmed_by,
            receipt_at: self.receipt_at,
            version: self.version,
        })
    }
}

const VISIT_COLUMNS: &str = "id, customer_id, state, purpose, goals, attendees, planned_for, planned_by, approved_by, \
     approved_at, visited_at, minutes, minutes_due, minutes_submitted_at, minutes_late, reviewed_by, reviewed_at, \
     sent_at, receipt_confirmed_by, receipt_at, version";

pub async fn insert_visit(conn: &mut PgConnection, v: &Visit) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.visits (id, customer_id, state, purpose, goals, attendees, planned_for, planned_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(v.id)
    .bind(v.customer_id.0)
    .bind(v.state.as_str())
    .bind(&v.purpose)
    .bind(&v.goals)
    .bind(&v.attendees)
    .bind(v.planned_for)
    .bind(&v.planned_by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn load_visit(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Visit>> {
    let sql =
        format!("SELECT {VISIT_COLUMNS} FROM customers.visits WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<VisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.map(VisitRow::into_model).transpose()
}

pub async fn save_visit(conn: &mut PgConnection, v: &Visit) -> Result<()> {
    sqlx::query(
        "UPDATE customers.visits SET state = $2, approved_by = $3, approved_at = $4, visited_at = $5, minutes = $6, \
         minutes_due = $7, minutes_submitted_at = $8, minutes_late = $9, reviewed_by = $10, reviewed_at = $11, \
         sent_at = $12, receipt_confirmed_by = $13, receipt_at = $14, version = version + 1 WHERE id = $1",
    )
    .bind(v.id)
    .bind(v.state.as_str())
    .bind(&v.approved_by)
    .bind(v.approved_at)
    .bind(v.visited_at)
    .bind(&v.minutes)
    .bind(v.minutes_due)
    .bind(v.minutes_submitted_at)
    .bind(v.minutes_late)
    .bind(&v.reviewed_by)
    .bind(v.reviewed_at)
    .bind(v.sent_at)
    .bind(&v.receipt_confirmed_by)
    .bind(v.receipt_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list_visits(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<Visit>> {
    let sql = format!("SELECT {VISIT_COLUMNS} FROM customers.visits WHERE customer_id = $1 ORDER BY id");
    let rows: Vec<VisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer.0).fetch_all(conn).await?;
    rows.into_iter().map(VisitRow::into_model).collect()
}

// ---- surveys (CUS-10) --------------------------------------------------------------

pub async fn insert_survey(conn: &mut PgConnection, s: &SurveyAnswer) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.surveys (id, customer_id, score, channel, answered_on, comments, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id)
    .bind(s.customer_id.0)
    .bind(s.score)
    .bind(&s.channel)
    .bind(s.answered_on)
    .bind(&s.comments)
    .bind(&s.recorded_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// (answers, satisfied) for answers dated in `[from, to]` of customers in
/// scope, optionally of one tier.
pub async fn satisfaction(
    conn: &mut PgConnection,
    scope: &Scope,
    from: NaiveDate,
    to: NaiveDate,
    tier: Option<ValueTier>,
    satisfied_score: i16,
) -> Result<(i64, i64)> {
    let mut q = QueryBuilder::new("SELECT count(*), count(*) FILTER (WHERE s.score >= ");
    q.push_bind(satisfied_score);
    q.push(") FROM customers.surveys s JOIN customers.customers c ON c.id = s.customer_id WHERE s.answered_on >= ");
    q.push_bind(from).push(" AND s.answered_on <= ").push_bind(to);
    push_scope(&mut q, scope);
    if let Some(t) = tier {
        q.push(" AND c.value_tier = ").push_bind(t.as_str());
    }
    Ok(q.build_query_as::<(i64, i64)>().fetch_one(conn).await?)
}

// ---- account plans (CUS-12) --------------------------------------------------------

pub async fn insert_plan(conn: &mut PgConnection, p: &AccountPlan) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.account_plans (id, customer_id, year, strategy, activities, contract_stage, \
         created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.id)
    .bind(p.customer_id.0)
    .bind(p.year)
    .bind(&p.strategy)
    .bind(&p.activities)
    .bind(p.contract_stage.as_str())
    .bind(&p.created_by)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if crm_platform::error::violated_constraint(&e) == Some("account_plans_customer_year_key") {
            Error::Rule(crate::model::RuleViolation::new(
                "PLAN_EXISTS",
                format!("the customer already has an account plan for {}", p.year),
            ))
        } else {
            Error::Db(e)
        }
    })?;
    for (i, t) in p.targets.iter().enumerate() {
        sqlx::query(
            "INSERT INTO customers.plan_targets (plan_id, position, description, amount_minor, currency) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id)
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(&t.description)
        .bind(t.amount.map(|m| m.amount_minor()))
        .bind(t.amount.map(|m| m.currency().code().to_string()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: Uuid,
    customer_id: Uuid,
    year: i32,
    strategy: String,
    activities: Vec<String>,
    contract_stage: String,
    created_by: String,
    version: i64,
}

async fn plans_where(conn: &mut PgConnection, column: &str, value: Uuid, lock: bool) -> Result<Vec<AccountPlan>> {
    let sql = format!(
        "SELECT id, customer_id, year, strategy, activities, contract_stage, created_by, version \
         FROM customers.account_plans WHERE {column} = $1 ORDER BY year{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<PlanRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(value).fetch_all(&mut *conn).await?;
    let mut plans = Vec::with_capacity(rows.len());
    for r in rows {
        let targets: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT description, amount_minor, currency FROM customers.plan_targets WHERE plan_id = $1 ORDER BY position",
        )
        .bind(r.id)
        .fetch_all(&mut *conn)
        .await?;
        let reviews: Vec<(i16, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT quarter, summary, reviewed_by, reviewed_at FROM customers.plan_reviews WHERE plan_id = $1 \
             ORDER BY quarter",
        )
        .bind(r.id)
        .fetch_all(&mut *conn)
        .await?;
        plans.push(AccountPlan {
            id: r.id,
            customer_id: CustomerId(r.customer_id),
            year: r.year,
            strategy: r.strategy,
            activities: r.activities,
            targets: targets
                .into_iter()
                .map(|(description, amount, currency)| {
                    let amount = match (amount, currency) {
                        (Some(a), Some(c)) => Some(Money::new(
                            a,
                            Currency::parse(&c).map_err(|e| Error::Corrupt(format!("plan target currency: {e}")))?,
                        )),
                        _ => None,
                    };
                    Ok(PlanTarget { description, amount })
                })
                .collect::<Result<Vec<_>>>()?,
            contract_stage: parse("contract stage", &r.contract_stage, ContractStage::from_db)?,
            reviews: reviews
                .into_iter()
                .map(|(quarter, summary, reviewed_by, reviewed_at)| PlanReview {
                    quarter,
                    summary,
                    reviewed_by,
                    reviewed_at,
                })
                .collect(),
            created_by: r.created_by,
            version: r.version,
        });
    }
    Ok(plans)
}

pub async fn load_plan(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<AccountPlan>> {
    Ok(plans_where(conn, "id", id, lock).await?.pop())
}

pub async fn list_plans(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<AccountPlan>> {
    plans_where(conn, "customer_id", customer.0, false).await
}

pub async fn save_plan_stage(conn: &mut PgConnection, id: Uuid, stage: ContractStage) -> Result<()> {
    sqlx::query("UPDATE customers.account_plans SET contract_stage = $2, version = version + 1 WHERE id = $1")
        .bind(id)
        .bind(stage.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Records (or corrects) the review of one quarter.
pub async fn upsert_review(conn: &mut PgConnection, plan: Uuid, quarter: i16, summary: &str, by: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.plan_reviews (plan_id, quarter, summary, reviewed_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (plan_id, quarter) DO UPDATE SET summary = $3, reviewed_by = $4, reviewed_at = now()",
    )
    .bind(plan)
    .bind(quarter)
    .bind(summary)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE customers.account_plans SET version = version + 1 WHERE id = $1")
        .bind(plan)
        .execute(conn)
        .await?;
    Ok(())
}

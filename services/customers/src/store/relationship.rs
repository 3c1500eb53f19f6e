//! Terminations (CUS-11), behaviour facts and the tier policy (CUS-8).

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{
        termination::{Step, StepOutcome, Termination, TerminationReason, TerminationState},
        tiering::{Figures, TierPolicy},
    },
};

const TERMINATION_COLUMNS: &str = "id, customer_id, reason, note, notice_days, state, requested_by, requested_at, \
     decided_by, decided_at, rejection_reason, notice_ends_at, clearing_started_at, terminated_at, version";

fn corrupt(what: &str, v: &str) -> Error {
    Error::Corrupt(format!("unknown {what} {v:?} in customers.terminations"))
}

fn termination_from(row: &PgRow) -> Result<Termination> {
    let reason: String = row.try_get("reason")?;
    let state: String = row.try_get("state")?;
    Ok(Termination {
        id: row.try_get("id")?,
        customer_id: CustomerId(row.try_get("customer_id")?),
        reason: TerminationReason::from_db(&reason).ok_or_else(|| corrupt("reason", &reason))?,
        note: row.try_get("note")?,
        notice_days: row.try_get("notice_days")?,
        state: TerminationState::from_db(&state).ok_or_else(|| corrupt("state", &state))?,
        requested_by: row.try_get("requested_by")?,
        requested_at: row.try_get("requested_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        rejection_reason: row.try_get("rejection_reason")?,
        notice_ends_at: row.try_get("notice_ends_at")?,
        clearing_started_at: row.try_get("clearing_started_at")?,
        terminated_at: row.try_get("terminated_at")?,
        version: row.try_get("version")?,
        steps: vec![],
    })
}

async fn with_steps(conn: &mut PgConnection, mut ts: Vec<Termination>) -> Result<Vec<Termination>> {
    if ts.is_empty() {
        return Ok(ts);
    }
    let ids: Vec<Uuid> = ts.iter().map(|t| t.id).collect();
    let rows = sqlx::query(
        "SELECT termination_id, participant, outcome, code, reason, updated_at FROM customers.termination_steps \
         WHERE termination_id = ANY($1) ORDER BY termination_id, participant",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    for row in rows {
        let id: Uuid = row.try_get("termination_id")?;
        let outcome: String = row.try_get("outcome")?;
        let step = Step {
            participant: row.try_get("participant")?,
            outcome: StepOutcome::from_db(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
            code: row.try_get("code")?,
            reason: row.try_get("reason")?,
            updated_at: row.try_get("updated_at")?,
        };
        if let Some(t) = ts.iter_mut().find(|t| t.id == id) {
            t.steps.push(step);
        }
    }
    Ok(ts)
}

pub async fn insert_termination(conn: &mut PgConnection, t: &Termination) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.terminations (id, customer_id, reason, note, notice_days, state, requested_by, \
         requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.id)
    .bind(t.customer_id.0)
    .bind(t.reason.as_str())
    .bind(&t.note)
    .bind(t.notice_days)
    .bind(t.state.as_str())
    .bind(&t.requested_by)
    .bind(t.requested_at)
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("terminations_one_open_idx") => Error::Rule(
            crm_domain::RuleViolation::new("TERMINATION_UNDER_WAY", "this customer's termination is already under way"),
        ),
        _ => Error::Db(e),
    })?;
    Ok(())
}

/// Saves the saga's state and its steps; bumps the version.
pub async fn save_termination(conn: &mut PgConnection, t: &Termination) -> Result<()> {
    sqlx::query(
        "UPDATE customers.terminations SET state = $2, decided_by = $3, decided_at = $4, rejection_reason = $5, \
         notice_ends_at = $6, clearing_started_at = $7, terminated_at = $8, version = version + 1 WHERE id = $1",
    )
    .bind(t.id)
    .bind(t.state.as_str())
    .bind(&t.decided_by)
    .bind(t.decided_at)
    .bind(&t.rejection_reason)
    .bind(t.notice_ends_at)
    .bind(t.clearing_started_at)
    .bind(t.terminated_at)
    .execute(&mut *conn)
    .await?;
    for s in &t.steps {
        sqlx::query(
            "INSERT INTO customers.termination_steps (termination_id, participant, outcome, code, reason, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (termination_id, participant) DO UPDATE SET \
             outcome = EXCLUDED.outcome, code = EXCLUDED.code, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at",
        )
        .bind(t.id)
        .bind(&s.participant)
        .bind(s.outcome.as_str())
        .bind(&s.code)
        .bind(&s.reason)
        .bind(s.updated_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One termination, optionally locked for a change.
pub async fn load_termination(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Termination>> {
    let sql = format!(
        "SELECT {TERMINATION_COLUMNS} FROM customers.terminations WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    let Some(row) = row else { return Ok(None) };
    let t = termination_from(&row)?;
    Ok(with_steps(conn, vec![t]).await?.pop())
}

/// Terminations, newest first, optionally of one customer (and the customers
/// merged into it) and in one state.
pub async fn list_terminations(
    conn: &mut PgConnection,
    customer: Option<CustomerId>,
    state: Option<TerminationState>,
    limit: i64,
) -> Result<Vec<Termination>> {
    let sql = format!(
        "SELECT {TERMINATION_COLUMNS} FROM customers.terminations \
         WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR state = $2) \
         ORDER BY requested_at DESC, id LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(customer.map(|c| c.0))
        .bind(state.map(|s| s.as_str()))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let ts = rows.iter().map(termination_from).collect::<Result<Vec<_>>>()?;
    with_steps(conn, ts).await
}

/// Terminations whose notice has run out, locked; skipped when another
/// replica's job holds them.
pub async fn claim_due_notices(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<Termination>> {
    let sql = format!(
        "SELECT {TERMINATION_COLUMNS} FROM customers.terminations WHERE state = 'notice' AND notice_ends_at <= $1 \
         ORDER BY notice_ends_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(&mut *conn).await?;
    let ts = rows.iter().map(termination_from).collect::<Result<Vec<_>>>()?;
    with_steps(conn, ts).await
}

/// Where a customer id now lives: itself, or the survivor it was merged
/// into; None when there is no such customer.
pub async fn resolve_customer(conn: &mut PgConnection, id: Uuid) -> Result<Option<CustomerId>> {
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT coalesce(merged_into, id) FROM customers.customers WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(found.map(CustomerId))
}

/// Records one behaviour fact (idempotent by event id).
#[allow(clippy::too_many_arguments)]
pub async fn insert_fact(
    conn: &mut PgConnection,
    event_id: Uuid,
    customer: CustomerId,
    kind: &str,
    amount_minor: i64,
    currency: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.behaviour_facts (event_id, customer_id, kind, amount_minor, currency, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(customer.0)
    .bind(kind)
    .bind(amount_minor)
    .bind(currency)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Behaviour of a customer (and those merged into it) as of `now`, in
/// `currency`: windowed figures over the last 365 days, lifetime value ever.
pub struct Behaviour {
    pub figures: Figures,
    pub purchases_total: i64,
    pub complaints_total: i64,
    pub first_purchase: Option<DateTime<Utc>>,
    pub last_purchase: Option<DateTime<Utc>>,
}

pub async fn behaviour(
    conn: &mut PgConnection,
    customer: CustomerId,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<Behaviour> {
    let row = sqlx::query(
        "SELECT \
           count(*) FILTER (WHERE kind = 'purchase' AND occurred_at > $3 - interval '365 days') AS purchases_year, \
           coalesce(sum(amount_minor) FILTER (WHERE kind = 'purchase' AND currency = $2 \
             AND occurred_at > $3 - interval '365 days'), 0)::bigint AS amount_year, \
           count(*) FILTER (WHERE kind = 'complaint' AND occurred_at > $3 - interval '365 days') AS complaints_year, \
           (coalesce(sum(amount_minor) FILTER (WHERE kind = 'payment' AND currency = $2), 0) \
             - coalesce(sum(amount_minor) FILTER (WHERE kind = 'credit' AND currency = $2), 0))::bigint AS lifetime, \
           count(*) FILTER (WHERE kind = 'purchase') AS purchases_total, \
           count(*) FILTER (WHERE kind = 'complaint') AS complaints_total, \
           min(occurred_at) FILTER (WHERE kind = 'purchase') AS first_purchase, \
           max(occurred_at) FILTER (WHERE kind = 'purchase') AS last_purchase \
         FROM customers.behaviour_facts \
         WHERE customer_id = $1 OR customer_id IN (SELECT id FROM customers.customers WHERE merged_into = $1)",
    )
    .bind(customer.0)
    .bind(currency)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(Behaviour {
        figures: Figures {
            purchases_last_year: row.try_get("purchases_year")?,
            purchase_minor_last_year: row.try_get("amount_year")?,
            complaints_last_year: row.try_get("complaints_year")?,
            lifetime_value_minor: row.try_get("lifetime")?,
        },
        purchases_total: row.try_get("purchases_total")?,
        complaints_total: row.try_get("complaints_total")?,
        first_purchase: row.try_get("first_purchase")?,
        last_purchase: row.try_get("last_purchase")?,
    })
}

pub struct StoredPolicy {
    pub policy: TierPolicy,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

pub async fn tier_policy(conn: &mut PgConnection) -> Result<StoredPolicy> {
    let row = sqlx::query(
        "SELECT automatic, currency, key_min_minor, vip_min_minor, max_complaints_for_upgrade, updated_by, updated_at \
         FROM customers.tier_policy",
    )
    .fetch_one(conn)
    .await?;
    Ok(StoredPolicy {
        policy: TierPolicy {
            automatic: row.try_get("automatic")?,
            currency: row.try_get("currency")?,
            key_min_minor: row.try_get("key_min_minor")?,
            vip_min_minor: row.try_get("vip_min_minor")?,
            max_complaints_for_upgrade: i64::from(row.try_get::<i32, _>("max_complaints_for_upgrade")?),
        },
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn save_tier_policy(conn: &mut PgConnection, p: &TierPolicy, by: &str) -> Result<()> {
    sqlx::query(
        "UPDATE customers.tier_policy SET automatic = $1, currency = $2, key_min_minor = $3, vip_min_minor = $4, \
         max_complaints_for_upgrade = $5, updated_by = $6, updated_at = now()",
    )
    .bind(p.automatic)
    .bind(&p.currency)
    .bind(p.key_min_minor)
    .bind(p.vip_min_minor)
    .bind(i32::try_from(p.max_complaints_for_upgrade).unwrap_or(i32::MAX))
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

//! Technicians and their daily bookings (DSP-3).

use chrono::{DateTime, NaiveDate, Utc};
use crm_platform::error::violated_constraint;
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{Technician, TechnicianId},
};

const COLUMNS: &str =
    "t.id, t.user_sub, t.display_name, t.skills, t.territory, t.daily_capacity, t.created_by, t.created_at, t.version";

#[derive(sqlx::FromRow)]
struct TechnicianRow {
    id: Uuid,
    user_sub: String,
    display_name: String,
    skills: Vec<String>,
    territory: String,
    daily_capacity: i32,
    created_by: String,
    created_at: DateTime<Utc>,
    version: i64,
}

impl From<TechnicianRow> for Technician {
    fn from(r: TechnicianRow) -> Self {
        Technician {
            id: TechnicianId(r.id),
            user_sub: r.user_sub,
            display_name: r.display_name,
            skills: r.skills,
            territory: r.territory,
            daily_capacity: r.daily_capacity,
            created_by: r.created_by,
            created_at: r.created_at,
            version: r.version,
        }
    }
}

#[tracing::instrument(skip_all, fields(technician = %t.id))]
pub async fn insert_technician(conn: &mut PgConnection, t: &Technician) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.technicians (id, user_sub, display_name, skills, territory, daily_capacity, \
         created_by, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.id.0)
    .bind(&t.user_sub)
    .bind(&t.display_name)
    .bind(&t.skills)
    .bind(&t.territory)
    .bind(t.daily_capacity)
    .bind(&t.created_by)
    .bind(t.created_at)
    .bind(t.version)
    .execute(conn)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some("technicians_user_sub_key") => Error::AlreadyExists {
            resource: "technician",
            detail: format!("user {} is already registered as a technician", t.user_sub),
        },
        _ => Error::Db(e),
    })?;
    Ok(())
}

#[tracing::instrument(skip(conn))]
pub async fn load_technician(conn: &mut PgConnection, id: TechnicianId) -> Result<Option<Technician>> {
    let sql = format!("SELECT {COLUMNS} FROM dispatch.technicians t WHERE t.id = $1");
    let row: Option<TechnicianRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(conn).await?;
    Ok(row.map(Technician::from))
}

/// A page of technicians in id order, one more than `limit` when there is a
/// next page.
#[tracing::instrument(skip(conn))]
pub async fn list_technicians(
    conn: &mut PgConnection,
    territory: Option<&str>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Technician>> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM dispatch.technicians t WHERE TRUE"));
    if let Some(v) = territory {
        q.push(" AND t.territory = ").push_bind(v.to_string());
    }
    if let Some(a) = after {
        q.push(" AND t.id > ").push_bind(a);
    }
    q.push(" ORDER BY t.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<TechnicianRow> = q.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(Technician::from).collect())
}

/// Every technician with what they have booked on `day` (the proposal's
/// input; ranking is the model's).
#[tracing::instrument(skip(conn))]
pub async fn technicians_with_load(conn: &mut PgConnection, day: NaiveDate) -> Result<Vec<(Technician, i32)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        t: TechnicianRow,
        booked: i32,
    }
    let sql = format!(
        "SELECT {COLUMNS}, COALESCE(d.booked, 0) AS booked FROM dispatch.technicians t \
         LEFT JOIN dispatch.technician_days d ON d.technician_id = t.id AND d.day = $1 ORDER BY t.id"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(day).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| (Technician::from(r.t), r.booked)).collect())
}

/// DSP-3: books one order on the technician's day if it has room. The upsert
/// takes the day row's lock and only increments while `booked < capacity`,
/// so concurrent assignments queue on the row and can never overbook.
/// Returns false when the day is full.
#[tracing::instrument(skip(conn))]
pub async fn book(conn: &mut PgConnection, technician: TechnicianId, day: NaiveDate, capacity: i32) -> Result<bool> {
    let booked: Option<i32> = sqlx::query_scalar(
        "INSERT INTO dispatch.technician_days AS d (technician_id, day, booked) \
         SELECT $1, $2, 1 WHERE $3 >= 1 \
         ON CONFLICT (technician_id, day) DO UPDATE SET booked = d.booked + 1 WHERE d.booked < $3 \
         RETURNING booked",
    )
    .bind(technician.0)
    .bind(day)
    .bind(capacity)
    .fetch_optional(conn)
    .await?;
    Ok(booked.is_some())
}

/// Gives a booking back (the order was cancelled).
#[tracing::instrument(skip(conn))]
pub async fn release(conn: &mut PgConnection, technician: TechnicianId, day: NaiveDate) -> Result<()> {
    sqlx::query(
        "UPDATE dispatch.technician_days SET booked = booked - 1 \
         WHERE technician_id = $1 AND day = $2 AND booked > 0",
    )
    .bind(technician.0)
    .bind(day)
    .execute(conn)
    .await?;
    Ok(())
}

/// The token subject of a technician, for the assigned-technician check.
pub async fn technician_sub(conn: &mut PgConnection, id: TechnicianId) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT user_sub FROM dispatch.technicians WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?)
}

//! Routes, meters and readings (DSP-7). Readings arrive in bulk: a chunk's
//! meters, previous readings and taken periods are read in three queries,
//! and accepted readings are written with one `UNNEST` insert.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::ids::CustomerId;
use crm_platform::error::violated_constraint;
use sqlx::PgConnection;
use uuid::Uuid;

use super::parse;
use crate::{
    error::{Error, Result},
    model::{
        ServiceLevel,
        metering::{FlowDirection, Meter, MeterClass, MeterId, MeterKind, Previous, Route, Schedule},
    },
};

pub async fn insert_route(conn: &mut PgConnection, r: &Route) -> Result<()> {
    sqlx::query("INSERT INTO dispatch.routes (id, name, schedule, created_by, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(r.id)
        .bind(&r.name)
        .bind(r.schedule.as_str())
        .bind(&r.created_by)
        .bind(r.created_at)
        .execute(conn)
        .await
        .map_err(|e| match violated_constraint(&e) {
            Some("routes_name_key") => Error::AlreadyExists { resource: "route", detail: format!("name {}", r.name) },
            _ => Error::Db(e),
        })?;
    Ok(())
}

type RouteRow = (Uuid, String, String, String, DateTime<Utc>);

fn route(r: RouteRow) -> Result<Route> {
    let (id, name, schedule, created_by, created_at) = r;
    Ok(Route { id, name, schedule: parse("schedule", &schedule, Schedule::from_db)?, created_by, created_at })
}

pub async fn load_route(conn: &mut PgConnection, id: Uuid) -> Result<Option<Route>> {
    let row: Option<RouteRow> =
        sqlx::query_as("SELECT id, name, schedule, created_by, created_at FROM dispatch.routes WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(route).transpose()
}

pub async fn list_routes(conn: &mut PgConnection, only: Option<Uuid>) -> Result<Vec<Route>> {
    let rows: Vec<RouteRow> = sqlx::query_as(
        "SELECT id, name, schedule, created_by, created_at FROM dispatch.routes \
         WHERE ($1::uuid IS NULL OR id = $1) ORDER BY name",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(route).collect()
}

pub async fn insert_meter(conn: &mut PgConnection, m: &Meter) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.meters (id, customer_id, customer_name, service_level, number, kind, installed_on, \
         flow_direction, prepaid, route_id, site_address, created_by, created_at, meter_class) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(m.id.0)
    .bind(m.customer_id.0)
    .bind(&m.customer_name)
    .bind(m.service_level.as_str())
    .bind(&m.number)
    .bind(m.kind.as_str())
    .bind(m.installed_on)
    .bind(m.flow_direction.as_str())
    .bind(m.prepaid)
    .bind(m.route_id)
    .bind(&m.site_address)
    .bind(&m.created_by)
    .bind(m.created_at)
    .bind(m.class.as_str())
    .execute(conn)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some("meters_number_key") => {
            Error::AlreadyExists { resource: "meter", detail: format!("number {} is registered", m.number) }
        }
        _ => Error::Db(e),
    })?;
    Ok(())
}

const METER_COLUMNS: &str = "id, customer_id, customer_name, service_level, number, kind, installed_on, \
     flow_direction, prepaid, route_id, site_address, created_by, created_at, meter_class";

#[derive(sqlx::FromRow)]
struct MeterRow {
    id: Uuid,
    customer_id: Uuid,
    customer_name: String,
    service_level: String,
    number: String,
    kind: String,
    installed_on: NaiveDate,
    flow_direction: String,
    prepaid: bool,
    route_id: Uuid,
    site_address: String,
    created_by: String,
    created_at: DateTime<Utc>,
    meter_class: String,
}

impl MeterRow {
    fn into_model(self) -> Result<Meter> {
        Ok(Meter {
            id: MeterId(self.id),
            customer_id: CustomerId(self.customer_id),
            customer_name: self.customer_name,
            service_level: parse("service level", &self.service_level, ServiceLevel::from_db)?,
            number: self.number,
            kind: parse("meter kind", &self.kind, MeterKind::from_db)?,
            class: parse("meter class", &self.meter_class, MeterClass::from_db)?,
            installed_on: self.installed_on,
            flow_direction: parse("flow direction", &self.flow_direction, FlowDirection::from_db)?,
            prepaid: self.prepaid,
            route_id: self.route_id,
            site_address: self.site_address,
            created_by: self.created_by,
            created_at: self.created_at,
        })
    }
}

/// A page of meters in id order, one more than `limit` when there is a next
/// page.
pub async fn list_meters(
    conn: &mut PgConnection,
    route: Option<Uuid>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Meter>> {
    let sql = format!(
        "SELECT {METER_COLUMNS} FROM dispatch.meters WHERE ($1::uuid IS NULL OR route_id = $1) \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    let rows: Vec<MeterRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(route)
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(MeterRow::into_model).collect()
}

/// What a chunk of readings is checked against.
pub struct ReadingContext {
    /// By meter number, with its route's schedule and name.
    pub meters: HashMap<String, (Meter, Schedule, String)>,
    pub previous: HashMap<Uuid, Previous>,
    /// (meter, period) already read or missed.
    pub taken: HashSet<(Uuid, String)>,
    /// Reading ids already stored (a re-sent stream).
    pub stored: HashSet<Uuid>,
}

/// meter, read at, cumulative volume, consumption, days.
type PreviousRow = (Uuid, DateTime<Utc>, i64, Option<i64>, Option<i32>);

/// Loads what a chunk is checked against and locks its meters (in id
/// order, so concurrent streams queue instead of deadlocking): two streams
/// can then never both take a meter's period or read against a stale
/// previous reading. `since` bounds the periods looked at: a period is at
/// most a quarter, so one taken by a reading of the chunk started after it.
pub async fn reading_context(
    conn: &mut PgConnection,
    numbers: &[String],
    ids: &[Uuid],
    since: DateTime<Utc>,
) -> Result<ReadingContext> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        m: MeterRow,
        schedule: String,
        route_name: String,
    }
    let cols = METER_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols}, r.schedule, r.name AS route_name FROM dispatch.meters m \
         JOIN dispatch.routes r ON r.id = m.route_id WHERE m.number = ANY($1) ORDER BY m.id FOR UPDATE OF m"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(numbers).fetch_all(&mut *conn).await?;
    let mut meters = HashMap::new();
    for r in rows {
        let schedule = parse("schedule", &r.schedule, Schedule::from_db)?;
        let m = r.m.into_model()?;
        meters.insert(m.number.clone(), (m, schedule, r.route_name));
    }
    let meter_ids: Vec<Uuid> = meters.values().map(|(m, _, _)| m.id.0).collect();
    let prev: Vec<PreviousRow> = sqlx::query_as(
        "SELECT DISTINCT ON (meter_id) meter_id, read_at, cumulative_volume, consumption, days \
         FROM dispatch.meter_readings WHERE meter_id = ANY($1) AND outcome = 'read' \
         ORDER BY meter_id, read_at DESC",
    )
    .bind(&meter_ids)
    .fetch_all(&mut *conn)
    .await?;
    let previous = prev
        .into_iter()
        .map(|(id, read_at, cumulative_volume, consumption, days)| {
            (id, Previous { read_at, cumulative_volume, consumption, days })
        })
        .collect();
    let taken: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT meter_id, period FROM dispatch.meter_readings WHERE meter_id = ANY($1) AND read_at >= $2",
    )
    .bind(&meter_ids)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM dispatch.meter_readings WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await?;
    Ok(ReadingContext { meters, previous, taken: taken.into_iter().collect(), stored: stored.into_iter().collect() })
}

/// Accepted readings of a chunk, column by column, for one `UNNEST` insert.
#[derive(Debug, Default)]
pub struct ReadingColumns {
    pub id: Vec<Uuid>,
    pub meter_id: Vec<Uuid>,
    pub period: Vec<String>,
    pub read_at: Vec<DateTime<Utc>>,
    pub outcome: Vec<String>,
    pub base_reading: Vec<Option<i64>>,
    pub cumulative_volume: Vec<Option<i64>>,
    pub consumption: Vec<Option<i64>>,
    pub days: Vec<Option<i32>>,
    pub balance_minor: Vec<Option<i64>>,
    pub currency: Vec<Option<String>>,
    pub missed_reason: Vec<String>,
    pub anomaly: Vec<Option<String>>,
    pub repair_work_order_id: Vec<Option<Uuid>>,
    pub register_change: Vec<Option<String>>,
    /// Taken outside the route's planned window (DSP-7): accepted, flagged.
    pub outside_window: Vec<bool>,
}

/// Inserts the chunk; returns the ids actually inserted (a concurrent stream
/// may have taken a meter's period first).
pub async fn insert_readings(
    conn: &mut PgConnection,
    c: &ReadingColumns,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO dispatch.meter_readings (id, meter_id, period, read_at, outcome, base_reading, \
         cumulative_volume, consumption, days, balance_minor, currency, missed_reason, anomaly, \
         repair_work_order_id, register_change, outside_window, recorded_by, recorded_at) \
         SELECT u.*, $15, $16 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], \
         $6::bigint[], $7::bigint[], $8::bigint[], $9::int[], $10::bigint[], $11::text[], $12::text[], $13::text[], \
         $14::uuid[], $17::text[], $18::bool[]) AS u ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&c.id)
    .bind(&c.meter_id)
    .bind(&c.period)
    .bind(&c.read_at)
    .bind(&c.outcome)
    .bind(&c.base_reading)
    .bind(&c.cumulative_volume)
    .bind(&c.consumption)
    .bind(&c.days)
    .bind(&c.balance_minor)
    .bind(&c.currency)
    .bind(&c.missed_reason)
    .bind(&c.anomaly)
    .bind(&c.repair_work_order_id)
    .bind(by)
    .bind(at)
    .bind(&c.register_change)
    .bind(&c.outside_window)
    .fetch_all(conn)
    .await?)
}

/// Per route and period: meters planned, read and missed, readings of a
/// fast, slow or dead meter, and readings taken outside the window.
pub struct ReadCounts {
    pub planned: i64,
    pub read: i64,
    pub missed: i64,
    pub anomalies: i64,
    pub outside_window: i64,
}

pub async fn read_counts(conn: &mut PgConnection, route: Uuid, period: &str) -> Result<ReadCounts> {
    let (planned, read, missed, anomalies, outside_window): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dispatch.meters WHERE route_id = $1), \
         count(*) FILTER (WHERE r.outcome = 'read'), count(*) FILTER (WHERE r.outcome = 'missed'), \
         count(*) FILTER (WHERE r.anomaly IS NOT NULL), count(*) FILTER (WHERE r.outside_window) \
         FROM dispatch.meter_readings r JOIN dispatch.meters m ON m.id = r.meter_id \
         WHERE m.route_id = $1 AND r.period = $2",
    )
    .bind(route)
    .bind(period)
    .fetch_one(conn)
    .await?;
    Ok(ReadCounts { planned, read, missed, anomalies, outside_window })
}

//! Parked events and the consumers' positions: parking an event that will
//! not apply, retrying it on an admin's word, and the views the feed
//! service shows (`ListParkedEvents`, `GetConsumerStatus`).

use chrono::{DateTime, Utc};
use crm_platform::{error, proto_time};
use prost::Message;
use sqlx::{PgConnection, Row};
use tonic::Status;
use uuid::Uuid;

use super::{Consumers, Subscription};
use crate::pb;

impl Consumers {
    pub(super) async fn park(
        &self,
        sub: &Subscription,
        event: &pb::Event,
        error: &str,
        attempts: i32,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        self.park_in(&mut tx, sub, event, error, attempts).await?;
        self.advance(&mut tx, sub.source, event.seq).await?;
        tx.commit().await
    }

    pub(super) async fn park_in(
        &self,
        conn: &mut PgConnection,
        sub: &Subscription,
        event: &pb::Event,
        error: &str,
        attempts: i32,
    ) -> sqlx::Result<()> {
        let schema = self.schema;
        // An event whose id is not a UUID is parked under one made from its
        // feed and position, so two such events never share a row.
        let id = Uuid::parse_str(&event.id).unwrap_or_else(|_| {
            let source = sub
                .source
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            Uuid::from_u64_pair(source, event.seq as u64)
        });
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.events_parked (event_id, source, seq, event_type, event, error, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (event_id) DO UPDATE SET error = EXCLUDED.error, \
             attempts = events_parked.attempts + EXCLUDED.attempts, park_time = now(), resolve_time = NULL"
        )))
        .bind(id)
        .bind(sub.source)
        .bind(event.seq)
        .bind(&event.r#type)
        .bind(event.encode_to_vec())
        .bind(error)
        .bind(attempts)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Applies a parked event once more (not moving any cursor).
    pub async fn retry(&self, id: Uuid) -> Result<pb::ParkedEvent, Status> {
        let schema = self.schema;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT source, event FROM {schema}.events_parked WHERE event_id = $1 AND resolve_time IS NULL"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| error::from_sqlx(&e))?
        .ok_or_else(|| error::not_found("parked event", &id.to_string()))?;
        let source: String = row.try_get("source").map_err(|e| error::internal(&e))?;
        let body: Vec<u8> = row.try_get("event").map_err(|e| error::internal(&e))?;
        let event = pb::Event::decode(body.as_slice()).map_err(|e| error::internal(&e))?;
        let sub = self
            .subscription(&source)
            .ok_or_else(|| error::failed_precondition("NO_CONSUMER", format!("nothing here consumes {source}")))?;
        let outcome = self.attempt(sub, &event, false).await;
        let resolved = match outcome {
            Ok(_) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {schema}.events_parked SET resolve_time = now(), attempts = attempts + 1 WHERE event_id = $1"
                )))
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| error::from_sqlx(&e))?;
                None
            }
            Err(e) => {
                let message = e.to_string();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {schema}.events_parked SET error = $2, attempts = attempts + 1 WHERE event_id = $1"
                )))
                .bind(id)
                .bind(&message)
                .execute(&self.pool)
                .await
                .map_err(|e| error::from_sqlx(&e))?;
                Some(message)
            }
        };
        if let Some(message) = resolved {
            return Err(error::failed_precondition("EVENT_STILL_FAILING", message));
        }
        self.parked_one(id)
            .await
            .map_err(|e| error::from_sqlx(&e))?
            .ok_or_else(|| Status::internal("parked event vanished"))
    }

    pub(super) async fn parked_one(&self, id: Uuid) -> sqlx::Result<Option<pb::ParkedEvent>> {
        let schema = self.schema;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT event, error, attempts, park_time, resolve_time FROM {schema}.events_parked WHERE event_id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| parked_from_row(&r)).transpose()
    }

    /// Parked events, newest first.
    pub async fn parked(&self, include_resolved: bool, limit: i64) -> sqlx::Result<Vec<pb::ParkedEvent>> {
        let schema = self.schema;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT event, error, attempts, park_time, resolve_time FROM {schema}.events_parked \
             WHERE $1 OR resolve_time IS NULL ORDER BY park_time DESC, event_id LIMIT $2"
        )))
        .bind(include_resolved)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(parked_from_row).collect()
    }

    /// Where each consumer stands.
    pub async fn status(&self) -> sqlx::Result<Vec<pb::Consumer>> {
        let schema = self.schema;
        let mut out = Vec::new();
        for sub in &self.subscriptions {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT (SELECT after_seq FROM {schema}.event_cursors WHERE source = $1) AS after_seq, \
                 (SELECT update_time FROM {schema}.event_cursors WHERE source = $1) AS update_time, \
                 (SELECT count(*) FROM {schema}.events_applied WHERE source = $1) AS applied, \
                 (SELECT count(*) FROM {schema}.events_parked WHERE source = $1 AND resolve_time IS NULL) AS parked"
            )))
            .bind(sub.source)
            .fetch_one(&self.pool)
            .await?;
            let update: Option<DateTime<Utc>> = row.try_get("update_time")?;
            out.push(pb::Consumer {
                source: sub.source.to_string(),
                types: sub.types.iter().map(|t| (*t).to_string()).collect(),
                after_seq: row.try_get::<Option<i64>, _>("after_seq")?.unwrap_or(0),
                update_time: update.map(proto_time::to_proto),
                applied: row.try_get("applied")?,
                parked: row.try_get("parked")?,
            });
        }
        Ok(out)
    }
}

fn parked_from_row(r: &sqlx::postgres::PgRow) -> sqlx::Result<pb::ParkedEvent> {
    let body: Vec<u8> = r.try_get("event")?;
    let event = pb::Event::decode(body.as_slice()).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let park: DateTime<Utc> = r.try_get("park_time")?;
    let resolve: Option<DateTime<Utc>> = r.try_get("resolve_time")?;
    Ok(pb::ParkedEvent {
        event: Some(event),
        error: r.try_get("error")?,
        attempts: r.try_get("attempts")?,
        park_time: Some(proto_time::to_proto(park)),
        resolve_time: resolve.map(proto_time::to_proto),
    })
}

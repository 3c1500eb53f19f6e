//! The event feed: `crm.events.v1.EventFeedService`, served by every service
//! over its own outbox, plus the views of its consumers (cursors, parked
//! events) and the retry of a parked event.
//!
//! Delivery order is (writing transaction, seq), and only rows of
//! transactions older than every transaction still running are served: a
//! transaction that took a lower seq but commits later can then never land
//! behind a position a subscriber has already passed. A subscriber waits on
//! LISTEN/NOTIFY; only while a visible row is held back by a running
//! transaction does it look again after a short pause.
//!
//! One listening connection per feed serves every subscriber: it wakes them
//! all through a watch channel, and they read the outbox through the pool
//! only while there is something to read. An open subscription therefore
//! holds no database connection while it waits.

use std::{pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use crm_domain::Role;
use crm_platform::{Policy, Stopping, error, proto_time};
use prost::Message;
use sqlx::{PgPool, Row, postgres::PgListener};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    consumer::Consumers,
    pb::{self, event_feed_service_server::EventFeedService},
};

pub const SERVICE_NAME: &str = "crm.events.v1.EventFeedService";

/// Events per read of the outbox.
const BATCH: i64 = 256;
/// How long a subscriber sleeps without a notification before it looks
/// anyway (a safety net for a lost notification, not the way it learns).
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// How soon it looks again while a running transaction holds rows back.
const HELD_RECHECK: Duration = Duration::from_millis(50);

/// Who may call the feed.
pub fn policy() -> Policy {
    Policy::new(SERVICE_NAME)
        .allow("Subscribe", &[Role::System, Role::Admin])
        .allow("ListConsumers", &[Role::Admin, Role::Auditor, Role::System])
        .allow("ListParkedEvents", &[Role::Admin, Role::Auditor, Role::System])
        .allow("RetryParkedEvent", &[Role::Admin])
}

/// How long a subscriber may leave a message unread before the stream ends:
/// a client that stops reading gives its place back.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// One service's feed (its outbox) and its consumers.
#[derive(Clone)]
pub struct Feed {
    schema: &'static str,
    pool: PgPool,
    stopping: Stopping,
    consumers: Arc<Consumers>,
    wakeups: Arc<std::sync::OnceLock<tokio::sync::watch::Receiver<u64>>>,
}

impl Feed {
    pub fn new(schema: &'static str, pool: PgPool, stopping: Stopping, consumers: Arc<Consumers>) -> Self {
        Self { schema, pool, stopping, consumers, wakeups: Arc::default() }
    }

    /// The shared wake-up signal: its value changes whenever the outbox may
    /// have grown (a notification, or the listener reconnecting after it may
    /// have missed some). Started on first use.
    fn wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.wakeups
            .get_or_init(|| {
                let (tx, rx) = tokio::sync::watch::channel(0u64);
                tokio::spawn(listen(self.schema, self.pool.clone(), self.stopping.clone(), tx));
                rx
            })
            .clone()
    }
}

/// The feed's one LISTEN connection. Reconnects after a lost connection
/// (waking every subscriber, as notifications may have been missed) and
/// stops with the server or when no subscriber is left to wake.
async fn listen(schema: &'static str, pool: PgPool, stopping: Stopping, tx: tokio::sync::watch::Sender<u64>) {
    let channel = format!("{schema}_outbox");
    let mut generation = 0u64;
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(schema, error = %e, "event listener cannot connect; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    () = stopping.wait() => return,
                }
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::debug!(schema, error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // Connected (again): whatever happened meanwhile is worth a look.
        generation += 1;
        tx.send_replace(generation);
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(_)) => {
                        generation += 1;
                        tx.send_replace(generation);
                    }
                    // The connection was lost; try_recv reconnects on the
                    // next call, but notifications in between are gone.
                    Ok(None) => {
                        generation += 1;
                        tx.send_replace(generation);
                    }
                    Err(e) => {
                        tracing::debug!(schema, error = %e, "event listener failed; reconnecting");
                        break;
                    }
                },
                () = stopping.wait() => return,
                () = tx.closed() => return,
            }
            if pool.is_closed() {
                return;
            }
        }
    }
}

impl Feed {
    pub fn into_server(self) -> pb::event_feed_service_server::EventFeedServiceServer<Self> {
        pb::event_feed_service_server::EventFeedServiceServer::new(self)
    }
}

/// A position in the feed: (writing transaction, seq).
#[derive(Debug, Clone)]
struct Position {
    tx: String,
    seq: i64,
}

/// One outbox row, decoded into the event it carries.
pub(crate) fn row_to_event(source: &str, row: &sqlx::postgres::PgRow) -> Result<pb::Event, sqlx::Error> {
    let body: Vec<u8> = row.try_get("body")?;
    let stored = pb::Event::decode(body.as_slice()).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let occurred: DateTime<Utc> = row.try_get("occurred_at")?;
    let id: Uuid = row.try_get("id")?;
    let aggregate: Uuid = row.try_get("aggregate_id")?;
    let version: i32 = row.try_get("schema_version")?;
    Ok(pb::Event {
        id: id.to_string(),
        seq: row.try_get("seq")?,
        r#type: row.try_get("event_type")?,
        source: source.to_string(),
        aggregate_id: aggregate.to_string(),
        occurred_at: Some(proto_time::to_proto(occurred)),
        schema_version: u32::try_from(version).unwrap_or_default(),
        payload: stored.payload,
    })
}

impl Feed {
    /// Where `after_seq` is in delivery order; 0 is the start.
    async fn position(&self, after_seq: i64) -> Result<Position, Status> {
        if after_seq < 0 {
            return Err(error::invalid_argument("after_seq", "must not be negative"));
        }
        if after_seq == 0 {
            return Ok(Position { tx: "0".into(), seq: 0 });
        }
        let schema = self.schema;
        let tx: Option<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT tx::text FROM {schema}.outbox WHERE seq = $1")))
                .bind(after_seq)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| error::from_sqlx(&e))?;
        match tx {
            Some(tx) => Ok(Position { tx, seq: after_seq }),
            None => Err(error::invalid_argument("after_seq", format!("{schema} never issued event seq {after_seq}"))),
        }
    }

    /// The next servable events after `pos` (filtered by `types`), the
    /// position after them, and — when there were none — whether committed
    /// rows are held back by a running transaction.
    async fn next_batch(
        &self,
        pos: &Position,
        types: &[String],
    ) -> Result<(Vec<pb::Event>, Position, bool), sqlx::Error> {
        let schema = self.schema;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            // The position's text form must not be named `tx`: ORDER BY would
            // then sort by the text ("1000" < "999") instead of the xid8.
            "SELECT seq, id, event_type, aggregate_id, schema_version, body, occurred_at, tx::text AS tx_pos \
             FROM {schema}.outbox o \
             WHERE (o.tx, o.seq) > ($1::xid8, $2) AND o.tx < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY o.tx, o.seq LIMIT $3"
        )))
        .bind(&pos.tx)
        .bind(pos.seq)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        let mut next = pos.clone();
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            next = Position { tx: row.try_get("tx_pos")?, seq: row.try_get("seq")? };
            let kind: String = row.try_get("event_type")?;
            if types.is_empty() || types.contains(&kind) {
                events.push(row_to_event(schema, row)?);
            }
        }
        let held = if !rows.is_empty() {
            false
        } else {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM {schema}.outbox WHERE (tx, seq) > ($1::xid8, $2))"
            )))
            .bind(&next.tx)
            .bind(next.seq)
            .fetch_one(&self.pool)
            .await?
        };
        Ok((events, next, held))
    }

    /// Streams events into `out` until the subscriber leaves, stops
    /// reading, or the server stops.
    async fn pump(
        self,
        mut pos: Position,
        types: Vec<String>,
        out: tokio::sync::mpsc::Sender<Result<pb::SubscribeResponse, Status>>,
    ) {
        let mut wakeups = self.wakeups();
        loop {
            // Mark the signal seen first, then read: a commit between the two
            // changes the signal again and is still seen.
            wakeups.borrow_and_update();
            let (events, next, held) = match self.next_batch(&pos, &types).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(schema = self.schema, error = %e, "event feed read failed");
                    let _ = out.send(Err(error::from_sqlx(&e))).await;
                    return;
                }
            };
            let moved = next.seq != pos.seq;
            for event in events {
                match out.send_timeout(Ok(pb::SubscribeResponse { event: Some(event) }), SEND_TIMEOUT).await {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::SendTimeoutError::Timeout(_)) => {
                        tracing::info!(schema = self.schema, "subscriber stopped reading; ending its stream");
                        return;
                    }
                    Err(tokio::sync::mpsc::error::SendTimeoutError::Closed(_)) => return,
                }
            }
            pos = next;
            if moved {
                // More may be waiting right now; drain before sleeping.
                continue;
            }
            let wait = if held { HELD_RECHECK } else { IDLE_RECHECK };
            tokio::select! {
                changed = wakeups.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                () = self.stopping.wait() => return,
                () = out.closed() => return,
            }
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl EventFeedService for Feed {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = req.into_inner();
        let pos = self.position(req.after_seq).await?;
        for (i, t) in req.types.iter().enumerate() {
            if !crate::outbox::ALL_TYPES.contains(&t.as_str()) {
                return Err(error::invalid_argument(&format!("types[{i}]"), format!("unknown event type {t:?}")));
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(self.clone().pump(pos, req.types, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_consumers(
        &self,
        _req: Request<pb::ListConsumersRequest>,
    ) -> Result<Response<pb::ListConsumersResponse>, Status> {
        let consumers = self.consumers.status().await.map_err(|e| error::from_sqlx(&e))?;
        Ok(Response::new(pb::ListConsumersResponse { consumers }))
    }

    async fn list_parked_events(
        &self,
        req: Request<pb::ListParkedEventsRequest>,
    ) -> Result<Response<pb::ListParkedEventsResponse>, Status> {
        let req = req.into_inner();
        let size = match req.page_size {
            0 => 100,
            n @ 1..=500 => i64::from(n),
            _ => return Err(error::invalid_argument("page_size", "must be between 1 and 500")),
        };
        let events = self.consumers.parked(req.include_resolved, size).await.map_err(|e| error::from_sqlx(&e))?;
        Ok(Response::new(pb::ListParkedEventsResponse { events }))
    }

    async fn retry_parked_event(
        &self,
        req: Request<pb::RetryParkedEventRequest>,
    ) -> Result<Response<pb::RetryParkedEventResponse>, Status> {
        let id = Uuid::parse_str(&req.get_ref().event_id)
            .map_err(|_| error::invalid_argument("event_id", "must be a UUID"))?;
        let event = self.consumers.retry(id).await?;
        Ok(Response::new(pb::RetryParkedEventResponse { event: Some(event) }))
    }
}

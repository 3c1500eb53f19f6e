//! Consuming a peer's feed with exactly-once effect.
//!
//! For each event, in one transaction: record its id in `events_applied` (a
//! duplicate finds it there and changes nothing), apply the handler's effect,
//! and move the cursor. Events already received are applied up to 50 to a
//! transaction, a savepoint each. A crash anywhere before the commit leaves no trace;
//! after it, redelivery is a no-op. A handler error is retried a few times
//! with backoff; an event that still fails — or that the handler calls
//! poison — is parked with its error in `events_parked`, the cursor moves on,
//! and an admin can retry it through `RetryParkedEvent`.

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use crm_platform::client::Peer;
use futures_util::FutureExt;
use sqlx::{PgConnection, PgPool};
use tokio_stream::StreamExt;
use uuid::Uuid;

use crate::pb::{self, event_feed_service_client::EventFeedServiceClient};

mod parked;

/// Events applied in one transaction at most. Each runs under a savepoint,
/// and Postgres keeps at most 64 subtransactions per transaction in shared
/// memory before every snapshot gets slower.
const BATCH_MAX: usize = 50;

/// Attempts before an event that keeps failing is parked (about 12 s with
/// the backoff below). An outage of this service's own database parks
/// nothing: the consumer stops and follows the feed again from its cursor.
pub const MAX_ATTEMPTS: i32 = 6;

/// Why a handler could not apply an event.
#[derive(Debug)]
pub enum ApplyError {
    /// May succeed later (database hiccup, peer unavailable): retried.
    Retry(String),
    /// Will never succeed as it is (malformed, refers to nothing): parked at once.
    Poison(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Retry(m) => write!(f, "{m}"),
            ApplyError::Poison(m) => write!(f, "poison: {m}"),
        }
    }
}

impl ApplyError {
    /// The one transient-error rule of every consumer, read off the status
    /// the service itself would answer for `e` (its one error mapping): what
    /// a caller is told to retry — UNAVAILABLE (database or peer down, busy),
    /// ABORTED (a conflict), DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED — and
    /// INTERNAL (a fault that is not the event's; parked after
    /// [`MAX_ATTEMPTS`] if it stays) are retried; everything else (a rule
    /// refusing it, something it names not existing, a malformed value) is
    /// poison, parked at once. The message keeps the error in full, with its
    /// stable reason first when it has one.
    pub fn of<E: std::fmt::Display + Into<tonic::Status>>(e: E) -> ApplyError {
        let message = e.to_string();
        let status: tonic::Status = e.into();
        let message = match crm_platform::error::reason_of(&status) {
            Some(reason) if !message.starts_with(&reason) => format!("{reason}: {message}"),
            _ => message,
        };
        use tonic::Code::*;
        match status.code() {
            Unavailable | Aborted | DeadlineExceeded | ResourceExhausted | Internal | Unknown => {
                ApplyError::Retry(message)
            }
            _ => ApplyError::Poison(message),
        }
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Retry(e.to_string())
    }
}

pub type ApplyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ApplyError>> + Send + 'a>>;

/// Applies one peer's events inside the consumer's transaction (`conn`).
/// Whatever it writes — including events of its own — commits with the
/// event's id and the cursor, or not at all.
pub trait Handler: Send + Sync + 'static {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a>;
}

/// Several handlers on one peer's feed (one cursor per peer), chosen by the
/// event's type; a type none is given for is poison.
pub struct ByType(pub Vec<(&'static str, Arc<dyn Handler>)>);

impl Handler for ByType {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        match self.0.iter().find(|(t, _)| *t == event.r#type) {
            Some((_, h)) => h.apply(conn, event),
            None => Box::pin(async move { Err(read::wrong(event)) }),
        }
    }
}

/// This service's consumer of one peer's feed.
#[derive(Clone)]
pub struct Subscription {
    /// The peer: customers, complaints, dispatch or billing.
    pub source: &'static str,
    /// Event types to receive.
    pub types: &'static [&'static str],
    pub handler: Arc<dyn Handler>,
}

/// All consumers of one service: running them, their status, parked events.
pub struct Consumers {
    schema: &'static str,
    pool: PgPool,
    subscriptions: Vec<Subscription>,
}

/// The result of offering one event to a consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Parked,
}

fn uuid(field: &str, s: &str) -> Result<Uuid, ApplyError> {
    Uuid::parse_str(s).map_err(|_| ApplyError::Poison(format!("{field} {s:?} is not a UUID")))
}

impl Consumers {
    pub fn new(schema: &'static str, pool: PgPool, subscriptions: Vec<Subscription>) -> Self {
        Self { schema, pool, subscriptions }
    }

    fn subscription(&self, source: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.source == source)
    }

    /// Runs every consumer until the task is aborted, each reconnecting to
    /// its peer (`url_of(source)`) after any failure.
    pub async fn run(self: Arc<Self>, peers: HashMap<&'static str, Peer>) {
        let mut tasks = tokio::task::JoinSet::new();
        for sub in &self.subscriptions {
            let Some(peer) = peers.get(sub.source).cloned() else {
                tracing::error!(schema = self.schema, source = sub.source, "no address for the feed; not consuming it");
                continue;
            };
            let this = Arc::clone(&self);
            let source = sub.source;
            tasks.spawn(async move { this.consume(source, peer).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn consume(&self, source: &'static str, peer: Peer) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.follow(source, &peer).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::info!(schema = self.schema, source, error = %e, "event feed interrupted; resuming");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Follows one feed from the stored cursor until it ends or fails.
    async fn follow(&self, source: &'static str, peer: &Peer) -> Result<(), String> {
        let Some(sub) = self.subscription(source).cloned() else { return Ok(()) };
        let after_seq = self.cursor(source).await.map_err(|e| e.to_string())?;
        let mut client = EventFeedServiceClient::with_interceptor(peer.channel.clone(), peer.auth.clone());
        let req = pb::SubscribeRequest { after_seq, types: sub.types.iter().map(|t| (*t).to_string()).collect() };
        let mut stream = client.subscribe(req).await.map_err(|s| s.message().to_string())?.into_inner();
        tracing::info!(schema = self.schema, source, after_seq, "following event feed");
        while let Some(item) = stream.next().await {
            let mut batch = vec![item.map_err(|s| s.message().to_string())?.event.unwrap_or_default()];
            // Whatever else has already arrived goes into the same transaction.
            let mut failed = None;
            while batch.len() < BATCH_MAX {
                match stream.next().now_or_never() {
                    Some(Some(Ok(more))) => batch.push(more.event.unwrap_or_default()),
                    Some(Some(Err(s))) => {
                        failed = Some(s.message().to_string());
                        break;
                    }
                    Some(None) | None => break,
                }
            }
            self.deliver_batch(&sub, &batch).await.map_err(|e| e.to_string())?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn cursor(&self, source: &str) -> sqlx::Result<i64> {
        let schema = self.schema;
        let seq: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT after_seq FROM {schema}.event_cursors WHERE source = $1"
        )))
        .bind(source)
        .fetch_optional(&self.pool)
        .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn advance(&self, conn: &mut PgConnection, source: &str, seq: i64) -> sqlx::Result<()> {
        let schema = self.schema;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.event_cursors (source, after_seq) VALUES ($1, $2) \
             ON CONFLICT (source) DO UPDATE SET after_seq = GREATEST(event_cursors.after_seq, EXCLUDED.after_seq), \
             update_time = now()"
        )))
        .bind(source)
        .bind(seq)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records the id and applies the effect on `conn`; false for a
    /// duplicate (nothing done).
    async fn apply_in(
        &self,
        conn: &mut PgConnection,
        sub: &Subscription,
        event: &pb::Event,
    ) -> Result<bool, ApplyError> {
        let schema = self.schema;
        let id = uuid("event id", &event.id)?;
        let fresh = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.events_applied (event_id, source, seq, event_type) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id) DO NOTHING"
        )))
        .bind(id)
        .bind(sub.source)
        .bind(event.seq)
        .bind(&event.r#type)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            if event.schema_version != crate::outbox::SCHEMA_VERSION {
                return Err(ApplyError::Poison(format!("unknown schema version {}", event.schema_version)));
            }
            if event.payload.is_none() {
                return Err(ApplyError::Poison("the event carries no payload".into()));
            }
            sub.handler.apply(conn, event).await?;
        }
        Ok(fresh)
    }

    /// One attempt: the id, the effect and (when `move_cursor`) the cursor in
    /// one transaction.
    async fn attempt(&self, sub: &Subscription, event: &pb::Event, move_cursor: bool) -> Result<Outcome, ApplyError> {
        let mut tx = self.pool.begin().await?;
        let fresh = self.apply_in(&mut tx, sub, event).await?;
        if move_cursor {
            self.advance(&mut tx, sub.source, event.seq).await?;
        }
        tx.commit().await?;
        Ok(if fresh { Outcome::Applied } else { Outcome::Duplicate })
    }

    /// Consecutive events of one feed in one transaction, each under a
    /// savepoint: a poison event is rolled back alone and parked in the same
    /// transaction; any other failure undoes the batch, which is then
    /// delivered one event at a time (with retries).
    async fn attempt_batch(&self, sub: &Subscription, events: &[pb::Event]) -> Result<(), ApplyError> {
        let mut tx = self.pool.begin().await?;
        for event in events {
            sqlx::query("SAVEPOINT event").execute(&mut *tx).await?;
            match self.apply_in(&mut tx, sub, event).await {
                Ok(_) => {
                    sqlx::query("RELEASE SAVEPOINT event").execute(&mut *tx).await?;
                }
                Err(e @ ApplyError::Poison(_)) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT event").execute(&mut *tx).await?;
                    tracing::warn!(schema = self.schema, source = sub.source, event = %event.id, kind = %event.r#type,
                        error = %e, "parking event");
                    self.park_in(&mut tx, sub, event, &e.to_string(), 1).await?;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(last) = events.last() {
            self.advance(&mut tx, sub.source, last.seq).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Offers consecutive events of `sub`'s feed, in one transaction when
    /// they all apply (or are poison), one at a time otherwise.
    pub async fn deliver_batch(&self, sub: &Subscription, events: &[pb::Event]) -> Result<(), sqlx::Error> {
        if events.len() > 1 {
            match self.attempt_batch(sub, events).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::info!(schema = self.schema, source = sub.source, error = %e,
                    "batch not applied; delivering its events one by one"),
            }
        }
        for event in events {
            self.deliver(sub, event).await?;
        }
        Ok(())
    }

    /// Offers `event` from `sub`'s feed: applied, a duplicate, or parked.
    /// Only a failure to reach the database at all is returned as an error
    /// (the feed is then followed again from the cursor).
    pub async fn deliver(&self, sub: &Subscription, event: &pb::Event) -> Result<Outcome, sqlx::Error> {
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match self.attempt(sub, event, true).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => e,
            };
            let poison = matches!(err, ApplyError::Poison(_));
            if !poison && attempts >= MAX_ATTEMPTS {
                // Down is not poison: do not park what a healthy database would take.
                sqlx::query("SELECT 1").execute(&self.pool).await?;
            }
            if poison || attempts >= MAX_ATTEMPTS {
                tracing::warn!(schema = self.schema, source = sub.source, event = %event.id, kind = %event.r#type,
                    error = %err, attempts, "parking event");
                self.park(sub, event, &err.to_string(), attempts).await?;
                return Ok(Outcome::Parked);
            }
            tracing::info!(schema = self.schema, source = sub.source, event = %event.id, error = %err, attempts,
                "event not applied; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 3).min(Duration::from_secs(5));
        }
    }
}

/// Helpers for handlers reading payload fields.
pub mod read {
    use super::{ApplyError, Uuid};

    /// A required UUID field of a payload; a bad one makes the event poison.
    pub fn id(field: &str, s: &str) -> Result<Uuid, ApplyError> {
        super::uuid(field, s)
    }

    /// The payload the subscription asked for, or poison.
    pub fn wrong(event: &crate::pb::Event) -> ApplyError {
        ApplyError::Poison(format!("unexpected event type {}", event.r#type))
    }
}

#[cfg(test)]
mod transience_tests {
    use super::*;

    struct Failed(tonic::Status);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed: {}", self.0.message())
        }
    }

    impl From<Failed> for tonic::Status {
        fn from(f: Failed) -> Self {
            f.0
        }
    }

    /// Issue 18: one rule for every consumer, read off the service's status.
    #[test]
    fn what_a_caller_would_retry_is_retried_and_the_rest_is_poison() {
        let retried = |s| matches!(ApplyError::of(Failed(s)), ApplyError::Retry(_));
        assert!(retried(tonic::Status::unavailable("db down")));
        assert!(retried(tonic::Status::aborted("conflict")));
        assert!(retried(tonic::Status::deadline_exceeded("slow")));
        assert!(retried(tonic::Status::internal("bug")));
        assert!(!retried(tonic::Status::not_found("no customer")));
        assert!(!retried(tonic::Status::invalid_argument("bad")));
        let rule = crm_platform::error::with_reason(tonic::Code::FailedPrecondition, "ACCOUNT_CLOSED", "closed", &[]);
        match ApplyError::of(Failed(rule)) {
            ApplyError::Poison(m) => assert_eq!(m, "ACCOUNT_CLOSED: failed: closed"),
            other => panic!("{other}"),
        }
    }
}

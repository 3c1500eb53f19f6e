//! Idempotency keys: every mutating RPC carries a client-chosen `request_id`.
//! The first execution stores the encoded response in the same transaction as
//! its effect; a retry with the same key returns that response and changes
//! nothing; the same key with a different body (or from a different caller)
//! is INVALID_ARGUMENT with reason `REQUEST_ID_REUSED`. A concurrent retry
//! blocks on the key's primary key until the first commits, then replays it.
//! Failed requests store nothing, so they can be retried.
//!
//! Each schema has a table of this shape (see the services' first migration):
//! `request_id uuid primary key, principal text, method text, request bytea,
//! response bytea, created_at timestamptz`.

use std::time::Duration;

use crm_domain::ids::RequestId;
use prost::Message;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};
use tonic::{Code, Status};

use crate::{Principal, error};

/// A mutating call's start: its stored first response, or a fresh
/// transaction holding its key (or what was opened with it: see
/// [`IdempotentCall::open_change`]).
pub enum Opened<R, F = Transaction<'static, Postgres>> {
    Replay(R),
    Fresh(F),
}

impl<R, F> Opened<R, F> {
    /// The fresh part turned into something else; a replay stays a replay.
    pub fn map<G>(self, f: impl FnOnce(F) -> G) -> Opened<R, G> {
        match self {
            Opened::Replay(r) => Opened::Replay(r),
            Opened::Fresh(x) => Opened::Fresh(f(x)),
        }
    }
}

/// The transaction of a call that has not run yet; for a call that already
/// ran, `return Ok(first response)` from the enclosing handler:
///
/// ```ignore
/// let mut tx = crm_platform::fresh_or_replay!(call.open(&pool).await?);
/// ```
#[macro_export]
macro_rules! fresh_or_replay {
    ($opened:expr) => {
        match $opened {
            $crate::idempotency::Opened::Replay(r) => return Ok(r),
            $crate::idempotency::Opened::Fresh(tx) => tx,
        }
    };
}

/// One mutating call, identified by its key.
pub struct IdempotentCall {
    table: &'static str,
    request_id: RequestId,
    principal: String,
    method: &'static str,
    request: Vec<u8>,
}

impl IdempotentCall {
    /// `table` is schema-qualified, e.g. `customers.idempotency_keys`; it is
    /// a constant of the calling service, never user input.
    pub fn new<M: Message>(
        table: &'static str,
        method: &'static str,
        principal: &Principal,
        request_id: &str,
        request: &M,
    ) -> Result<Self, Status> {
        let request_id = RequestId::parse(request_id).map_err(|e| error::invalid_argument("request_id", e.reason))?;
        Ok(Self { table, request_id, principal: principal.sub.clone(), method, request: request.encode_to_vec() })
    }

    /// The RPC this call is (e.g. `UpdateCustomer`).
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Opens the call's transaction and claims its key: a call that already
    /// ran yields its first response instead of a transaction.
    pub async fn open<R: Message + Default>(&self, pool: &PgPool) -> Result<Opened<R>, Status> {
        let mut tx = pool.begin().await.map_err(|e| error::from_sqlx(&e))?;
        Ok(match self.claim::<R>(&mut tx).await? {
            Some(done) => Opened::Replay(done),
            None => Opened::Fresh(tx),
        })
    }

    /// Opens a change to one record: claims the key (a call that already
    /// ran yields its first response), then `lock` loads and checks the
    /// record in the fresh transaction, under its row lock. What `lock`
    /// refuses rolls the transaction back, key included.
    pub async fn open_change<R, T, E>(
        &self,
        pool: &PgPool,
        lock: impl AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<Opened<R, (Transaction<'static, Postgres>, T)>, E>
    where
        R: Message + Default,
        E: From<Status>,
    {
        let mut tx = match self.open::<R>(pool).await? {
            Opened::Replay(r) => return Ok(Opened::Replay(r)),
            Opened::Fresh(tx) => tx,
        };
        let record = lock(&mut tx).await?;
        Ok(Opened::Fresh((tx, record)))
    }

    /// Runs `write` in the call's transaction, stores the response it
    /// builds with the key and commits: the effect and the answer a retry
    /// will get are one.
    pub async fn finish<R, E>(
        self,
        mut tx: Transaction<'static, Postgres>,
        write: impl AsyncFnOnce(&mut PgConnection) -> Result<R, E>,
    ) -> Result<R, E>
    where
        R: Message,
        E: From<Status>,
    {
        let response = write(&mut tx).await?;
        self.commit(tx, &response).await?;
        Ok(response)
    }

    /// Claims the key inside `tx`. `Some(response)` means this call already
    /// ran: return it and do nothing else.
    pub async fn claim<R: Message + Default>(&self, tx: &mut PgConnection) -> Result<Option<R>, Status> {
        // The table name is a constant of the calling service, never input.
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (request_id, principal, method, request) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (request_id) DO NOTHING",
            self.table
        )))
        .bind(self.request_id.0)
        .bind(&self.principal)
        .bind(self.method)
        .bind(&self.request)
        .execute(&mut *tx)
        .await
        .map_err(|e| error::from_sqlx(&e))?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let (principal, method, request, response): (String, String, Vec<u8>, Option<Vec<u8>>) =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT principal, method, request, response FROM {} WHERE request_id = $1",
                self.table
            )))
            .bind(self.request_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| error::from_sqlx(&e))?;
        if principal != self.principal || method != self.method || request != self.request {
            return Err(error::with_reason(
                Code::InvalidArgument,
                "REQUEST_ID_REUSED",
                "request_id was already used for a different request; use a new request_id",
                &[("request_id", self.request_id.0.to_string())],
            ));
        }
        let bytes = response.ok_or_else(|| error::internal(&"idempotency key committed without a response"))?;
        R::decode(bytes.as_slice()).map(Some).map_err(|e| error::internal(&e))
    }

    /// Stores the response with the key and commits the transaction.
    pub async fn commit<R: Message>(self, mut tx: Transaction<'_, Postgres>, response: &R) -> Result<(), Status> {
        sqlx::query(AssertSqlSafe(format!("UPDATE {} SET response = $2 WHERE request_id = $1", self.table)))
            .bind(self.request_id.0)
            .bind(response.encode_to_vec())
            .execute(&mut *tx)
            .await
            .map_err(|e| error::from_sqlx(&e))?;
        tx.commit().await.map_err(|e| error::from_sqlx(&e))
    }
}

/// Deletes keys older than `ttl`; returns how many. Safe to run on every
/// replica at once: the delete is idempotent.
pub async fn purge_once(pool: &PgPool, table: &'static str, ttl: Duration) -> Result<u64, sqlx::Error> {
    let secs = ttl.as_secs_f64();
    let q = format!("DELETE FROM {table} WHERE created_at < now() - make_interval(secs => $1)");
    Ok(sqlx::query(AssertSqlSafe(q)).bind(secs).execute(pool).await?.rows_affected())
}

/// Runs `purge_once` every `every` until the pool closes.
pub async fn purge_loop(pool: PgPool, table: &'static str, ttl: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match purge_once(&pool, table, ttl).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(table, purged = n, "idempotency keys purged"),
            Err(e) => tracing::warn!(table, error = %e, "idempotency purge failed"),
        }
    }
}

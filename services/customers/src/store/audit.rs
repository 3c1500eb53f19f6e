//! CUS-13 audit trail: who did what when. Changes are recorded by triggers
//! (migrations 3 and 20261201000001) from the actor the API sets on each
//! transaction; reads of contact details are recorded here, through
//! `ReadLog`.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Reads gathered into one insert at most.
const READ_BATCH: usize = 512;
/// Inserts of gathered reads in flight at once: while one commits, the next
/// batch gathers and goes, so a caller waits for about one commit, not for
/// the commit before it as well.
const WRITERS: usize = 3;

struct PendingRead {
    actor: String,
    action: &'static str,
    customers: Vec<Uuid>,
    request_id: Option<String>,
    done: oneshot::Sender<std::result::Result<(), tonic::Status>>,
}

/// Records reads of contact details durably without a commit per read
/// (group commit): a caller hands its record to the writer and waits; the
/// writer inserts everything gathered meanwhile in one statement (up to
/// `WRITERS` such statements in flight), and answers each caller once its
/// statement has committed. A read is answered only after its record is in
/// the trail.
#[derive(Clone)]
pub struct ReadLog {
    tx: mpsc::Sender<PendingRead>,
}

impl ReadLog {
    /// Starts the writer on `pool`; it stops when every `ReadLog` is gone.
    pub fn start(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(4 * READ_BATCH);
        tokio::spawn(write_reads(pool, rx));
        Self { tx }
    }

    /// Records that `actor` read the contact details of `customers`, and
    /// returns once that is committed.
    pub async fn record(
        &self,
        actor: &str,
        action: &'static str,
        customers: Vec<Uuid>,
        request_id: Option<String>,
    ) -> Result<()> {
        if customers.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let pending = PendingRead { actor: actor.to_string(), action, customers, request_id, done };
        let stopped = || Error::Status(tonic::Status::unavailable("the audit trail writer has stopped"));
        self.tx.send(pending).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?.map_err(Error::Status)
    }
}

async fn write_reads(pool: PgPool, mut rx: mpsc::Receiver<PendingRead>) {
    let writers = std::sync::Arc::new(tokio::sync::Semaphore::new(WRITERS));
    while let Some(first) = rx.recv().await {
        // Wait for a free writer first: what arrives meanwhile joins this batch.
        let Ok(permit) = writers.clone().acquire_owned().await else { return };
        let mut batch: Vec<PendingRead> = Vec::with_capacity(READ_BATCH);
        batch.push(first);
        while batch.len() < READ_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            insert_reads(&pool, batch).await;
            drop(permit);
        });
    }
}

/// One group commit: inserts the records of `batch` and answers their callers.
async fn insert_reads(pool: &PgPool, batch: Vec<PendingRead>) {
    let (mut actors, mut actions, mut ids, mut requests) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for p in &batch {
        for c in &p.customers {
            actors.push(p.actor.as_str());
            actions.push(p.action);
            ids.push(*c);
            requests.push(p.request_id.as_deref());
        }
    }
    let result = sqlx::query(
        "INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id) \
         SELECT a, b, 'read', 'customers', c, c::text, r FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[]) \
         AS t(a, b, c, r)",
    )
    .bind(&actors)
    .bind(&actions)
    .bind(&ids)
    .bind(&requests)
    .execute(pool)
    .await
    .map(|_| ())
    .map_err(|e| crm_platform::error::from_sqlx(&e));
    metrics::histogram!("crm_customers_read_audit_batch").record(batch.len() as f64);
    for p in batch {
        let _ = p.done.send(result.clone());
    }
}

/// Names the caller, the RPC and its request id for the audit triggers of
/// this transaction (transaction-local settings).
pub async fn set_actor(conn: &mut PgConnection, actor: &str, action: &str, request_id: Option<&str>) -> Result<()> {
    sqlx::query(
        "SELECT set_config('crm.actor', $1, true), set_config('crm.action', $2, true), \
         set_config('crm.request_id', $3, true)",
    )
    .bind(actor)
    .bind(action)
    .bind(request_id.unwrap_or(""))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that `actor` read the contact details of `customers`.
pub async fn record_reads(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    customers: &[Uuid],
    request_id: Option<&str>,
) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id) \
         SELECT $1, $2, 'read', 'customers', c, c::text, $4 FROM unnest($3::uuid[]) AS c",
    )
    .bind(actor)
    .bind(action)
    .bind(customers)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub operation: String,
    pub table_name: String,
    pub row_id: Option<String>,
    pub changed: Option<Vec<String>>,
    pub request_id: Option<String>,
}

/// The trail of a customer (and of the records merged into it), newest first,
/// before event `before` when paging.
pub async fn audit_events(
    conn: &mut PgConnection,
    customer: CustomerId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    Ok(sqlx::query_as(
        "SELECT id, occurred_at, actor, action, operation, table_name, row_id, changed, request_id \
         FROM customers.audit_log \
         WHERE (customer_id = $1 OR customer_id IN (SELECT id FROM customers.customers WHERE merged_into = $1)) \
           AND ($2::bigint IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(customer.0)
    .bind(before)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?)
}

//! Idempotent load: several clients send mutating requests with known
//! `request_id`s and retry every one whose answer they did not see (same
//! key, same bytes) until it is answered; then the database is asked what
//! was applied. Used under kill -9, SIGTERM and Postgres outages.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use chrono::{DateTime, Utc};
use crm_domain::Role;
use crm_proto::{
    billing::v1 as bpb, common::v1 as common, complaints::v1 as cpb, customers::v1 as kpb, dispatch::v1 as dpb,
};
use prost::Message;
use sqlx::PgPool;
use tonic::{Code, transport::Channel};

use crate::{
    Error,
    report::{Tally, Verdict},
    system::System,
    wire::{self, CallOptions},
};

/// Which mutating RPC a load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// customers CreateCustomer
    Customers,
    /// complaints RegisterComplaint
    Complaints,
    /// dispatch CreateWorkOrder
    Dispatch,
    /// billing RecordPayment
    Billing,
}

impl Kind {
    pub fn service(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Complaints => "complaints",
            Kind::Dispatch => "dispatch",
            Kind::Billing => "billing",
        }
    }

    pub fn of(service: &str) -> Option<Kind> {
        [Kind::Customers, Kind::Complaints, Kind::Dispatch, Kind::Billing].into_iter().find(|k| k.service() == service)
    }

    pub fn rpc(self) -> &'static str {
        match self {
            Kind::Customers => "CreateCustomer",
            Kind::Complaints => "RegisterComplaint",
            Kind::Dispatch => "CreateWorkOrder",
            Kind::Billing => "RecordPayment",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Customers => "/crm.customers.v1.CustomerService/CreateCustomer",
            Kind::Complaints => "/crm.complaints.v1.ComplaintService/RegisterComplaint",
            Kind::Dispatch => "/crm.dispatch.v1.DispatchService/CreateWorkOrder",
            Kind::Billing => "/crm.billing.v1.BillingService/RecordPayment",
        }
    }

    fn role(self) -> Role {
        match self {
            Kind::Customers => Role::Sales,
            Kind::Complaints => Role::ServiceDesk,
            Kind::Dispatch => Role::Dispatcher,
            Kind::Billing => Role::Finance,
        }
    }

    /// The id of what the response says was created.
    fn created_id(self, body: &[u8]) -> Option<String> {
        match self {
            Kind::Customers => kpb::CreateCustomerResponse::decode(body).ok()?.customer.map(|c| c.id),
            Kind::Complaints => cpb::RegisterComplaintResponse::decode(body).ok()?.complaint.map(|c| c.id),
            Kind::Dispatch => dpb::CreateWorkOrderResponse::decode(body).ok()?.work_order.map(|w| w.id),
            Kind::Billing => Some(bpb::RecordPaymentResponse::decode(body).ok()?.payment_id),
        }
    }

    /// What was stored for the tags starting with `prefix`: tag → (id,
    /// rows, first creation time).
    async fn stored(self, pool: &PgPool, prefix: &str) -> Result<HashMap<String, Stored>, Error> {
        let sql = match self {
            Kind::Customers => {
                "SELECT summary, min(id::text), count(*), min(created_at) FROM customers.customers \
                 WHERE summary LIKE $1 GROUP BY summary"
            }
            Kind::Complaints => {
                "SELECT description, min(id::text), count(*), min(registered_at) FROM complaints.complaints \
                 WHERE description LIKE $1 GROUP BY description"
            }
            Kind::Dispatch => {
                "SELECT description, min(id::text), count(*), min(created_at) FROM dispatch.work_orders \
                 WHERE description LIKE $1 GROUP BY description"
            }
            Kind::Billing => {
                "SELECT reference, min(id::text), count(*), min(created_at) FROM billing.funds \
                 WHERE reference LIKE $1 GROUP BY reference"
            }
        };
        let rows: Vec<(String, String, i64, DateTime<Utc>)> =
            sqlx::query_as(sql).bind(format!("{prefix}%")).fetch_all(pool).await?;
        Ok(rows.into_iter().map(|(tag, id, n, at)| (tag, Stored { id, rows: n, created_at: at })).collect())
    }
}

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    rows: i64,
    created_at: DateTime<Utc>,
}

/// What a load needs that must exist first.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pub customer_id: String,
    /// Billing: the account paid into (a fresh one per load).
    pub account_id: String,
}

/// One request of a load.
#[derive(Debug, Clone)]
pub struct Item {
    pub tag: String,
    pub body: Vec<u8>,
    pub amount: i64,
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `i`-th request of a load tagged `prefix`.
pub fn item(kind: Kind, prefix: &str, i: usize, fx: &Fixture) -> Item {
    let tag = format!("{prefix}{i:05}");
    let amount = 100 + i as i64;
    let body = match kind {
        Kind::Customers => kpb::CreateCustomerRequest {
            request_id: request_id(),
            customer: Some(kpb::Customer {
                kind: kpb::PartyKind::Organization as i32,
                display_name: format!("演练燃气服务{i:05}号有限公司"),
                region: "CN-BJ".into(),
                summary: tag.clone(),
                ..Default::default()
            }),
            confirm_not_duplicate: true,
        }
        .encode_to_vec(),
        Kind::Complaints => cpb::RegisterComplaintRequest {
            request_id: request_id(),
            customer_id: fx.customer_id.clone(),
            channel: cpb::Channel::Email as i32,
            category: cpb::Category::ServiceQuality as i32,
            department: "field-north".into(),
            urgency: cpb::Urgency::Normal as i32,
            description: tag.clone(),
            references: None,
            report_received_on: None,
        }
        .encode_to_vec(),
        Kind::Dispatch => dpb::CreateWorkOrderRequest {
            request_id: request_id(),
            customer_id: fx.customer_id.clone(),
            kind: dpb::WorkOrderKind::Maintenance as i32,
            urgency: dpb::Urgency::Normal as i32,
            site_address: "北京市朝阳区建国路 1 号".into(),
            contact_name: "王经理".into(),
            contact_phone: "13800138000".into(),
            description: tag.clone(),
            required_skills: vec!["gps".into()],
            territory: "north".into(),
            installation: None,
            repair: None,
        }
        .encode_to_vec(),
        Kind::Billing => bpb::RecordPaymentRequest {
            request_id: request_id(),
            account_id: fx.account_id.clone(),
            method: bpb::PaymentMethod::Transfer as i32,
            amount: Some(common::Money { amount_minor: amount, currency_code: "CNY".into() }),
            reference: tag.clone(),
        }
        .encode_to_vec(),
    };
    Item { tag, body, amount }
}

/// Codes a well-behaved client retries.
pub fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
    )
}

/// One attempt of one request.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub item: usize,
    pub started: Instant,
    pub ended: Instant,
    pub ended_wall: SystemTime,
    pub code: Code,
    pub message: String,
}

/// What a load saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Per item: the id in the response that answered it.
    pub answered: Vec<Option<String>>,
    pub attempts: Vec<Attempt>,
    /// Items given up on: a code no client retries, or time ran out.
    pub fatal: Vec<(usize, Code, String)>,
    pub codes: Tally,
}

/// A load in progress: items answered so far.
#[derive(Clone)]
pub struct Progress(Arc<AtomicUsize>);

impl Progress {
    pub fn answered(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct Load {
    pub kind: Kind,
    pub prefix: String,
    pub items: Arc<Vec<Item>>,
    pub fixture: Fixture,
    handle: tokio::task::JoinHandle<Seen>,
    pub progress: Progress,
}

/// How much load, from how many clients.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub requests: usize,
    /// Concurrent clients, each its own principal and connection.
    pub clients: usize,
    /// At most one call per `pace` per client.
    pub pace: Duration,
    /// Retrying stops this long after the start.
    pub give_up: Duration,
}

/// Starts the load of `plan`.
pub fn start(sys: &System, kind: Kind, prefix: String, fixture: Fixture, plan: Plan) -> Result<Load, Error> {
    let Plan { requests, clients, pace, give_up } = plan;
    let items: Arc<Vec<Item>> = Arc::new((0..requests).map(|i| item(kind, &prefix, i, &fixture)).collect());
    let url = sys.service(kind.service())?.url();
    let seen = Arc::new(Mutex::new(Seen { answered: vec![None; requests], ..Seen::default() }));
    let progress = Progress(Arc::new(AtomicUsize::new(0)));
    let deadline = Instant::now() + give_up;
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let token = sys.token(&[kind.role()], &format!("faults-{}-{c}", kind.role().as_str()))?;
        let channel = wire::channel(&url)?;
        let (items, seen, progress) = (items.clone(), seen.clone(), progress.clone());
        tasks.push(tokio::spawn(client(
            kind,
            c,
            clients.max(1),
            channel,
            token,
            items,
            seen,
            progress,
            pace,
            deadline,
        )));
    }
    let handle = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
        std::mem::take(&mut *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    });
    Ok(Load { kind, prefix, items, fixture, handle, progress })
}

#[allow(clippy::too_many_arguments)]
async fn client(
    kind: Kind,
    me: usize,
    of: usize,
    channel: Channel,
    token: String,
    items: Arc<Vec<Item>>,
    seen: Arc<Mutex<Seen>>,
    progress: Progress,
    pace: Duration,
    deadline: Instant,
) {
    let opts = CallOptions { timeout: Duration::from_secs(8), ..CallOptions::default() };
    for i in (me..items.len()).step_by(of) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let next = Instant::now() + pace;
            let out = wire::call(channel.clone(), kind.path(), Some(&token), vec![items[i].body.clone()], opts).await;
            let attempt = Attempt {
                item: i,
                started: out.started,
                ended: Instant::now(),
                ended_wall: SystemTime::now(),
                code: out.code,
                message: out.message.clone(),
            };
            let answered = out.ok();
            let give_up = !answered && (!retryable(out.code) || Instant::now() > deadline);
            {
                let mut s = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.codes.add(out.code);
                s.attempts.push(attempt);
                if answered {
                    s.answered[i] = Some(out.first.as_deref().and_then(|b| kind.created_id(b)).unwrap_or_default());
                } else if give_up {
                    s.fatal.push((i, out.code, out.message));
                }
            }
            if answered {
                progress.0.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep_until(next.into()).await;
                break;
            }
            if give_up {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(400));
        }
    }
}

impl Load {
    /// Waits until every client is done.
    pub async fn finish(self) -> Result<(Kind, String, Arc<Vec<Item>>, Fixture, Seen), Error> {
        let seen = self.handle.await?;
        Ok((self.kind, self.prefix, self.items, self.fixture, seen))
    }
}

/// What the database holds after a load, against what the clients saw.
#[derive(Debug, Default)]
pub struct Audit {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub unanswered: usize,
    pub id_mismatch: Vec<String>,
    /// Applied, but the attempt that applied it saw an error: its answer
    /// came from the stored response on a retry.
    pub replayed: usize,
    pub retried_items: usize,
}

pub async fn audit(pool: &PgPool, kind: Kind, prefix: &str, items: &[Item], seen: &Seen) -> Result<Audit, Error> {
    let stored = kind.stored(pool, prefix).await?;
    let mut a = Audit::default();
    let mut first_failure: HashMap<usize, SystemTime> = HashMap::new();
    for at in &seen.attempts {
        if at.code != Code::Ok {
            first_failure.entry(at.item).or_insert(at.ended_wall);
        }
    }
    a.retried_items = first_failure.len();
    for (i, it) in items.iter().enumerate() {
        match stored.get(&it.tag) {
            None => a.lost.push(it.tag.clone()),
            Some(s) => {
                if s.rows > 1 {
                    a.duplicated.push(format!("{} ×{}", it.tag, s.rows));
                }
                if let Some(Some(id)) = seen.answered.get(i)
                    && !id.is_empty()
                    && *id != s.id
                {
                    a.id_mismatch.push(format!("{}: answered {id}, stored {}", it.tag, s.id));
                }
                if let Some(failed_at) = first_failure.get(&i)
                    && SystemTime::from(s.created_at) < *failed_at
                {
                    a.replayed += 1;
                }
            }
        }
        if seen.answered.get(i).is_none_or(Option::is_none) {
            a.unanswered += 1;
        }
    }
    Ok(a)
}

impl Audit {
    /// Adds the audit's failures to `v`.
    pub fn judge(&self, v: &mut Verdict) {
        v.check(self.lost.is_empty(), || format!("{} lost: {}", self.lost.len(), sample(&self.lost)));
        v.check(self.duplicated.is_empty(), || {
            format!("{} duplicated: {}", self.duplicated.len(), sample(&self.duplicated))
        });
        v.check(self.unanswered == 0, || format!("{} requests never answered", self.unanswered));
        v.check(self.id_mismatch.is_empty(), || {
            format!("{} answers name another row than stored: {}", self.id_mismatch.len(), sample(&self.id_mismatch))
        });
    }
}

fn sample(v: &[String]) -> String {
    let mut s: Vec<&str> = v.iter().take(5).map(String::as_str).collect();
    if v.len() > 5 {
        s.push("…");
    }
    s.join(", ")
}

/// Creates what loads need: a customer (for complaints and dispatch) and,
/// for billing, a fresh account of its own.
pub async fn fixture(sys: &System, kind: Kind, label: &str) -> Result<Fixture, Error> {
    let customer_id = customer(sys, label).await?;
    let account_id = if kind == Kind::Billing { account(sys, &customer_id).await? } else { String::new() };
    Ok(Fixture { customer_id, account_id })
}

/// Calls `path` with a typed request until it is answered (set-up calls are
/// retried through faults of the previous scenario).
async fn setup_call<Req: Message, Resp: Message + Default>(
    url: &str,
    path: &str,
    token: &str,
    req: &Req,
) -> Result<Resp, Error> {
    let channel = wire::channel(url)?;
    let started = Instant::now();
    loop {
        let out =
            wire::call(channel.clone(), path, Some(token), vec![req.encode_to_vec()], CallOptions::default()).await;
        if out.ok() {
            return Ok(Resp::decode(out.first.unwrap_or_default().as_slice())?);
        }
        if !retryable(out.code) || started.elapsed() > Duration::from_secs(30) {
            return Err(format!("set-up {path}: {:?} {}", out.code, out.message).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn customer(sys: &System, label: &str) -> Result<String, Error> {
    let req = kpb::CreateCustomerRequest {
        request_id: request_id(),
        customer: Some(kpb::Customer {
            kind: kpb::PartyKind::Organization as i32,
            display_name: format!("故障演练{label}客户"),
            region: "CN-BJ".into(),
            branch: "bj".into(),
            ..Default::default()
        }),
        confirm_not_duplicate: true,
    };
    let token = sys.token(&[Role::Admin], "faults-admin")?;
    let resp: kpb::CreateCustomerResponse =
        setup_call(&sys.service("customers")?.url(), "/crm.customers.v1.CustomerService/CreateCustomer", &token, &req)
            .await?;
    Ok(resp.customer.map(|c| c.id).ok_or("set-up customer: nothing created")?)
}

pub async fn account(sys: &System, customer_id: &str) -> Result<String, Error> {
    let req = bpb::OpenAccountRequest {
        request_id: request_id(),
        customer_id: customer_id.to_string(),
        kind: bpb::AccountKind::Postpaid as i32,
        customer_class: bpb::CustomerClass::Commercial as i32,
        currency_code: String::new(),
    };
    let token = sys.token(&[Role::Finance], "faults-finance")?;
    let resp: bpb::OpenAccountResponse =
        setup_call(&sys.service("billing")?.url(), "/crm.billing.v1.BillingService/OpenAccount", &token, &req).await?;
    Ok(resp.account.map(|a| a.id).ok_or("set-up account: none")?)
}

/// BIL-9 for one account and the whole ledger: balance = sum of entries,
/// and the account's balance is minus what was paid into it.
pub async fn ledger(pool: &PgPool, account_id: &str, paid: i64) -> Result<(i64, i64, i64, i64), Error> {
    let (balance, entries): (i64, i64) = sqlx::query_as(
        "SELECT a.balance_minor, coalesce((SELECT sum(l.amount_minor) FROM billing.ledger_entries l \
         WHERE l.account_id = a.id), 0)::bigint FROM billing.accounts a WHERE a.id = $1::uuid",
    )
    .bind(account_id)
    .fetch_one(pool)
    .await?;
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT a.id FROM billing.accounts a LEFT JOIN billing.ledger_entries l \
         ON l.account_id = a.id GROUP BY a.id, a.balance_minor \
         HAVING a.balance_minor <> coalesce(sum(l.amount_minor), 0)) m",
    )
    .fetch_one(pool)
    .await?;
    Ok((balance, entries, -paid, mismatched))
}

/// Adds the ledger checks of a billing load to `v`; returns its summary.
pub async fn judge_ledger(pool: &PgPool, fx: &Fixture, items: &[Item], v: &mut Verdict) -> Result<String, Error> {
    let paid: i64 = items.iter().map(|i| i.amount).sum();
    let (balance, entries, expected, mismatched) = ledger(pool, &fx.account_id, paid).await?;
    v.check(balance == entries, || format!("account balance {balance} ≠ sum of its ledger entries {entries} (BIL-9)"));
    v.check(balance == expected, || format!("account balance {balance} ≠ −(payments sent) {expected}"));
    v.check(mismatched == 0, || format!("{mismatched} accounts whose balance ≠ their ledger (BIL-9)"));
    // The balance is kept by a trigger on the ledger, so balance = ledger
    // holds by construction; what the faults can break is the number of
    // postings: one payment entry per payment sent, no more, no fewer.
    let (postings, funds): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM billing.ledger_entries WHERE account_id = $1::uuid AND kind = 'payment'), \
         (SELECT count(*) FROM billing.funds WHERE account_id = $1::uuid AND kind = 'payment')",
    )
    .bind(&fx.account_id)
    .fetch_one(pool)
    .await?;
    let sent = items.len() as i64;
    v.check(postings == sent, || format!("{postings} payment ledger entries for {sent} payments sent"));
    v.check(funds == sent, || format!("{funds} payments stored for {sent} payments sent"));
    Ok(format!(
        "balance {balance} = ledger {entries} = −paid {paid} ({postings} ledger payment entries, {funds} payments for \
         {sent} sent); accounts off ledger: {mismatched}"
    ))
}

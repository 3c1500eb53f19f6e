//! Scenario 2: Postgres goes away under load — `pg_ctl restart -m fast`,
//! then a stop of a few seconds and a start. Meanwhile every service is read
//! from in a loop and billing takes retried payments. During an outage calls
//! fail UNAVAILABLE (never INTERNAL), health says NOT_SERVING while the
//! database is down, and calls succeed again within 3 s of its return; no
//! payment is lost or doubled (X-4, BIL-5, BIL-9).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crm_domain::Role;
use crm_proto::{billing::v1 as bpb, complaints::v1 as cpb, customers::v1 as kpb, dispatch::v1 as dpb};
use prost::Message;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    Config, Error,
    load::{self, Kind},
    report::{Tally, Verdict},
    system::{self, System},
    wire::{self, CallOptions},
};

/// How long calls may take to succeed again once Postgres is back.
const RECOVERY_BUDGET: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct Call {
    started: Instant,
    ended: Instant,
    code: Code,
    message: String,
}

/// Health answers over time.
type HealthLog = Arc<Mutex<Vec<(Instant, Option<ServingStatus>)>>>;

struct Reader {
    service: &'static str,
    calls: Arc<Mutex<Vec<Call>>>,
    health: HealthLog,
}

/// One fault's timeline.
struct Window {
    name: &'static str,
    /// When the fault began (the command was issued).
    from: Instant,
    /// When Postgres accepted connections again.
    up: Instant,
    /// For a stop: when it was down and when the start began.
    down: Option<(Instant, Instant)>,
}

pub async fn run(sys: &mut System, cfg: &Config, run_id: &str) -> Result<Vec<Verdict>, Error> {
    let fixture = load::fixture(sys, Kind::Billing, "pg-outage").await?;
    let reads: Vec<(&'static str, &'static str, Role, Vec<u8>)> = vec![
        (
            "customers",
            "/crm.customers.v1.CustomerService/ListCustomers",
            Role::Admin,
            kpb::ListCustomersRequest { page_size: 5, ..Default::default() }.encode_to_vec(),
        ),
        (
            "complaints",
            "/crm.complaints.v1.ComplaintService/ListComplaints",
            Role::ServiceDesk,
            cpb::ListComplaintsRequest { page_size: 5, ..Default::default() }.encode_to_vec(),
        ),
        (
            "dispatch",
            "/crm.dispatch.v1.DispatchService/ListWorkOrders",
            Role::Dispatcher,
            dpb::ListWorkOrdersRequest { page_size: 5, ..Default::default() }.encode_to_vec(),
        ),
        (
            "billing",
            "/crm.billing.v1.BillingService/GetAccount",
            Role::Finance,
            bpb::GetAccountRequest { account_id: fixture.account_id.clone(), ..Default::default() }.encode_to_vec(),
        ),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut tasks = Vec::new();
    for (service, path, role, body) in reads {
        let svc = sys.service(service)?;
        let reader = Reader { service, calls: Arc::default(), health: Arc::default() };
        let (channel, token) = (wire::channel(&svc.url())?, sys.token(&[role], &format!("faults-reader-{service}"))?);
        let (calls, stop_r) = (reader.calls.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let opts = CallOptions { timeout: Duration::from_secs(5), ..CallOptions::default() };
            while !stop_r.load(Ordering::Relaxed) {
                let out = wire::call(channel.clone(), path, Some(&token), vec![body.clone()], opts).await;
                let call = Call { started: out.started, ended: Instant::now(), code: out.code, message: out.message };
                calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(call);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        let (health, stop_h, name) = (reader.health.clone(), stop.clone(), svc.grpc_service);
        let channel = wire::channel(&svc.url())?;
        tasks.push(tokio::spawn(async move {
            while !stop_h.load(Ordering::Relaxed) {
                let s = system::health(&channel, name).await;
                health.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((Instant::now(), s));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        readers.push(reader);
    }
    let plan = load::Plan {
        requests: cfg.pg_writes,
        clients: 2,
        pace: Duration::from_millis(50),
        give_up: Duration::from_secs(180),
    };
    let writer = load::start(sys, Kind::Billing, format!("faults-{run_id}-pg-billing-"), fixture, plan)?;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let from = Instant::now();
    sys.cluster.restart_fast().await?;
    let restart = Window { name: "pg_ctl restart -m fast", from, up: Instant::now(), down: None };
    wait_recovered(&readers, restart.up).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let from = Instant::now();
    sys.cluster.stop_fast().await?;
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(cfg.pg_stop_secs)).await;
    let starting = Instant::now();
    sys.cluster.start_again().await?;
    let stopped = Window { name: "stop -m fast, start", from, up: Instant::now(), down: Some((down, starting)) };
    wait_recovered(&readers, stopped.up).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (kind, prefix, items, fixture, seen) = writer.finish().await?;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    let mut verdicts = Vec::new();
    for w in [&restart, &stopped] {
        verdicts.push(judge_window(w, &readers));
    }
    let mut v = Verdict::new("2 Postgres outages", "billing RecordPayment retried through both");
    let pool = sys.pool().await?;
    let audit = load::audit(&pool, kind, &prefix, &items, &seen).await?;
    audit.judge(&mut v);
    for (i, code, msg) in seen.fatal.iter().take(10) {
        v.fail(format!("{} given up: {code:?} {msg}", items[*i].tag));
    }
    let other: Vec<String> =
        seen.codes.others(&[Code::Ok, Code::Unavailable]).into_iter().map(|(c, n)| format!("{c}×{n}")).collect();
    v.check(other.is_empty(), || format!("codes other than Ok and Unavailable: {}", other.join(" ")));
    // The payments must really have been under way during each outage.
    let mut during = Vec::new();
    for w in [&restart, &stopped] {
        let n = seen.attempts.iter().filter(|a| a.ended >= w.from && a.started <= w.up).count();
        v.check(n > 0, || format!("no payment was attempted during {}", w.name));
        during.push(format!("{n} during {}", w.name));
    }
    let ledger = load::judge_ledger(&pool, &fixture, &items, &mut v).await?;
    pool.close().await;
    v.numbers = format!(
        "{} payments from {} clients at ≤ {:.0}/s across both outages: {} lost, {} duplicated, {} unanswered; {} \
         retried, {} applied before a failure and answered from the stored response; attempts: {} ({}); {ledger}",
        items.len(),
        plan.clients,
        plan.clients as f64 / plan.pace.as_secs_f64(),
        audit.lost.len(),
        audit.duplicated.len(),
        audit.unanswered,
        audit.retried_items,
        audit.replayed,
        seen.codes,
        during.join(", ")
    );
    verdicts.push(v);
    Ok(verdicts)
}

/// Waits until every reader has had a call succeed that started after
/// `up`, for at most 15 s.
async fn wait_recovered(readers: &[Reader], up: Instant) {
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        let all = readers.iter().all(|r| {
            r.calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .any(|c| c.started >= up && c.code == Code::Ok)
        });
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn judge_window(w: &Window, readers: &[Reader]) -> Verdict {
    let mut v = Verdict::new("2 Postgres outages", w.name.to_string());
    let mut parts = vec![match w.down {
        Some((down, start)) => format!(
            "down {} ms (stop took {} ms), start took {} ms",
            (start - down).as_millis(),
            (down - w.from).as_millis(),
            (w.up - start).as_millis()
        ),
        None => format!("restart took {} ms", (w.up - w.from).as_millis()),
    }];
    for r in readers {
        let calls = r.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let recovered = calls.iter().filter(|c| c.started >= w.up && c.code == Code::Ok).map(|c| c.ended).min();
        let until = recovered.unwrap_or(w.up + Duration::from_secs(15));
        let mut tally = Tally::default();
        for c in calls.iter().filter(|c| c.ended >= w.from && c.ended <= until) {
            tally.add(c.code);
            if !matches!(c.code, Code::Ok | Code::Unavailable) {
                v.fail(format!("{}: {:?} during the outage: {}", r.service, c.code, c.message));
            }
        }
        let recovery = recovered.map(|t| t.saturating_duration_since(w.up));
        match recovery {
            Some(d) => v.check(d <= RECOVERY_BUDGET, || {
                format!(
                    "{}: first success {} ms after Postgres was back (budget {} ms)",
                    r.service,
                    d.as_millis(),
                    RECOVERY_BUDGET.as_millis()
                )
            }),
            None => v.fail(format!("{}: no success within 15 s of Postgres coming back", r.service)),
        }
        let mut health_note = String::new();
        if let Some((down, start)) = w.down {
            let health = r.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let first_down = health
                .iter()
                .find(|(t, s)| *t >= down && *t <= start && *s == Some(ServingStatus::NotServing))
                .map(|(t, _)| t.saturating_duration_since(down));
            let serving_again = health
                .iter()
                .find(|(t, s)| *t >= w.up && *s == Some(ServingStatus::Serving))
                .map(|(t, _)| t.saturating_duration_since(w.up));
            // While down, health must never say SERVING once it has noticed.
            let lied = first_down.map_or(0, |fd| {
                health
                    .iter()
                    .filter(|(t, s)| *t >= down + fd && *t <= start && *s == Some(ServingStatus::Serving))
                    .count()
            });
            match first_down {
                Some(d) => health_note = format!(", NOT_SERVING {} ms after the stop", d.as_millis()),
                None => v.fail(format!("{}: health never said NOT_SERVING while Postgres was down", r.service)),
            }
            v.check(lied == 0, || format!("{}: health said SERVING {lied} times while Postgres was down", r.service));
            match serving_again {
                Some(d) => {
                    health_note.push_str(&format!(", SERVING {} ms after the start", d.as_millis()));
                    v.check(d <= RECOVERY_BUDGET, || {
                        format!("{}: health SERVING only {} ms after Postgres was back", r.service, d.as_millis())
                    });
                }
                None => v.fail(format!("{}: health not SERVING again after Postgres was back", r.service)),
            }
        }
        parts.push(format!(
            "{}: {} (recovered in {}{health_note})",
            r.service,
            tally,
            recovery.map_or("—".into(), |d| format!("{} ms", d.as_millis()))
        ));
    }
    v.numbers = parts.join("; ");
    v
}

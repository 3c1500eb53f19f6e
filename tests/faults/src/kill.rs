//! Scenario 1: a service process dies (kill -9) or is stopped (SIGTERM)
//! under idempotent load and is started again; clients retry what they did
//! not see answered. Afterwards every request is applied exactly once, each
//! answer names the row stored, and billing's ledger balances (BIL-5, BIL-9).

use std::time::{Duration, Instant};

use tonic::Code;

use crate::{
    Config, Error,
    load::{self, Kind},
    report::Verdict,
    system::System,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Kill9,
    Sigterm,
}

impl Fault {
    fn label(self) -> &'static str {
        match self {
            Fault::Kill9 => "kill -9",
            Fault::Sigterm => "SIGTERM",
        }
    }
}

pub async fn run(sys: &mut System, cfg: &Config, run_id: &str, kind: Kind, fault: Fault) -> Result<Verdict, Error> {
    let phase = match fault {
        Fault::Kill9 => "k9",
        Fault::Sigterm => "term",
    };
    let mut v = Verdict::new(
        if fault == Fault::Kill9 { "1 kill -9 under load" } else { "1 SIGTERM under load" },
        format!("{} {}", kind.service(), kind.rpc()),
    );
    let fixture = load::fixture(sys, kind, &format!("{phase}-{}", kind.service())).await?;
    let prefix = format!("faults-{run_id}-{phase}-{}-", kind.service());
    let pool = sys.pool().await?;
    let plan = load::Plan {
        requests: cfg.kill_requests,
        clients: cfg.kill_clients,
        pace: Duration::ZERO,
        give_up: Duration::from_secs(120),
    };
    let load = load::start(sys, kind, prefix, fixture, plan)?;

    // Strike once a third of the requests are answered.
    let strike_at = (cfg.kill_requests / 3).max(1);
    let waited = Instant::now();
    while load.progress.answered() < strike_at {
        if waited.elapsed() > Duration::from_secs(60) {
            v.fail(format!("only {} of {strike_at} answered before the fault", load.progress.answered()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let answered_at_fault = load.progress.answered();
    let fault_at = Instant::now();
    let svc = sys.service_mut(kind.service())?;
    let mut exit = String::new();
    match fault {
        Fault::Kill9 => svc.kill9().await?,
        Fault::Sigterm => match svc.terminate(Duration::from_secs(20)).await {
            Ok((code, took)) => {
                exit =
                    format!("exit {} after {} ms", code.map_or("signal".into(), |c| c.to_string()), took.as_millis());
                v.check(code == Some(0), || format!("exit code {code:?} after SIGTERM (graceful exit is 0)"));
            }
            Err(e) => v.fail(format!("SIGTERM: {e}")),
        },
    }
    // Down for a moment, as a restarting container would be.
    tokio::time::sleep(Duration::from_millis(cfg.down_ms)).await;
    svc.spawn()?;
    let back = svc.wait_serving(Duration::from_secs(60)).await?;
    let downtime = fault_at.elapsed();

    let (kind, prefix, items, fixture, seen) = load.finish().await?;
    let audit = load::audit(&pool, kind, &prefix, &items, &seen).await?;
    audit.judge(&mut v);
    for (i, code, msg) in seen.fatal.iter().take(10) {
        v.fail(format!("{} given up: {code:?} {msg}", items[*i].tag));
    }
    v.check(seen.codes.get(Code::Internal) == 0, || format!("{} INTERNAL answers", seen.codes.get(Code::Internal)));

    // Graceful stop: calls in flight when SIGTERM came are answered, and
    // nothing is applied without its answer reaching the client.
    let mut graceful = String::new();
    if fault == Fault::Sigterm {
        let margin = Duration::from_millis(50);
        let in_flight: Vec<_> =
            seen.attempts.iter().filter(|a| a.started + margin < fault_at && a.ended > fault_at).collect();
        let cut: Vec<_> = in_flight.iter().filter(|a| a.code != Code::Ok).collect();
        graceful = format!("; in flight at SIGTERM {}, cut {}", in_flight.len(), cut.len());
        for a in cut.iter().take(5) {
            v.fail(format!("in-flight call cut by SIGTERM: {} {:?} {}", items[a.item].tag, a.code, a.message));
        }
        v.check(audit.replayed == 0, || {
            format!(
                "{} requests applied while their caller saw an error (a graceful stop answers them)",
                audit.replayed
            )
        });
    }
    let ledger = if kind == Kind::Billing {
        format!("; {}", load::judge_ledger(&pool, &fixture, &items, &mut v).await?)
    } else {
        String::new()
    };
    let gapless =
        if kind == Kind::Complaints { format!("; {}", complaint_numbers(&pool, &mut v).await?) } else { String::new() };
    v.numbers = format!(
        "{} requests from {} clients, {} at {answered_at_fault} answered{}; down {} ms, SERVING again {} ms after start; \
         {} lost, {} duplicated, {} unanswered; {} requests retried, {} of them applied before the fault and answered \
         from the stored response{graceful}; attempts: {}{ledger}{gapless}",
        items.len(),
        cfg.kill_clients,
        fault.label(),
        if exit.is_empty() { String::new() } else { format!(" ({exit})") },
        downtime.as_millis(),
        back.as_millis(),
        audit.lost.len(),
        audit.duplicated.len(),
        audit.unanswered,
        audit.retried_items,
        audit.replayed,
        seen.codes,
    );
    pool.close().await;
    Ok(v)
}

/// CMP-1: complaint numbers stay gap-free per year across the restarts.
async fn complaint_numbers(pool: &sqlx::PgPool, v: &mut Verdict) -> Result<String, Error> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT split_part(number, '-', 2), count(*), min(split_part(number, '-', 3)::bigint), \
         max(split_part(number, '-', 3)::bigint) FROM complaints.complaints GROUP BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for (year, n, lo, hi) in rows {
        v.check(lo == 1 && hi == n, || {
            format!("complaint numbers of {year} have gaps: {n} complaints numbered {lo}..{hi}")
        });
        out.push(format!("{year}: {n} numbers 1..{hi}"));
    }
    Ok(format!("complaint numbers gap-free ({})", out.join(", ")))
}

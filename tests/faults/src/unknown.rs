//! Scenario 5: calls to made-up method names, with a valid token, a forged
//! one or none. Memory (VmRSS) and the size of `/metrics` stay flat: labels
//! come only from the served methods, refusals are logged at a sampled rate
//!

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crm_domain::Role;
use tonic::Code;

use crate::{
    Config, Error,
    report::{Tally, Verdict},
    rng::Rng,
    system::System,
    wire::{self, CallOptions},
};

fn ident(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    let len = 1 + rng.below(40) as usize;
    (0..len).map(|_| CHARS[rng.index(CHARS.len())] as char).collect()
}

/// A path nobody serves, shaped in one of several ways.
fn made_up_path(rng: &mut Rng, service: &str) -> String {
    match rng.below(7) {
        0 | 1 => format!("/{service}/{}", ident(rng)),
        2 => format!("/crm.{}.v1.{}/{}", ident(rng), ident(rng), ident(rng)),
        3 => format!("/grpc.health.v1.Health/{}", ident(rng)),
        4 => format!("/grpc.reflection.{}.ServerReflection/{}", ident(rng), ident(rng)),
        5 => format!("/crm.events.v1.EventFeedService/{}", ident(rng)),
        _ => format!("/{}", ident(rng)),
    }
}

fn metric_lines(body: &str) -> usize {
    body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count()
}

async fn flood(
    sys: &System,
    url: &str,
    grpc_service: &'static str,
    n: usize,
    rng: &mut Rng,
    tally: &Arc<Mutex<Tally>>,
) -> Result<(), Error> {
    let token = sys.token(&[Role::Admin], "faults-unknown")?;
    let concurrency = 16;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let channel = wire::channel(url)?;
        let (token, tally) = (token.clone(), tally.clone());
        let mut rng = rng.fork();
        let share = n / concurrency + usize::from(w < n % concurrency);
        tasks.push(tokio::spawn(async move {
            let opts = CallOptions { timeout: Duration::from_secs(5), ..CallOptions::default() };
            for _ in 0..share {
                let path = made_up_path(&mut rng, grpc_service);
                let auth = match rng.below(3) {
                    0 => Some(token.as_str()),
                    1 => Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged"),
                    _ => None,
                };
                let out = wire::call(channel.clone(), &path, auth, vec![vec![]], opts).await;
                tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(out.code);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

pub async fn run(sys: &System, cfg: &Config, service: &str, rng: &mut Rng) -> Result<Verdict, Error> {
    let svc = sys.service(service)?;
    let mut v = Verdict::new("5 made-up methods", format!("{service}: {} calls", cfg.unknown_requests));
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Warm-up: the one `unknown` series and the allocator's working set exist.
    flood(sys, &svc.url(), svc.grpc_service, 1_000, rng, &tally).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss0, metrics0, log0) = (svc.rss_kb().unwrap_or(0), svc.metrics()?, svc.log_bytes());
    *tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Tally::default();
    let started = std::time::Instant::now();
    flood(sys, &svc.url(), svc.grpc_service, cfg.unknown_requests, rng, &tally).await?;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, metrics1, log1) = (svc.rss_kb().unwrap_or(0), svc.metrics()?, svc.log_bytes());
    let tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();

    let rss_growth = rss1 as i64 - rss0 as i64;
    let metrics_growth = metrics1.len() as i64 - metrics0.len() as i64;
    let (lines0, lines1) = (metric_lines(&metrics0), metric_lines(&metrics1));
    v.check(rss0 > 0 && rss1 > 0, || "no VmRSS".into());
    v.check(rss_growth <= cfg.rss_slack_kb as i64, || {
        format!("RSS grew {} kB (allowed {} kB)", rss_growth, cfg.rss_slack_kb)
    });
    v.check(lines1 == lines0, || format!("/metrics series went from {lines0} to {lines1}"));
    v.check(metrics_growth <= cfg.metrics_slack_bytes as i64, || {
        format!("/metrics grew {metrics_growth} bytes (allowed {})", cfg.metrics_slack_bytes)
    });
    let others = tally.others(&[Code::Unimplemented, Code::Unauthenticated]);
    v.check(others.is_empty(), || format!("answers other than UNIMPLEMENTED/UNAUTHENTICATED: {others:?}"));
    v.numbers = format!(
        "{} calls in {:.1} s ({}); VmRSS {:.1} → {:.1} MB ({:+} kB); /metrics {} → {} bytes, {} → {} series; log {:+} bytes",
        tally.total(),
        took.as_secs_f64(),
        tally,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        rss_growth,
        metrics0.len(),
        metrics1.len(),
        lines0,
        lines1,
        log1 as i64 - log0 as i64,
    );
    Ok(v)
}

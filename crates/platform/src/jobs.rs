//! Background jobs (escalation, dunning, the termination saga's passes): one
//! loop for all of them. Every replica runs every job, so a pass must be safe
//! to run concurrently (row locks with SKIP LOCKED).

use std::{fmt::Display, time::Duration};

use sqlx::PgPool;

/// Runs `pass` every `every` until the pool closes (the service stopping).
/// The first pass waits one period, so replicas starting together do not
/// all scan at once. A pass returns how many things it handled (logged when
/// not zero); a failed pass is logged and the next one tries again.
pub async fn every<F, Fut, E>(job: &'static str, pool: PgPool, every: Duration, mut pass: F)
where
    F: FnMut(PgPool) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
    E: Display,
{
    // A zero period would make the interval panic.
    let every = every.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match pass(pool.clone()).await {
            Ok(0) => {}
            Ok(handled) => tracing::info!(job, handled, "background pass done"),
            Err(e) => tracing::warn!(job, error = %e, "background pass failed; the next one retries"),
        }
    }
}

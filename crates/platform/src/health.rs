//! Health that reflects the database: a probe on a connection of its
//! own (so a busy pool cannot make a healthy database look down) asks
//! `SELECT 1` every `EVERY`; the answer is cached in a watch channel that
//! the gRPC health service follows. NOT_SERVING while the database is
//! unreachable; SERVING again within a second of its recovery.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::sync::watch;

/// How often the database is asked.
const EVERY: Duration = Duration::from_millis(400);
/// How long one probe (connect or query) may take before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_500);

/// Starts the probe; the receiver reads `true` while the database answers.
/// The probe stops when every receiver is gone.
pub fn watch_database(pool: &PgPool) -> watch::Receiver<bool> {
    let options = (*pool.connect_options()).clone();
    let (tx, rx) = watch::channel(true);
    tokio::spawn(probe(options, tx));
    rx
}

async fn probe(options: PgConnectOptions, tx: watch::Sender<bool>) {
    let mut conn: Option<PgConnection> = None;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        let up = match conn.as_mut() {
            Some(c) => matches!(tokio::time::timeout(PROBE_TIMEOUT, c.ping()).await, Ok(Ok(()))),
            None => match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(&options)).await {
                Ok(Ok(mut c)) => {
                    let ok = matches!(tokio::time::timeout(PROBE_TIMEOUT, c.ping()).await, Ok(Ok(())));
                    if ok {
                        conn = Some(c);
                    }
                    ok
                }
                _ => false,
            },
        };
        if !up {
            // A broken connection is not reused; the next probe reconnects.
            conn = None;
        }
        tx.send_if_modified(|was| {
            if *was == up {
                return false;
            }
            if up {
                tracing::info!("database reachable again: SERVING");
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
            }
            metrics::gauge!("crm_database_up").set(if up { 1.0 } else { 0.0 });
            *was = up;
            true
        });
    }
}

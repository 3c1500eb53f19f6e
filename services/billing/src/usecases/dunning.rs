//! BIL-7 dunning: overdue invoices get reminder 1 (1 day past due),
//! reminder 2 (30 days) and the final notice (60 days), each recorded once.
//! Every replica runs the pass; the steps' primary key makes concurrent
//! passes record each step exactly once.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use crm_domain::WorkingCalendar;
use sqlx::PgPool;

use crate::{error::Result, store};

/// How often each replica looks for steps that came due.
pub const EVERY: Duration = Duration::from_secs(3600);

/// One pass for the business day `today`; returns how many steps it recorded.
pub async fn run_once(pool: &PgPool, today: NaiveDate) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    store::record_dunning(&mut conn, today).await
}

/// Runs a pass every `every` until the service stops.
pub async fn run(pool: PgPool, calendar: WorkingCalendar, every: Duration) {
    crm_platform::jobs::every("dunning", pool, every, |pool| {
        let today = calendar.local_date(Utc::now());
        async move { run_once(&pool, today).await }
    })
    .await;
}

//! Configuration from flags and `CRM_*` environment variables (12-factor; no
//! config file). Every service flattens `ServerConfig` into its own CLI.

use std::{net::SocketAddr, time::Duration};

use crm_domain::{CalendarError, WorkingCalendar};

#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// gRPC listen address [default: the service's port on 0.0.0.0].
    #[arg(long, env = "CRM_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,

    /// Admin HTTP address serving Prometheus `/metrics`; unset disables it.
    #[arg(long, env = "CRM_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// Postgres URL, e.g. postgres://crm@127.0.0.1:5432/crm.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Database pool size. Unary calls, uploads and background work share
    /// it; the admission limits below default to fit inside it.
    #[arg(long, env = "CRM_DB_MAX_CONNECTIONS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(4..))]
    pub db_max_connections: u32,

    /// How long an RPC may wait for a database connection (ms); kept shorter
    /// than the RPC timeout so a saturated pool answers UNAVAILABLE in time.
    #[arg(long, env = "CRM_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3_000)]
    pub db_acquire_timeout_ms: u64,

    /// Longest any SQL statement may run (ms) [default: 80% of the RPC
    /// timeout]; a longer one is cancelled and the call answers
    /// DEADLINE_EXCEEDED. Migrations run without it.
    #[arg(long, env = "CRM_DB_STATEMENT_TIMEOUT_MS")]
    pub db_statement_timeout_ms: Option<u64>,

    /// Upper bound on any unary RPC (ms); a client's shorter grpc-timeout
    /// wins. Uploads are bounded by the stream idle timeout instead.
    #[arg(long, env = "CRM_RPC_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub rpc_timeout_ms: u64,

    /// Unary RPCs in flight per service [default: the pool size minus the
    /// upload limit and two connections for background work]. Beyond it a
    /// call waits up to the queue timeout. Health checks and reflection are
    /// exempt.
    #[arg(long, env = "CRM_CONCURRENCY_LIMIT")]
    pub concurrency_limit: Option<usize>,

    /// Client-streaming uploads (bulk readings, imports) in flight per service.
    #[arg(long, env = "CRM_UPLOAD_LIMIT", default_value_t = 4, value_parser = clap::value_parser!(usize))]
    pub upload_limit: usize,

    /// Server-streaming feeds (event subscriptions) open per service; they
    /// hold no database connection while waiting for events.
    #[arg(long, env = "CRM_FEED_LIMIT", default_value_t = 64, value_parser = clap::value_parser!(usize))]
    pub feed_limit: usize,

    /// Share of each admission pool one principal may hold, in percent.
    #[arg(long, env = "CRM_PRINCIPAL_SHARE_PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub principal_share_percent: u8,

    /// How long a call may wait for an admission slot before
    /// RESOURCE_EXHAUSTED (ms).
    #[arg(long, env = "CRM_ADMISSION_QUEUE_MS", default_value_t = 2_000)]
    pub admission_queue_ms: u64,

    /// How long a stream may go without a message (ms): an upload that sends
    /// nothing ends with DEADLINE_EXCEEDED, a feed whose client stops reading
    /// gives its slot back.
    #[arg(long, env = "CRM_STREAM_IDLE_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub stream_idle_timeout_ms: u64,

    /// A connection on which no RPC has run for this long is closed (ms).
    #[arg(long, env = "CRM_CONNECTION_IDLE_TIMEOUT_MS", default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub connection_idle_timeout_ms: u64,

    /// A connection that starts no RPC this soon after connecting is closed (ms).
    #[arg(long, env = "CRM_CONNECTION_FIRST_CALL_TIMEOUT_MS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub connection_first_call_timeout_ms: u64,

    /// Largest request message accepted (bytes); larger is RESOURCE_EXHAUSTED.
    #[arg(long, env = "CRM_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// How long shutdown waits for in-flight RPCs before giving up (ms).
    #[arg(long, env = "CRM_SHUTDOWN_TIMEOUT_MS", default_value_t = 15_000)]
    pub shutdown_timeout_ms: u64,

    /// On shutdown, how long to keep serving after reporting NOT_SERVING so
    /// load balancers stop routing here first (ms; 5000 suits Kubernetes).
    #[arg(long, env = "CRM_SHUTDOWN_DRAIN_MS", default_value_t = 0)]
    pub shutdown_drain_ms: u64,

    /// HS256 key for bearer tokens, at least 32 bytes.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long idempotency keys (request_id) are kept, in hours (≥ 24).
    #[arg(long, env = "CRM_IDEMPOTENCY_TTL_HOURS", default_value_t = 72, value_parser = clap::value_parser!(u32).range(24..))]
    pub idempotency_ttl_hours: u32,

    /// Where the customers service answers, for services that call it.
    #[arg(long, env = "CRM_CUSTOMERS_URL", default_value = "http://127.0.0.1:50051")]
    pub customers_url: String,

    /// Where the complaints service answers (its event feed).
    #[arg(long, env = "CRM_COMPLAINTS_URL", default_value = "http://127.0.0.1:50052")]
    pub complaints_url: String,

    /// Where the dispatch service answers (its event feed).
    #[arg(long, env = "CRM_DISPATCH_URL", default_value = "http://127.0.0.1:50053")]
    pub dispatch_url: String,

    /// Where the billing service answers (its event feed).
    #[arg(long, env = "CRM_BILLING_URL", default_value = "http://127.0.0.1:50054")]
    pub billing_url: String,

    /// How often a held step of the termination saga is checked again, in ms.
    #[arg(long, env = "CRM_SAGA_RETRY_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub saga_retry_ms: u64,

    #[command(flatten)]
    pub calendar: CalendarConfig,
}

impl ServerConfig {
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn shutdown_drain(&self) -> Duration {
        Duration::from_millis(self.shutdown_drain_ms)
    }

    pub fn pool_size(&self) -> u32 {
        self.db_max_connections
    }

    /// Unary calls in flight: what the pool holds beside uploads and two
    /// connections for background work (consumers, jobs), at least 2.
    pub fn unary_limit(&self) -> usize {
        self.concurrency_limit
            .unwrap_or_else(|| (self.db_max_connections as usize).saturating_sub(self.upload_limit + 2))
            .max(2)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.db_statement_timeout_ms.unwrap_or(self.rpc_timeout_ms * 4 / 5))
    }

    pub fn admission(&self) -> crate::admission::AdmissionConfig {
        crate::admission::AdmissionConfig {
            unary_limit: self.unary_limit(),
            upload_limit: self.upload_limit,
            feed_limit: self.feed_limit,
            principal_share: f64::from(self.principal_share_percent) / 100.0,
            queue_timeout: Duration::from_millis(self.admission_queue_ms),
            max_waiting: 8 * self.unary_limit().max(self.feed_limit),
            stream_idle: Duration::from_millis(self.stream_idle_timeout_ms),
        }
    }

    /// Defaults as if no flag or variable was given (tests, `crm up`).
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            c: ServerConfig,
        }
        // Parsing an empty command line only fails on a broken definition,
        // which the unit test below catches.
        Wrapper::try_parse_from(["crm"]).map(|w| w.c).unwrap_or_else(|e| panic!("config defaults: {e}"))
    }
}

/// The working-day calendar (CMP-6, CUS-5, CUS-7 deadlines).
#[derive(Debug, Clone, clap::Args)]
pub struct CalendarConfig {
    /// IANA time zone business dates are taken in.
    #[arg(long, env = "CRM_TIME_ZONE", default_value = "Asia/Shanghai")]
    pub time_zone: String,

    /// Public holidays, `YYYY-MM-DD` separated by commas.
    #[arg(long, env = "CRM_HOLIDAYS", default_value = "")]
    pub holidays: String,

    /// Weekend days that are working days (make-up days), `YYYY-MM-DD`, comma separated.
    #[arg(long, env = "CRM_WORKING_WEEKENDS", default_value = "")]
    pub working_weekends: String,
}

impl CalendarConfig {
    pub fn build(&self) -> Result<WorkingCalendar, CalendarError> {
        WorkingCalendar::new(
            &self.time_zone,
            WorkingCalendar::parse_dates(&self.holidays)?,
            WorkingCalendar::parse_dates(&self.working_weekends)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_fit_the_admission_limits_in_the_pool() {
        let c = ServerConfig::defaults();
        assert_eq!(c.calendar.time_zone, "Asia/Shanghai");
        assert!(c.unary_limit() + c.upload_limit < c.pool_size() as usize);
        assert!(Duration::from_millis(c.db_acquire_timeout_ms) < c.rpc_timeout());
        assert!(c.statement_timeout() < c.rpc_timeout());
        assert!(Duration::from_millis(c.admission_queue_ms) < c.rpc_timeout());
        assert!(c.calendar.build().is_ok());
    }
}

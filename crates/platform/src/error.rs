//! Rich gRPC errors (google.rpc error model through tonic-types): every error
//! carries the right code, a sentence for people, and machine-readable detail
//! (`BadRequest` field violations, `ErrorInfo` with a stable reason such as
//! `STALE_ETAG`). Internal errors are logged in full and returned bare.

use std::collections::HashMap;

use crm_domain::Invalid;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Any error, for start-up and plumbing where callers only report it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `ErrorInfo.domain` for every error this system returns.
pub const ERROR_DOMAIN: &str = "crm";

// A status travels in HTTP/2 headers (`grpc-message`, percent-encoded, and
// `grpc-status-details-bin`, base64). Descriptions may quote the value they
// refuse, which can be megabytes long: unbounded, a 4 KB string made a 23 KB
// header block, which tonic clients (16 KiB limit) receive as INTERNAL
// "h2 protocol error", and a 400 KB one got no answer at all. So what a
// status says is bounded: under 9 KiB on the wire even if all of it is CJK.
/// Longest description of one bad field (or quoted id or metadata value), in bytes.
const MAX_DESCRIPTION_BYTES: usize = 200;
/// Field violations one status carries; the message counts the rest.
const MAX_VIOLATIONS: usize = 10;
/// Longest `grpc-message`, in bytes (before the count of fields left out).
const MAX_MESSAGE_BYTES: usize = 1024;

/// `s` cut to at most `max` bytes on a character boundary, marked with `…`.
fn bounded(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// INVALID_ARGUMENT naming one field.
pub fn invalid_argument(field: &str, description: impl Into<String>) -> Status {
    let mut v = Violations::default();
    v.add(field, description);
    v.into_status()
}

/// Collects every bad field of a request so the caller learns all of them in
/// one round trip.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, bounded(description.into(), MAX_DESCRIPTION_BYTES)));
    }

    /// Keeps the value when `r` is Ok, records a violation for `field` otherwise.
    pub fn check<T>(&mut self, field: &str, r: Result<T, Invalid>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.reason);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok when nothing was recorded, INVALID_ARGUMENT listing every field otherwise.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() { Ok(()) } else { Err(self.into_status()) }
    }

    /// The parsed values (a tuple of the `Option`s `check` returned) when
    /// nothing was recorded; INVALID_ARGUMENT listing every field otherwise.
    /// A value missing with no violation recorded is a bug in the validation
    /// and answers INTERNAL: callers need no branch of their own for it.
    pub fn finish_with<T: Parsed>(self, values: T) -> Result<T::Values, Status> {
        self.finish()?;
        values.values().ok_or_else(|| {
            tracing::error!(
                values = std::any::type_name::<T::Values>(),
                "a parsed value is missing without a violation"
            );
            Status::internal("internal error")
        })
    }

    fn into_status(mut self) -> Status {
        let more = self.0.len().saturating_sub(MAX_VIOLATIONS);
        self.0.truncate(MAX_VIOLATIONS);
        let message = self.0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
        let mut message = bounded(message, MAX_MESSAGE_BYTES);
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(self.0))
    }
}

/// One value `Violations::check` returned, after `finish` passed (for
/// records with more fields than `finish_with` takes): a missing one is a
/// bug in the validation and answers INTERNAL.
pub fn parsed<T>(value: Option<T>) -> Result<T, Status> {
    value.values().ok_or_else(|| {
        tracing::error!(value = std::any::type_name::<T>(), "a parsed value is missing without a violation");
        Status::internal("internal error")
    })
}

/// What `Violations::check` returned for several fields: all of them, once
/// every check passed.
pub trait Parsed {
    type Values;
    fn values(self) -> Option<Self::Values>;
}

impl<A> Parsed for Option<A> {
    type Values = A;
    fn values(self) -> Option<A> {
        self
    }
}

macro_rules! parsed_tuple {
    ($($t:ident),+) => {
        impl<$($t),+> Parsed for ($(Option<$t>,)+) {
            type Values = ($($t,)+);
            #[allow(non_snake_case)]
            fn values(self) -> Option<Self::Values> {
                let ($($t,)+) = self;
                Some(($($t?,)+))
            }
        }
    };
}
parsed_tuple!(A);
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);
parsed_tuple!(A, B, C, D, E, F, G);
parsed_tuple!(A, B, C, D, E, F, G, H);
parsed_tuple!(A, B, C, D, E, F, G, H, I);
parsed_tuple!(A, B, C, D, E, F, G, H, I, J);
parsed_tuple!(A, B, C, D, E, F, G, H, I, J, K);
parsed_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);

/// The `ErrorInfo` reason a status carries, if any (e.g. `STALE_ETAG`).
pub fn reason_of(status: &Status) -> Option<String> {
    status.get_error_details().error_info().map(|i| i.reason.clone())
}

/// An error with an `ErrorInfo` reason (and optional metadata).
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>, metadata: &[(&str, String)]) -> Status {
    let md: HashMap<String, String> =
        metadata.iter().map(|(k, v)| ((*k).to_string(), bounded(v.clone(), MAX_DESCRIPTION_BYTES))).collect();
    let message = bounded(message.into(), MAX_MESSAGE_BYTES);
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, ERROR_DOMAIN, md))
}

/// NOT_FOUND for a resource the caller cannot see or that does not exist:
/// the two are deliberately indistinguishable (CUS-13).
pub fn not_found(resource: &str, id: &str) -> Status {
    let id = bounded(id.to_string(), MAX_DESCRIPTION_BYTES);
    let id = id.as_str();
    let mut details = ErrorDetails::with_resource_info(resource, id, "", "not found");
    details.set_error_info("NOT_FOUND", ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(Code::NotFound, format!("{resource} {id} not found"), details)
}

/// FAILED_PRECONDITION naming the business rule that refused the change.
pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::FailedPrecondition, reason, message, &[])
}

pub fn stale_etag(current: &str) -> Status {
    with_reason(
        Code::Aborted,
        "STALE_ETAG",
        "the resource changed since it was read; read it again and retry",
        &[("current_etag", current.to_string())],
    )
}

pub fn permission_denied(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::PermissionDenied, reason, message, &[])
}

pub fn unauthenticated(message: impl Into<String>) -> Status {
    with_reason(Code::Unauthenticated, "UNAUTHENTICATED", message, &[])
}

/// Logs the detail and returns a bare INTERNAL: SQL and internals never leave
/// the service.
#[track_caller]
pub fn internal(err: &dyn std::fmt::Display) -> Status {
    let at = std::panic::Location::caller();
    tracing::error!(error = %err, at = %at, "internal error");
    Status::internal("internal error")
}

/// Database errors that are not business outcomes, mapped so a client can
/// act on the code (X-4; the one mapping every service uses):
/// - the database is unreachable, restarting or out of connections, or the
///   pool cannot hand out a connection in time → UNAVAILABLE (retry);
/// - a serialization failure or deadlock → ABORTED (retry the transaction);
/// - the statement timeout (or a cancelled query) → DEADLINE_EXCEEDED;
/// - a value Postgres refuses as data (class 22: out of range, bad
///   encoding) → INVALID_ARGUMENT. The edge should have refused it first,
///   so it is logged as a missing check;
/// - everything else is ours: INTERNAL, logged in full.
#[track_caller]
pub fn from_sqlx(err: &sqlx::Error) -> Status {
    match classify(err) {
        DbFailure::Unavailable => {
            tracing::warn!(error = %err, "database unavailable");
            with_reason(Code::Unavailable, "DATABASE_UNAVAILABLE", "the database is unavailable; retry shortly", &[])
        }
        DbFailure::Busy => {
            tracing::warn!("database pool exhausted");
            with_reason(Code::Unavailable, "DATABASE_BUSY", "service busy, retry later", &[])
        }
        DbFailure::Conflict => {
            tracing::info!(error = %err, "transaction conflict");
            with_reason(
                Code::Aborted,
                "CONCURRENT_UPDATE",
                "a concurrent change got in the way; retry the request",
                &[],
            )
        }
        DbFailure::Timeout => {
            tracing::warn!(error = %err, "statement timed out");
            with_reason(Code::DeadlineExceeded, "STATEMENT_TIMEOUT", "the database took too long to answer", &[])
        }
        DbFailure::BadValue => {
            let at = std::panic::Location::caller();
            tracing::warn!(error = %err, at = %at, "the database refused a value: a check at the edge is missing");
            with_reason(
                Code::InvalidArgument,
                "INVALID_VALUE",
                "a value in the request is out of range or malformed",
                &[],
            )
        }
        DbFailure::Ours => internal(err),
    }
}

/// What kind of failure a database error is, for callers that decide
/// something other than a status (retry or park an event, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFailure {
    /// Connection lost or refused, server shutting down or starting, too many connections.
    Unavailable,
    /// No pooled connection in time.
    Busy,
    /// Serialization failure or deadlock: the transaction may be retried.
    Conflict,
    /// Statement timeout or cancellation.
    Timeout,
    /// A value Postgres refuses (SQLSTATE class 22).
    BadValue,
    /// A bug of ours or a broken invariant.
    Ours,
}

impl DbFailure {
    /// Whether trying again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, DbFailure::Unavailable | DbFailure::Busy | DbFailure::Conflict | DbFailure::Timeout)
    }
}

pub fn classify(err: &sqlx::Error) -> DbFailure {
    match err {
        sqlx::Error::PoolTimedOut => DbFailure::Busy,
        sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
            DbFailure::Unavailable
        }
        // A connection out of step with its server, e.g. one cut mid-message.
        sqlx::Error::Protocol(_) => DbFailure::Unavailable,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // connection_exception, e.g. 08006 connection failure.
            Some(c) if c.starts_with("08") => DbFailure::Unavailable,
            // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped.
            Some("57P01" | "57P02" | "57P03" | "57P04") => DbFailure::Unavailable,
            // insufficient_resources: too_many_connections, out of memory, disk full.
            Some(c) if c.starts_with("53") => DbFailure::Unavailable,
            // Refused at connect: the database does not accept connections
            // (55000), does not exist (3D000), or refuses our credentials (28xxx).
            Some("55000" | "3D000") => DbFailure::Unavailable,
            Some(c) if c.starts_with("28") => DbFailure::Unavailable,
            // serialization_failure, deadlock_detected, lock_not_available.
            Some("40001" | "40P01" | "55P03") => DbFailure::Conflict,
            // query_canceled: statement_timeout, or a cancel request.
            Some("57014") => DbFailure::Timeout,
            Some(c) if c.starts_with("22") => DbFailure::BadValue,
            _ => DbFailure::Ours,
        },
        _ => DbFailure::Ours,
    }
}

/// The name of the constraint a unique/foreign-key violation broke, so stores
/// can turn it into a domain error.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_carry_every_field() {
        let mut v = Violations::default();
        v.add("customer.display_name", "is required");
        v.add("customer.phone", "needs an area code");
        let Err(status) = v.finish() else { panic!("expected an error") };
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().map(|b| b.field_violations).unwrap_or_default();
        let fields: Vec<_> = bad.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["customer.display_name", "customer.phone"]);
    }

    #[test]
    fn finish_with_returns_the_parsed_values_or_every_violation() {
        let mut v = Violations::default();
        let a = v.check("a", Ok::<_, Invalid>(1));
        let b = v.check("b", Ok::<_, Invalid>("x"));
        assert_eq!(v.finish_with((a, b)).ok(), Some((1, "x")));

        let mut v = Violations::default();
        let a = v.check("a", Err::<i32, _>(Invalid::new("bad")));
        let b = v.check("b", Ok::<_, Invalid>("x"));
        let status = v.finish_with((a, b)).expect_err("a violation");
        assert_eq!(status.code(), Code::InvalidArgument);
        // A value missing with nothing recorded is a bug: INTERNAL, not a guess.
        let status = Violations::default().finish_with((Some(1), None::<i32>)).expect_err("bug");
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn statuses_stay_small_whatever_the_input_quotes() {
        let huge = "😀".repeat(100_000);
        let mut v = Violations::default();
        for i in 0..50 {
            v.add(&format!("items[{i}].currency_code"), format!("currency code {huge:?} is not ISO 4217"));
        }
        let Err(status) = v.finish() else { panic!("expected an error") };
        let bad = status.get_details_bad_request().map(|b| b.field_violations).unwrap_or_default();
        assert_eq!(bad.len(), MAX_VIOLATIONS);
        assert!(bad.iter().all(|f| f.description.len() <= MAX_DESCRIPTION_BYTES && f.description.ends_with('…')));
        assert!(status.message().ends_with("; and 40 more"), "{}", status.message());
        // On the wire: grpc-message percent-encoded, details in base64.
        let message_wire: usize = status.message().bytes().map(|b| if b.is_ascii() { 1 } else { 3 }).sum();
        assert!(message_wire + status.details().len() * 4 / 3 < 9 * 1024);
        let s = with_reason(Code::FailedPrecondition, "X", huge.clone(), &[("value", huge.clone())]);
        assert!(s.message().len() <= MAX_MESSAGE_BYTES && s.details().len() < 1024 + MAX_MESSAGE_BYTES);
        assert!(not_found("customer", &huge).message().len() < 300);
        assert_eq!(bounded("ab".into(), 8), "ab");
        assert_eq!(bounded("北京燃气".into(), 8), "北…");
    }

    #[test]
    fn reasons_are_machine_readable() {
        let s = stale_etag("7");
        assert_eq!(s.code(), Code::Aborted);
        let info = s.get_details_error_info();
        assert_eq!(info.as_ref().map(|i| i.reason.as_str()), Some("STALE_ETAG"));
        assert_eq!(info.and_then(|i| i.metadata.get("current_etag").cloned()), Some("7".to_string()));
    }

    #[test]
    fn lost_connections_are_retryable_and_bugs_are_internal() {
        let io = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"));
        assert_eq!(from_sqlx(&io).code(), Code::Unavailable);
        assert_eq!(from_sqlx(&sqlx::Error::PoolTimedOut).code(), Code::Unavailable);
        assert_eq!(from_sqlx(&sqlx::Error::PoolClosed).code(), Code::Unavailable);
        assert_eq!(from_sqlx(&sqlx::Error::RowNotFound).code(), Code::Internal);
        assert!(DbFailure::Conflict.is_transient() && !DbFailure::Ours.is_transient());
    }

    #[test]
    fn internal_hides_the_detail() {
        let s = internal(&"relation customers.customers does not exist");
        assert_eq!(s.message(), "internal error");
    }
}

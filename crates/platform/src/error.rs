//! Rich gRPC errors (google.rpc error model through tonic-types): every error
//! carries the right code, a sentence for people, and machine-readable detail
//! (`BadRequest` field violations, `ErrorInfo` with a stable reason such as
//! `STALE_ETAG`). Internal errors are logged in full and returned bare.

use std::collections::HashMap;

use crm_domain::Invalid;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` for every error this system returns.
pub const ERROR_DOMAIN: &str = "crm";

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
        self.0.push(FieldViolation::new(field, description));
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

    fn into_status(self) -> Status {
        let message = self.0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
        Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(self.0))
    }
}

/// An error with an `ErrorInfo` reason (and optional metadata).
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>, metadata: &[(&str, String)]) -> Status {
    let md: HashMap<String, String> = metadata.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect();
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, ERROR_DOMAIN, md))
}

/// NOT_FOUND for a resource the caller cannot see or that does not exist:
/// the two are deliberately indistinguishable (CUS-13).
pub fn not_found(resource: &str, id: &str) -> Status {
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

/// Database errors that are not business outcomes: a pool that cannot give a
/// connection in time is UNAVAILABLE (retryable), everything else INTERNAL.
#[track_caller]
pub fn from_sqlx(err: &sqlx::Error) -> Status {
    match err {
        sqlx::Error::PoolTimedOut => {
            tracing::warn!("database pool exhausted");
            Status::unavailable("service busy, retry later")
        }
        other => internal(other),
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
    fn reasons_are_machine_readable() {
        let s = stale_etag("7");
        assert_eq!(s.code(), Code::Aborted);
        let info = s.get_details_error_info();
        assert_eq!(info.as_ref().map(|i| i.reason.as_str()), Some("STALE_ETAG"));
        assert_eq!(info.and_then(|i| i.metadata.get("current_etag").cloned()), Some("7".to_string()));
    }

    #[test]
    fn internal_hides_the_detail() {
        let s = internal(&"relation customers.customers does not exist");
        assert_eq!(s.message(), "internal error");
    }
}

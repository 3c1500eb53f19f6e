//! The errors every service shares, and their one mapping to gRPC statuses.
//! A service adds only its own refusals (`O`, anything that becomes a
//! status) and names the whole `type Error = ServiceError<Refusal>`, so its
//! code still writes `Error::NotFound { .. }` and `?` on database errors,
//! statuses, rule violations and denials.

use crm_domain::{Denied, RuleViolation};
use tonic::{Code, Status};

use crate::error as status;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError<O> {
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("stale etag")]
    StaleEtag { current: String },
    /// A business rule refused the change (FAILED_PRECONDITION with its reason).
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A field that is well-formed but refers to something unusable.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A unique key was taken (a technician's user, a device number...).
    #[error("{resource} already exists: {detail}")]
    AlreadyExists { resource: &'static str, detail: String },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Already a gRPC status (request validation, idempotency, a peer).
    #[error(transparent)]
    Status(#[from] Status),
    /// The service's own refusals.
    #[error(transparent)]
    Own(O),
}

impl<O: Into<Status>> From<ServiceError<O>> for Status {
    fn from(e: ServiceError<O>) -> Status {
        match e {
            ServiceError::NotFound { resource, id } => status::not_found(resource, &id),
            ServiceError::StaleEtag { current } => status::stale_etag(&current),
            ServiceError::Rule(r) => status::failed_precondition(r.reason, r.message),
            ServiceError::Denied(d) => status::permission_denied(d.reason, d.message),
            ServiceError::InvalidField { field, reason } => status::invalid_argument(field, reason),
            ServiceError::AlreadyExists { resource, detail } => status::with_reason(
                Code::AlreadyExists,
                "ALREADY_EXISTS",
                format!("{resource} already exists: {detail}"),
                &[],
            ),
            ServiceError::Corrupt(detail) => status::internal(&detail),
            ServiceError::Db(err) => status::from_sqlx(&err),
            ServiceError::Status(s) => s,
            ServiceError::Own(o) => o.into(),
        }
    }
}

/// A service with no refusals of its own.
#[derive(Debug, thiserror::Error)]
pub enum NoRefusal {}

impl From<NoRefusal> for Status {
    fn from(n: NoRefusal) -> Status {
        match n {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[derive(Debug, thiserror::Error)]
    #[error("own")]
    struct Own;

    impl From<Own> for Status {
        fn from(_: Own) -> Status {
            status::failed_precondition("OWN", "the service's own refusal")
        }
    }

    type Error = ServiceError<Own>;

    fn reason(s: &Status) -> String {
        s.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    }

    #[test]
    fn shared_failures_and_own_refusals_map_to_their_codes_and_reasons() {
        let s = Status::from(Error::NotFound { resource: "complaint", id: "x".into() });
        assert_eq!(s.code(), Code::NotFound);
        let s = Status::from(Error::StaleEtag { current: "3".into() });
        assert_eq!((s.code(), reason(&s).as_str()), (Code::Aborted, "STALE_ETAG"));
        let s = Status::from(Error::from(RuleViolation::new("CLOSED", "closed")));
        assert_eq!((s.code(), reason(&s).as_str()), (Code::FailedPrecondition, "CLOSED"));
        let s = Status::from(Error::from(Denied::new("OTHER_BRANCH", "no")));
        assert_eq!((s.code(), reason(&s).as_str()), (Code::PermissionDenied, "OTHER_BRANCH"));
        let s = Status::from(Error::AlreadyExists { resource: "device", detail: "T1".into() });
        assert_eq!((s.code(), reason(&s).as_str()), (Code::AlreadyExists, "ALREADY_EXISTS"));
        let s = Status::from(Error::InvalidField { field: "branch", reason: "unknown".into() });
        assert_eq!(s.code(), Code::InvalidArgument);
        let s = Status::from(Error::Corrupt("a row vanished".into()));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"), "internals are not shown");
        let s = Status::from(Error::Own(Own));
        assert_eq!((s.code(), reason(&s).as_str()), (Code::FailedPrecondition, "OWN"));
        let s = Status::from(Error::from(Status::unavailable("peer down")));
        assert_eq!(s.code(), Code::Unavailable);
    }
}

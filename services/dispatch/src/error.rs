//! The dispatch service's errors and their one mapping to gRPC statuses.

use crm_platform::error as status;
use tonic::{Code, Status};

use crate::model::{RuleViolation, access::Denied};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("stale etag")]
    StaleEtag { current: String },
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A unique key was taken (technician user, device number...).
    #[error("{resource} already exists: {detail}")]
    AlreadyExists { resource: &'static str, detail: String },
    /// DSP-2: terminated customers get no new work.
    #[error("customer terminated")]
    CustomerTerminated,
    /// The customers service could not answer; the request can be retried.
    #[error("customers service unavailable: {0}")]
    CustomersUnavailable(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Already a gRPC status (request validation, idempotency).
    #[error(transparent)]
    Status(#[from] Status),
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::NotFound { resource, id } => status::not_found(resource, &id),
            Error::StaleEtag { current } => status::stale_etag(&current),
            Error::AlreadyExists { resource, detail } => status::with_reason(
                Code::AlreadyExists,
                "ALREADY_EXISTS",
                format!("{resource} already exists: {detail}"),
                &[],
            ),
            Error::Rule(r) => status::failed_precondition(r.reason, r.message),
            Error::Denied(d) => status::permission_denied(d.reason, d.message),
            Error::CustomerTerminated => status::failed_precondition(
                "CUSTOMER_TERMINATED",
                "the customer is terminated; no new work is taken for them (DSP-2)",
            ),
            Error::CustomersUnavailable(detail) => {
                tracing::warn!(error = %detail, "customers service unavailable");
                status::with_reason(
                    Code::Unavailable,
                    "CUSTOMERS_UNAVAILABLE",
                    "the customer could not be checked right now; retry with the same request_id",
                    &[],
                )
            }
            Error::Corrupt(detail) => status::internal(&detail),
            Error::Db(err) => status::from_sqlx(&err),
            Error::Status(s) => s,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The customers service's errors and their one mapping to gRPC statuses.

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
    /// CUS-2/CUS-3: an identity (registration number, phone, email) that
    /// belongs to a customer registered first; `matched` names which.
    #[error("customer already registered")]
    AlreadyRegistered { customer_id: Option<String>, owner_id: Option<String>, matched: Vec<&'static str> },
    /// A field that is well-formed but refers to something unusable.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
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
            Error::Rule(r) => status::failed_precondition(r.reason, r.message),
            Error::Denied(d) => status::permission_denied(d.reason, d.message),
            Error::AlreadyRegistered { customer_id, owner_id, matched } => {
                let what = matched.iter().map(|m| m.replace('_', " ")).collect::<Vec<_>>().join(" and ");
                let whose = match (&customer_id, &owner_id) {
                    (Some(id), Some(owner)) => format!(" as {id}, owned by {owner}"),
                    _ => String::new(),
                };
                let message = format!(
                    "a customer with this {what} is already registered{whose}: the earlier registration wins; file \
                     an ownership claim (FileOwnershipClaim) for a sales manager to decide (CUS-2, CUS-3)"
                );
                let mut md = vec![("matched", matched.join(","))];
                if let Some(id) = customer_id {
                    md.push(("customer_id", id));
                }
                if let Some(o) = owner_id {
                    md.push(("owner_id", o));
                }
                status::with_reason(Code::AlreadyExists, "CUSTOMER_ALREADY_REGISTERED", message, &md)
            }
            Error::InvalidField { field, reason } => status::invalid_argument(field, reason),
            Error::Corrupt(detail) => status::internal(&detail),
            Error::Db(err) => status::from_sqlx(&err),
            Error::Status(s) => s,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

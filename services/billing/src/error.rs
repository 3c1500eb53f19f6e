//! The billing service's errors and their one mapping to gRPC statuses.

use crm_platform::error as status;
use tonic::{Code, Status};

use crate::model::RuleViolation;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("stale etag")]
    StaleEtag { current: String },
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    /// BIL-1: one account per customer.
    #[error("the customer already has an account")]
    AccountExists { account_id: Option<String> },
    /// a work order is invoiced at most once.
    #[error("work order {work_order_id} is already invoiced")]
    WorkOrderInvoiced { work_order_id: String },
    /// CMP-8 / BIL-6: a complaint's compensation is one credit note.
    #[error("complaint {complaint_id} already has a credit note")]
    ComplaintCredited { complaint_id: String },
    /// BIL-8: one open shift per cashier; names it so a cashier who lost
    /// its id can close it.
    #[error("a shift is already open: {shift_id:?}")]
    ShiftAlreadyOpen { shift_id: Option<String> },
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("the customers service is unavailable: {0}")]
    CustomersUnavailable(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Status(#[from] Status),
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::NotFound { resource, id } => status::not_found(resource, &id),
            Error::StaleEtag { current } => status::stale_etag(&current),
            Error::Rule(r) => status::failed_precondition(r.reason, r.message),
            Error::AccountExists { account_id } => status::with_reason(
                Code::AlreadyExists,
                "ACCOUNT_EXISTS",
                "the customer already has a billing account (BIL-1: one per customer)",
                &account_id.map(|id| vec![("account_id", id)]).unwrap_or_default(),
            ),
            Error::WorkOrderInvoiced { work_order_id } => status::with_reason(
                Code::AlreadyExists,
                "WORK_ORDER_INVOICED",
                "the work order is already invoiced (X-2: at most once)",
                &[("work_order_id", work_order_id)],
            ),
            Error::ShiftAlreadyOpen { shift_id } => status::with_reason(
                Code::FailedPrecondition,
                "SHIFT_ALREADY_OPEN",
                match &shift_id {
                    Some(id) => format!("you already have an open shift, {id}; close it first (BIL-8)"),
                    None => "you already have an open shift; close it first (BIL-8)".to_string(),
                },
                &shift_id.map(|id| vec![("shift_id", id)]).unwrap_or_default(),
            ),
            Error::ComplaintCredited { complaint_id } => status::with_reason(
                Code::AlreadyExists,
                "COMPLAINT_CREDITED",
                "the complaint already has a credit note (BIL-6: one per complaint)",
                &[("complaint_id", complaint_id)],
            ),
            Error::InvalidField { field, reason } => status::invalid_argument(field, reason),
            Error::CustomersUnavailable(detail) => {
                tracing::warn!(%detail, "customers service unavailable");
                status::with_reason(
                    Code::Unavailable,
                    "CUSTOMERS_UNAVAILABLE",
                    "the customers service did not answer; retry",
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

//! Shared vocabulary of the back office: typed ids, money, validated contact
//! data, names normalised for matching, search terms and scores, the
//! working-day calendar, page tokens and staff roles. Pure: no I/O, no
//! protobuf, no SQL.

pub mod calendar;
pub mod check;
pub mod contact;
pub mod history;
pub mod ids;
pub mod money;
pub mod name;
pub mod page;
pub mod role;
pub mod rules;
pub mod search;
pub mod text;

pub use calendar::{CalendarError, WorkingCalendar};
pub use contact::{Email, Phone};
pub use money::{Currency, Money, MoneyError, div_half_up, line_amounts};
pub use name::{normalize_for_match, width_fold};
pub use page::{PageSize, PageToken, PageTokenError, RankedPageToken};
pub use role::Role;
pub use rules::{Denied, RuleViolation, etag};

/// Why a value from outside was refused. `field` is filled in by the caller
/// that knows the field path; `reason` is a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Invalid {
    pub reason: String,
}

impl Invalid {
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

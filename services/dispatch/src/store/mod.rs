//! Persistence of the `dispatch` schema. Every function takes the connection
//! or transaction it runs in, so the API composes them into one transaction
//! with the idempotency key. Schema-qualified SQL only.

mod base;
mod completion;
mod metering;
mod orders;
mod technicians;
mod terminations;

pub use base::*;
pub use completion::*;
pub use metering::*;
pub use orders::*;
pub use technicians::*;
pub use terminations::*;

use crate::error::{Error, Result};

/// The idempotency table of this schema.
pub const IDEMPOTENCY_TABLE: &str = "dispatch.idempotency_keys";

pub(crate) fn parse<T>(what: &str, v: &str, f: fn(&str) -> Option<T>) -> Result<T> {
    f(v).ok_or_else(|| Error::Corrupt(format!("unknown {what} {v:?}")))
}

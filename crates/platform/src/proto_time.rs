//! `google.protobuf.Timestamp` ⇄ `chrono::DateTime<Utc>`.

use chrono::{DateTime, Utc};
use crm_domain::Invalid;

pub fn to_proto(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

pub fn from_proto(t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Invalid> {
    let nanos = u32::try_from(t.nanos).map_err(|_| Invalid::new("nanos must not be negative"))?;
    DateTime::from_timestamp(t.seconds, nanos).ok_or_else(|| Invalid::new("timestamp out of range"))
}

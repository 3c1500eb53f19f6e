//! `google.protobuf.Timestamp` ⇄ `chrono::DateTime<Utc>`.

use chrono::{DateTime, Utc};
use crm_domain::Invalid;

/// Now, at the database's precision (microseconds), so that what a response
/// echoes equals what a later read returns.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

pub fn to_proto(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// Truncated to microseconds, Postgres' precision, so that what a response
/// echoes equals what a later read returns.
pub fn from_proto(t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Invalid> {
    let nanos = u32::try_from(t.nanos).map_err(|_| Invalid::new("nanos must not be negative"))?;
    let micros = nanos / 1000 * 1000;
    DateTime::from_timestamp(t.seconds, micros).ok_or_else(|| Invalid::new("timestamp out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let t = prost_types::Timestamp { seconds: 1_795_935_016, nanos: 746_777_419 };
        let parsed = from_proto(&t).unwrap_or_default();
        assert_eq!(to_proto(parsed), prost_types::Timestamp { seconds: 1_795_935_016, nanos: 746_777_000 });
        assert!(from_proto(&prost_types::Timestamp { seconds: 0, nanos: -1 }).is_err());
    }
}

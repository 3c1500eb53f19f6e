//! The one clock a service reads. It is handed to handlers, consumers and
//! jobs through [`crate::ServiceContext`]; nothing else asks the system for
//! the time, so a test can run a service at a time of its choosing.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from: the system clock, or a fixed instant a test sets
/// and moves.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `at` until moved with [`Clock::set`] or
    /// [`Clock::advance`]; every clone sees the move.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self(Some(Arc::new(Mutex::new(micros(at)))))
    }

    /// Now, at the database's precision (microseconds), so that what a
    /// response echoes equals what a later read returns.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => micros(Utc::now()),
            Some(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a fixed clock to `at`; the system clock cannot be moved and
    /// ignores it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(t) = &self.0 {
            *t.lock().unwrap_or_else(|p| p.into_inner()) = micros(at);
        }
    }

    /// Moves a fixed clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(_) => write!(f, "Clock::fixed({})", self.now()),
        }
    }
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_until_moved_and_clones_share_it() {
        let at = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
        let clock = Clock::fixed(at);
        let other = clock.clone();
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000, "microsecond precision");
        assert_eq!(clock.now(), other.now());
        other.advance(Duration::hours(2));
        assert_eq!(clock.now() - micros(at), Duration::hours(2));
    }

    #[test]
    fn the_system_clock_moves_and_is_at_microsecond_precision() {
        let clock = Clock::system();
        let a = clock.now();
        clock.set(DateTime::UNIX_EPOCH);
        assert!(clock.now() >= a, "the system clock ignores set");
        assert_eq!(a.timestamp_subsec_nanos() % 1000, 0);
    }
}

//! CMP-6 answer deadlines: a policy per service level × urgency, and the
//! arithmetic that turns "15 days" / "3 working days" / "8 working hours"
//! into an instant with the working-day calendar.

use chrono::{DateTime, Days, Duration, Utc};
use crm_domain::{Invalid, WorkingCalendar};

use super::{DeadlineUnit, ServiceLevel, Urgency};

/// How long the answer may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineRule {
    pub unit: DeadlineUnit,
    pub amount: u32,
}

/// One row of the policy table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlinePolicy {
    pub service_level: ServiceLevel,
    pub urgency: Urgency,
    pub rule: DeadlineRule,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// The SPEC defaults, used when the table has no row (it is seeded with
/// these; an admin may change them).
pub fn default_rule(urgency: Urgency) -> DeadlineRule {
    match urgency {
        Urgency::Normal => DeadlineRule { unit: DeadlineUnit::CalendarDays, amount: 15 },
        Urgency::Urgent => DeadlineRule { unit: DeadlineUnit::WorkingDays, amount: 3 },
    }
}

impl DeadlineRule {
    /// Bounds an admin may set: a year of days, or 2000 working hours.
    pub fn parse(unit: DeadlineUnit, amount: i32) -> Result<Self, Invalid> {
        let max = match unit {
            DeadlineUnit::CalendarDays | DeadlineUnit::WorkingDays => 365,
            DeadlineUnit::WorkingHours => 2000,
        };
        match u32::try_from(amount) {
            Ok(n) if (1..=max).contains(&n) => Ok(Self { unit, amount: n }),
            _ => Err(Invalid::new(format!("must be between 1 and {max}"))),
        }
    }

    /// When an answer to something accepted at `from` is due.
    pub fn due(&self, cal: &WorkingCalendar, from: DateTime<Utc>) -> DateTime<Utc> {
        match self.unit {
            DeadlineUnit::CalendarDays => calendar_days(cal, from, self.amount),
            DeadlineUnit::WorkingDays => cal.working_days_deadline(from, self.amount),
            DeadlineUnit::WorkingHours => working_hours(cal, from, self.amount),
        }
    }
}

/// The end of the `n`th calendar day after `from`'s local date; a last day
/// that is not a working day moves to the end of the next working day (the
/// customer cannot be answered in writing on a holiday).
fn calendar_days(cal: &WorkingCalendar, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    let start = cal.local_date(from);
    let mut last = start.checked_add_days(Days::new(u64::from(n))).unwrap_or(start);
    if !cal.is_working_day(last) {
        last = cal.add_working_days(last, 1);
    }
    cal.start_of_day(last.checked_add_days(Days::new(1)).unwrap_or(last))
}

/// `n` hours counted only while the local day is a working day (whole days:
/// the calendar has no office hours).
fn working_hours(cal: &WorkingCalendar, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    let mut left = Duration::hours(i64::from(n));
    let mut t = from;
    // A year and a half of days bounds the walk even for a calendar made of
    // holidays.
    for _ in 0..550 {
        let day = cal.local_date(t);
        let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
        let end = cal.start_of_day(next);
        if cal.is_working_day(day) {
            let available = end - t;
            if available >= left {
                return t + left;
            }
            left -= available;
        }
        t = end;
    }
    t + left
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    /// Shanghai local time as UTC.
    fn sh(y: i32, m: u32, day: u32, h: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, day, h, 0, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// 2026 National Day: Oct 1-7 off, Saturday Oct 10 worked.
    fn national_day() -> WorkingCalendar {
        let holidays = (1..=7).map(|day| d(&format!("2026-10-0{day}")));
        WorkingCalendar::new("Asia/Shanghai", holidays, [d("2026-10-10")]).unwrap_or_default()
    }

    const FIFTEEN_DAYS: DeadlineRule = DeadlineRule { unit: DeadlineUnit::CalendarDays, amount: 15 };
    const THREE_WORKING_DAYS: DeadlineRule = DeadlineRule { unit: DeadlineUnit::WorkingDays, amount: 3 };

    #[test]
    fn fifteen_calendar_days_end_at_local_midnight() {
        let cal = WorkingCalendar::default();
        // Accepted Mon 2026-11-02 10:00 → day 15 is Tue 17th, due by its end.
        assert_eq!(FIFTEEN_DAYS.due(&cal, sh(2026, 11, 2, 10)), sh(2026, 11, 18, 0));
    }

    #[test]
    fn a_calendar_deadline_on_a_weekend_moves_to_the_next_working_day() {
        let cal = WorkingCalendar::default();
        // Thu 2026-11-05 + 15 = Fri 20th: unchanged. Sat 6th + 15 = Sat 21st → Mon 23rd.
        assert_eq!(FIFTEEN_DAYS.due(&cal, sh(2026, 11, 5, 9)), sh(2026, 11, 21, 0));
        assert_eq!(FIFTEEN_DAYS.due(&cal, sh(2026, 11, 6, 9)), sh(2026, 11, 24, 0));
    }

    #[test]
    fn a_calendar_deadline_in_a_holiday_moves_past_it() {
        let cal = national_day();
        // Sep 20 + 15 = Oct 5 (holiday) → Oct 8, due by its end.
        assert_eq!(FIFTEEN_DAYS.due(&cal, sh(2026, 9, 20, 9)), sh(2026, 10, 9, 0));
    }

    #[test]
    fn urgent_working_days_skip_weekends_and_holidays() {
        let plain = WorkingCalendar::default();
        // Fri 2026-11-20 → Mon, Tue, Wed: due end of Wed 25th.
        assert_eq!(THREE_WORKING_DAYS.due(&plain, sh(2026, 11, 20, 15)), sh(2026, 11, 26, 0));
        let cal = national_day();
        // Wed Sep 30 → Oct 8, 9, Sat 10 (make-up day): due end of Oct 10.
        assert_eq!(THREE_WORKING_DAYS.due(&cal, sh(2026, 9, 30, 11)), sh(2026, 10, 11, 0));
    }

    #[test]
    fn working_hours_pause_over_weekends_and_holidays() {
        let rule = DeadlineRule { unit: DeadlineUnit::WorkingHours, amount: 8 };
        let plain = WorkingCalendar::default();
        // Tuesday 10:00 + 8 h = 18:00 the same day.
        assert_eq!(rule.due(&plain, sh(2026, 11, 24, 10)), sh(2026, 11, 24, 18));
        // Friday 20:00: 4 h left on Friday, 4 h on Monday.
        assert_eq!(rule.due(&plain, sh(2026, 11, 20, 20)), sh(2026, 11, 23, 4));
        // Accepted on a Sunday: the clock starts on Monday.
        assert_eq!(rule.due(&plain, sh(2026, 11, 22, 12)), sh(2026, 11, 23, 8));
        // Sep 30 22:00: 2 h, then the holiday week, then 6 h on Oct 8.
        assert_eq!(rule.due(&national_day(), sh(2026, 9, 30, 22)), sh(2026, 10, 8, 6));
    }

    #[test]
    fn admins_set_bounded_rules() {
        assert!(DeadlineRule::parse(DeadlineUnit::CalendarDays, 0).is_err());
        assert!(DeadlineRule::parse(DeadlineUnit::WorkingDays, 366).is_err());
        assert!(DeadlineRule::parse(DeadlineUnit::WorkingHours, 2000).is_ok());
        assert_eq!(default_rule(Urgency::Normal), FIFTEEN_DAYS);
        assert_eq!(default_rule(Urgency::Urgent), THREE_WORKING_DAYS);
    }

    fn arb_calendar() -> impl Strategy<Value = WorkingCalendar> {
        proptest::collection::btree_set(0u64..120, 0..30).prop_map(|offsets| {
            let base = d("2026-09-01");
            let holidays = offsets.into_iter().filter_map(|o| base.checked_add_days(Days::new(o)));
            WorkingCalendar::new("Asia/Shanghai", holidays, []).unwrap_or_default()
        })
    }

    fn arb_unit() -> impl Strategy<Value = DeadlineUnit> {
        prop_oneof![Just(DeadlineUnit::CalendarDays), Just(DeadlineUnit::WorkingDays), Just(DeadlineUnit::WorkingHours)]
    }

    proptest! {
        #[test]
        fn deadlines_are_after_the_start_and_grow_with_the_amount(
            cal in arb_calendar(), unit in arb_unit(), hours in 0i64..(24 * 100), n in 1u32..30,
        ) {
            let from = sh(2026, 9, 1, 0) + Duration::hours(hours);
            let a = DeadlineRule { unit, amount: n }.due(&cal, from);
            let b = DeadlineRule { unit, amount: n + 1 }.due(&cal, from);
            prop_assert!(a > from);
            // Calendar days landing in the same holiday stretch share the
            // working day it moves to; the other units always grow.
            if unit == DeadlineUnit::CalendarDays {
                prop_assert!(b >= a);
            } else {
                prop_assert!(b > a);
            }
        }

        #[test]
        fn day_deadlines_end_a_working_day(cal in arb_calendar(), hours in 0i64..(24 * 100), n in 1u32..30) {
            let from = sh(2026, 9, 1, 0) + Duration::hours(hours);
            for unit in [DeadlineUnit::CalendarDays, DeadlineUnit::WorkingDays] {
                let due = DeadlineRule { unit, amount: n }.due(&cal, from);
                // Due at midnight: the last second before it is a working day.
                let last_day = cal.local_date(due - Duration::seconds(1));
                prop_assert!(cal.is_working_day(last_day));
                prop_assert_eq!(cal.start_of_day(cal.local_date(due)), due);
            }
        }

        #[test]
        fn working_hours_count_only_working_days(cal in arb_calendar(), hours in 0i64..(24 * 100), n in 1u32..100) {
            let from = sh(2026, 9, 1, 0) + Duration::hours(hours);
            let due = DeadlineRule { unit: DeadlineUnit::WorkingHours, amount: n }.due(&cal, from);
            // Walk back hour by hour from due to from: exactly n working hours.
            let mut t = from;
            let mut counted = 0;
            while t < due {
                if cal.is_working_day(cal.local_date(t)) {
                    counted += 1;
                }
                t += Duration::hours(1);
            }
            prop_assert_eq!(counted, n);
        }
    }
}

//! The working-day calendar: weekends, public holidays and make-up working
//! days (China moves weekend days to bridge holidays, so a Saturday can be a
//! working day), in a configured time zone (Asia/Shanghai by default).
//! Deadlines such as "within 2 working days" (CUS-5, CUS-7) or "3 working
//! days" (CMP-6) are computed here and nowhere else.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    #[error("bad date {0:?}: expected YYYY-MM-DD")]
    BadDate(String),
    #[error("{0} is listed both as a holiday and as a working day")]
    Conflict(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingCalendar {
    zone: Tz,
    holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are working days (调休 make-up days).
    working_weekends: BTreeSet<NaiveDate>,
}

impl Default for WorkingCalendar {
    fn default() -> Self {
        Self { zone: chrono_tz::Asia::Shanghai, holidays: BTreeSet::new(), working_weekends: BTreeSet::new() }
    }
}

impl WorkingCalendar {
    pub fn new(
        zone: &str,
        holidays: impl IntoIterator<Item = NaiveDate>,
        working_weekends: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, CalendarError> {
        let zone: Tz = zone.parse().map_err(|_| CalendarError::UnknownZone(zone.to_string()))?;
        let holidays: BTreeSet<_> = holidays.into_iter().collect();
        let working_weekends: BTreeSet<_> = working_weekends.into_iter().collect();
        if let Some(d) = holidays.intersection(&working_weekends).next() {
            return Err(CalendarError::Conflict(*d));
        }
        Ok(Self { zone, holidays, working_weekends })
    }

    /// Parses a comma- or whitespace-separated list of `YYYY-MM-DD` dates, the
    /// form used by `CRM_HOLIDAYS` and `CRM_WORKING_WEEKENDS`.
    pub fn parse_dates(list: &str) -> Result<Vec<NaiveDate>, CalendarError> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| CalendarError::BadDate(s.to_string())))
            .collect()
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.holidays.contains(&day) {
            return false;
        }
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        !weekend || self.working_weekends.contains(&day)
    }

    /// The `n`th working day strictly after `day` (`n = 0` gives `day` itself).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d = next_day(d);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The local business date of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// The calendar date a deadline falls due: its local date, except that a
    /// deadline at local midnight ("by the end of the 6th", stored as the 7th
    /// 00:00) falls due on the day before.
    pub fn due_date(&self, deadline: DateTime<Utc>) -> NaiveDate {
        self.local_date(deadline - chrono::Duration::microseconds(1))
    }

    /// "Within `n` working days of `start`": the end (local midnight) of the
    /// `n`th working day after the local date of `start`. Something received
    /// on Friday with 2 working days is due by the end of Tuesday.
    pub fn working_days_deadline(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let last_day = self.add_working_days(self.local_date(start), n);
        self.start_of_day(next_day(last_day))
    }

    /// Number of working days in `(from, to]`; zero when `to <= from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut d = from;
        let mut n = 0;
        while d < to {
            d = next_day(d);
            if self.is_working_day(d) {
                n += 1;
            }
        }
        n
    }

    /// Local midnight of `day` as an instant. Zones with a DST gap at
    /// midnight take the first valid instant of the day.
    pub fn start_of_day(&self, day: NaiveDate) -> DateTime<Utc> {
        let mut t = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        for _ in 0..4 {
            if let Some(local) = self.zone.from_local_datetime(&t).earliest() {
                return local.with_timezone(&Utc);
            }
            t += chrono::Duration::minutes(30);
        }
        Utc.from_utc_datetime(&t)
    }
}

fn next_day(d: NaiveDate) -> NaiveDate {
    d.checked_add_days(Days::new(1)).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    /// 2026 National Day week as announced: Oct 1-7 off, Sat Oct 10 worked.
    fn national_day_2026() -> WorkingCalendar {
        let holidays = (1..=7).map(|day| d(&format!("2026-10-0{day}")));
        WorkingCalendar::new("Asia/Shanghai", holidays, [d("2026-10-10")]).unwrap_or_default()
    }

    #[test]
    fn weekends_are_skipped() {
        let cal = WorkingCalendar::default();
        // Friday + 1 = Monday; Friday + 2 = Tuesday.
        assert_eq!(cal.add_working_days(d("2026-11-20"), 1), d("2026-11-23"));
        assert_eq!(cal.add_working_days(d("2026-11-20"), 2), d("2026-11-24"));
        // Counting from a Saturday starts on Monday.
        assert_eq!(cal.add_working_days(d("2026-11-21"), 1), d("2026-11-23"));
        assert_eq!(cal.add_working_days(d("2026-11-21"), 0), d("2026-11-21"));
    }

    #[test]
    fn holidays_are_skipped_and_make_up_saturdays_count() {
        let cal = national_day_2026();
        // Wed Sep 30 + 1 working day: Oct 1-7 off, Thu Oct 8.
        assert_eq!(cal.add_working_days(d("2026-09-30"), 1), d("2026-10-08"));
        // Fri Oct 9 + 1: Saturday Oct 10 is a make-up working day.
        assert_eq!(cal.add_working_days(d("2026-10-09"), 1), d("2026-10-10"));
        assert!(!cal.is_working_day(d("2026-10-05")));
        assert!(cal.is_working_day(d("2026-10-10")));
        assert!(!cal.is_working_day(d("2026-10-11")));
    }

    #[test]
    fn deadline_is_end_of_the_nth_working_day_in_shanghai() {
        let cal = WorkingCalendar::default();
        // Friday 2026-11-20 23:30 in Shanghai is 15:30 UTC.
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 15, 30, 0).single().unwrap_or_default();
        assert_eq!(cal.local_date(start), d("2026-11-20"));
        // Due by the end of Tuesday 24th local = 2026-11-24T16:00Z.
        let want = Utc.with_ymd_and_hms(2026, 11, 24, 16, 0, 0).single().unwrap_or_default();
        assert_eq!(cal.working_days_deadline(start, 2), want);
        // 16:30 UTC on Friday is already Saturday in Shanghai: due end of Tuesday too.
        let late = Utc.with_ymd_and_hms(2026, 11, 20, 16, 30, 0).single().unwrap_or_default();
        assert_eq!(cal.local_date(late), d("2026-11-21"));
        assert_eq!(cal.working_days_deadline(late, 2), want);
    }

    #[test]
    fn config_errors_are_reported() {
        assert!(matches!(WorkingCalendar::new("Mars/Olympus", [], []), Err(CalendarError::UnknownZone(_))));
        assert!(matches!(WorkingCalendar::parse_dates("2026-13-01"), Err(CalendarError::BadDate(_))));
        assert_eq!(WorkingCalendar::parse_dates("2026-10-01, 2026-10-02").map(|v| v.len()), Ok(2));
        assert!(matches!(
            WorkingCalendar::new("Asia/Shanghai", [d("2026-10-10")], [d("2026-10-10")]),
            Err(CalendarError::Conflict(_))
        ));
    }

    fn arb_calendar() -> impl Strategy<Value = WorkingCalendar> {
        proptest::collection::btree_set(0u64..120, 0..30).prop_map(|offsets| {
            let base = d("2026-09-01");
            let holidays = offsets.into_iter().filter_map(|o| base.checked_add_days(Days::new(o)));
            WorkingCalendar::new("Asia/Shanghai", holidays, []).unwrap_or_default()
        })
    }

    proptest! {
        #[test]
        fn result_is_a_working_day_with_exactly_n_working_days_between(cal in arb_calendar(), start in 0u64..100, n in 1u32..20) {
            let from = d("2026-09-01").checked_add_days(Days::new(start)).unwrap_or_default();
            let due = cal.add_working_days(from, n);
            prop_assert!(due > from);
            prop_assert!(cal.is_working_day(due));
            prop_assert_eq!(cal.working_days_between(from, due), n);
        }

        #[test]
        fn adding_is_additive(cal in arb_calendar(), start in 0u64..60, a in 0u32..10, b in 0u32..10) {
            let from = d("2026-09-01").checked_add_days(Days::new(start)).unwrap_or_default();
            let step = cal.add_working_days(cal.add_working_days(from, a), b);
            // Adding a then b equals adding a+b when a > 0 (a lands on a working day).
            if a > 0 {
                prop_assert_eq!(step, cal.add_working_days(from, a + b));
            }
        }

        #[test]
        fn deadline_is_never_before_start(cal in arb_calendar(), secs in 1_788_000_000i64..1_800_000_000, n in 0u32..10) {
            let start = Utc.timestamp_opt(secs, 0).single().unwrap_or_default();
            prop_assert!(cal.working_days_deadline(start, n) > start);
        }
    }

    /// Issue 14: "by the end of 2027-01-06" is 2027-01-07 00:00 Shanghai
    /// and falls due on the 6th; a deadline during the day on its own date.
    #[test]
    fn a_deadline_at_midnight_falls_due_the_day_before() {
        let cal = WorkingCalendar::default();
        let day = |d: u32| NaiveDate::from_ymd_opt(2027, 1, d).unwrap_or_default();
        assert_eq!(cal.due_date(cal.start_of_day(day(7))), day(6));
        let afternoon = cal.start_of_day(day(7)) + chrono::Duration::hours(15);
        assert_eq!(cal.due_date(afternoon), day(7));
        assert_eq!(cal.due_date(cal.working_days_deadline(cal.start_of_day(day(4)), 2)), day(6));
    }
}

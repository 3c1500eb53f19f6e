use super::*;
use proptest::prelude::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
}

fn at(day: u32) -> DateTime<Utc> {
    d(2026, 11, day).and_hms_opt(2, 0, 0).unwrap_or_default().and_utc()
}

fn meter(prepaid: bool) -> Meter {
    Meter {
        id: MeterId::new(),
        customer_id: CustomerId::new(),
        customer_name: "x".into(),
        service_level: ServiceLevel::General,
        number: "M1".into(),
        kind: MeterKind::Gas,
        class: MeterClass::Residential,
        installed_on: d(2020, 1, 1),
        flow_direction: FlowDirection::Forward,
        prepaid,
        route_id: uuid::Uuid::nil(),
        site_address: "a".into(),
        created_by: "u".into(),
        created_at: Utc::now(),
    }
}

fn read(v: i64) -> Outcome {
    Outcome::Read { base_reading: 0, cumulative_volume: v, balance: None, change: RegisterChange::None }
}

#[test]
fn periods_and_windows_follow_the_schedule() {
    assert_eq!(Schedule::CommercialMonthly.period_of(d(2026, 11, 22)), "2026-11");
    assert_eq!(Schedule::ResidentialIndoorQuarterly.period_of(d(2026, 11, 22)), "2026-Q4");
    let w = Schedule::CommercialMonthly.windows(2026);
    assert_eq!(w.len(), 12);
    assert_eq!((w[1].first_day, w[1].last_day), (d(2026, 2, 22), d(2026, 2, 23)));
    let r = Schedule::ResidentialMonthly.windows(2028);
    assert_eq!(r[1].last_day, d(2028, 2, 29));
    let q = Schedule::ResidentialIndoorQuarterly.windows(2026);
    assert_eq!(q.iter().map(|w| w.period.as_str()).collect::<Vec<_>>(), ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]);
    assert_eq!((q[3].first_day, q[3].last_day), (d(2026, 10, 1), d(2026, 12, 31)));
    assert!(Schedule::ResidentialMonthly.is_period("2026-11"));
    assert!(!Schedule::ResidentialMonthly.is_period("2026-13"));
    assert!(!Schedule::ResidentialMonthly.is_period("2026-Q4"));
    assert!(Schedule::ResidentialIndoorQuarterly.is_period("2026-Q4"));
    assert!(!Schedule::ResidentialIndoorQuarterly.is_period("2026-Q5"));
    assert_eq!(
        [Schedule::CommercialMonthly, Schedule::ResidentialMonthly, Schedule::ResidentialIndoorQuarterly]
            .map(Schedule::target_bp),
        [10_000, 9_800, 7_000]
    );
}

#[test]
fn estimates_misses_without_reason_and_wrong_balances_are_refused() {
    let m = meter(false);
    let r = |o: &Outcome, m: &Meter| check(m, o, at(22), None).map_err(|e| e.reason);
    assert_eq!(r(&Outcome::NotRead, &m), Err("ESTIMATE_NOT_ALLOWED"));
    assert_eq!(r(&Outcome::Missed { reason: " ".into() }, &m), Err("INVALID"));
    assert!(r(&Outcome::Missed { reason: "门锁".into() }, &m).is_ok());
    let with_balance = Outcome::Read {
        base_reading: 0,
        cumulative_volume: 5,
        balance: Some(Money::cny(100)),
        change: RegisterChange::None,
    };
    assert_eq!(r(&with_balance, &m), Err("INVALID"));
    assert!(r(&with_balance, &meter(true)).is_ok());
    assert_eq!(r(&read(5), &meter(true)), Err("INVALID"));
}

#[test]
fn readings_go_forward_and_compute_consumption() {
    let m = meter(false);
    let prev = Previous { read_at: at(1), cumulative_volume: 1_000, consumption: None, days: None };
    assert_eq!(check(&m, &read(900), at(22), Some(&prev)).map_err(|e| e.reason), Err("BACKWARDS_READING"));
    assert_eq!(check(&m, &read(1_100), at(1), Some(&prev)).map_err(|e| e.reason), Err("OUT_OF_ORDER"));
    let ok = check(&m, &read(1_210), at(22), Some(&prev));
    assert_eq!(ok, Ok(Accepted { consumption: Some(210), days: Some(21), anomaly: None }));
}

#[test]
fn fast_slow_and_dead_meters_are_flagged() {
    assert_eq!(detect(0, 30, 300, 30), Some(Anomaly::Dead));
    assert_eq!(detect(901, 30, 300, 30), Some(Anomaly::Fast));
    assert_eq!(detect(900, 30, 300, 30), None);
    assert_eq!(detect(99, 30, 300, 30), Some(Anomaly::Slow));
    assert_eq!(detect(100, 30, 300, 30), None);
    // Daily rates, not totals: twice the days, twice the volume is normal.
    assert_eq!(detect(600, 60, 300, 30), None);
    // Nothing to compare with.
    assert_eq!(detect(0, 30, 0, 30), None);
}

#[test]
fn read_rates_round_down() {
    assert_eq!(rate_bp(49, 50), 9_800);
    assert_eq!(rate_bp(97, 99), 9_797);
    assert_eq!(rate_bp(0, 0), 10_000);
}

proptest! {
    /// Whatever the volumes, an accepted reading never has negative
    /// consumption, and consumption in line with the past is no anomaly.
    #[test]
    fn accepted_consumption_is_never_negative(prev in 0i64..1_000_000, now in 0i64..1_000_000, day in 2u32..28) {
        let p = Previous { read_at: at(1), cumulative_volume: prev, consumption: Some(100), days: Some(10) };
        if let Ok(a) = check(&meter(false), &read(now), at(day), Some(&p)) {
            prop_assert!(a.consumption.unwrap_or(0) >= 0);
        }
        prop_assert_eq!(detect(i64::from(day) * 10, i32::try_from(day).unwrap_or(1), 100, 10), None);
    }
}

#[test]
fn replacements_and_roll_overs_may_go_down_but_never_consume_negatively() {
    let m = meter(false);
    let prev = Previous { read_at: at(1), cumulative_volume: 1_000, consumption: None, days: None };
    let with = |v: i64, base: i64, change: RegisterChange| Outcome::Read {
        base_reading: base,
        cumulative_volume: v,
        balance: None,
        change,
    };
    // The old meter read 1 200 when it came out; the new one started at 10 and reads 60.
    let replaced = check(&m, &with(60, 10, RegisterChange::MeterReplaced { old_final: 1_200 }), at(22), Some(&prev));
    assert_eq!(replaced.map(|a| a.consumption), Ok(Some(250)));
    let bad = check(&m, &with(60, 10, RegisterChange::MeterReplaced { old_final: 900 }), at(22), Some(&prev));
    assert_eq!(bad.map_err(|e| e.reason), Err("INVALID"));
    // A 9 999 L register wrapped: 1 000 → 9 999 → 0 → 300.
    let rolled = check(&m, &with(300, 0, RegisterChange::RolledOver { max: 9_999 }), at(22), Some(&prev));
    assert_eq!(rolled.map(|a| a.consumption), Ok(Some(9_299)));
    let not_rolled = check(&m, &with(1_300, 0, RegisterChange::RolledOver { max: 9_999 }), at(22), Some(&prev));
    assert_eq!(not_rolled.map_err(|e| e.reason), Err("INVALID"));
    for change in [
        RegisterChange::None,
        RegisterChange::MeterReplaced { old_final: 2_000 },
        RegisterChange::RolledOver { max: 5_000 },
    ] {
        for v in [0, 500, 999, 1_000, 4_000] {
            if let Ok(a) = check(&m, &with(v, 0, change), at(22), Some(&prev)) {
                assert!(a.consumption.unwrap_or(0) >= 0, "{change:?} {v}");
            }
        }
    }
}

/// Issue 14 (DSP-7): meters fit routes of their class, and commercial
/// readings off the 22nd–23rd are outside the window.
#[test]
fn routes_take_their_class_and_commercial_windows_are_two_days() {
    use MeterClass::*;
    assert!(Schedule::CommercialMonthly.takes(Commercial) && Schedule::CommercialMonthly.takes(Industrial));
    assert!(!Schedule::CommercialMonthly.takes(Residential));
    for s in [Schedule::ResidentialMonthly, Schedule::ResidentialIndoorQuarterly] {
        assert!(s.takes(Residential) && !s.takes(Commercial) && !s.takes(Industrial));
    }
    assert!(!Schedule::CommercialMonthly.in_window(d(2026, 11, 10)));
    assert!(Schedule::CommercialMonthly.in_window(d(2026, 11, 22)));
    assert!(Schedule::CommercialMonthly.in_window(d(2026, 11, 23)));
    assert!(!Schedule::CommercialMonthly.in_window(d(2026, 11, 24)));
    assert!(Schedule::ResidentialMonthly.in_window(d(2026, 11, 10)));
    assert!(Schedule::ResidentialIndoorQuarterly.in_window(d(2026, 12, 31)));
}

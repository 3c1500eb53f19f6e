//! DSP-7 meter reading: route schedules and their periods, read-rate targets,
//! the checks a field reading must pass (never an estimate), and fast, slow
//! or dead meters.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use crm_domain::{Money, ids::CustomerId};

use super::ServiceLevel;

crm_domain::typed_id!(
    /// A meter on a reading route (DSP-7).
    MeterId
);

crm_domain::vocabulary!(Schedule {
    CommercialMonthly = "commercial_monthly",
    ResidentialMonthly = "residential_monthly",
    ResidentialIndoorQuarterly = "residential_indoor_quarterly",
});
crm_domain::vocabulary!(MeterKind { Gas = "gas", Water = "water", Heat = "heat" });
crm_domain::vocabulary!(MeterClass { Residential = "residential", Commercial = "commercial", Industrial = "industrial" });
crm_domain::vocabulary!(FlowDirection { Forward = "forward", Reverse = "reverse", Bidirectional = "bidirectional" });
crm_domain::vocabulary!(Anomaly { Fast = "fast", Slow = "slow", Dead = "dead" });

/// A meter is fast or slow when its daily consumption is more than this many
/// times, or less than a this-many-th of, the previous interval's.
pub const ANOMALY_FACTOR: i128 = 3;

/// One reading window of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub period: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

impl Schedule {
    /// DSP-7 read-rate targets in basis points.
    pub fn target_bp(self) -> i32 {
        match self {
            Schedule::CommercialMonthly => 10_000,
            Schedule::ResidentialMonthly => 9_800,
            Schedule::ResidentialIndoorQuarterly => 7_000,
        }
    }

    /// Whether a meter of `class` belongs on a route of this schedule
    /// (DSP-7): commercial routes read commercial and industrial meters,
    /// residential routes residential ones.
    pub fn takes(self, class: MeterClass) -> bool {
        match self {
            Schedule::CommercialMonthly => class != MeterClass::Residential,
            Schedule::ResidentialMonthly | Schedule::ResidentialIndoorQuarterly => class == MeterClass::Residential,
        }
    }

    /// Whether a reading taken on `day` is inside its period's planned
    /// window: commercial meters are read on the 22nd–23rd; residential ones
    /// any day of their month or quarter.
    pub fn in_window(self, day: NaiveDate) -> bool {
        match self {
            Schedule::CommercialMonthly => (22..=23).contains(&day.day()),
            Schedule::ResidentialMonthly | Schedule::ResidentialIndoorQuarterly => true,
        }
    }

    /// The period a reading taken on `day` counts for: the month, or the
    /// quarter for indoor meters.
    pub fn period_of(self, day: NaiveDate) -> String {
        match self {
            Schedule::CommercialMonthly | Schedule::ResidentialMonthly => format!("{}-{:02}", day.year(), day.month()),
            Schedule::ResidentialIndoorQuarterly => format!("{}-Q{}", day.year(), (day.month() - 1) / 3 + 1),
        }
    }

    /// Whether `period` is a period of this schedule ("2026-11" or "2026-Q4").
    pub fn is_period(self, period: &str) -> bool {
        let Some((y, rest)) = period.split_once('-') else { return false };
        if y.len() != 4 || y.parse::<i32>().is_err() {
            return false;
        }
        match self {
            Schedule::CommercialMonthly | Schedule::ResidentialMonthly => {
                rest.len() == 2 && rest.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
            }
            Schedule::ResidentialIndoorQuarterly => rest
                .strip_prefix('Q')
                .is_some_and(|q| q.len() == 1 && q.parse::<u32>().is_ok_and(|q| (1..=4).contains(&q))),
        }
    }

    /// The planned windows of `year`: commercial meters on the 22nd–23rd of
    /// each month, residential during the month, indoor meters during the
    /// quarter.
    pub fn windows(self, year: i32) -> Vec<Window> {
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
        let month_end = |m: u32| {
            let next = if m == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { day(m + 1, 1) };
            next.and_then(|n| n.pred_opt())
        };
        let mut out = vec![];
        match self {
            Schedule::CommercialMonthly | Schedule::ResidentialMonthly => {
                for m in 1..=12 {
                    let (first, last) = if self == Schedule::CommercialMonthly {
                        (day(m, 22), day(m, 23))
                    } else {
                        (day(m, 1), month_end(m))
                    };
                    if let (Some(first_day), Some(last_day)) = (first, last) {
                        out.push(Window { period: format!("{year}-{m:02}"), first_day, last_day });
                    }
                }
            }
            Schedule::ResidentialIndoorQuarterly => {
                for q in 1..=4u32 {
                    if let (Some(first_day), Some(last_day)) = (day(q * 3 - 2, 1), month_end(q * 3)) {
                        out.push(Window { period: format!("{year}-Q{q}"), first_day, last_day });
                    }
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub id: uuid::Uuid,
    pub name: String,
    pub schedule: Schedule,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub id: MeterId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub service_level: ServiceLevel,
    pub number: String,
    pub kind: MeterKind,
    /// Residential, commercial or industrial: decides the routes it fits.
    pub class: MeterClass,
    pub installed_on: NaiveDate,
    pub flow_direction: FlowDirection,
    pub prepaid: bool,
    pub route_id: uuid::Uuid,
    pub site_address: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// How the register changed since the previous reading (DSP-7): only these
/// let a reading go below the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegisterChange {
    #[default]
    None,
    /// A new meter was fitted; the old one read `old_final` when it came out,
    /// the new one starts at the reading's `base_reading`.
    MeterReplaced { old_final: i64 },
    /// The register passed `max` and wrapped to zero.
    RolledOver { max: i64 },
}

impl RegisterChange {
    pub fn as_str(&self) -> Option<&'static str> {
        match self {
            RegisterChange::None => None,
            RegisterChange::MeterReplaced { .. } => Some("meter_replaced"),
            RegisterChange::RolledOver { .. } => Some("rolled_over"),
        }
    }
}

/// What the field sent for one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Read {
        base_reading: i64,
        cumulative_volume: i64,
        balance: Option<Money>,
        change: RegisterChange,
    },
    Missed {
        reason: String,
    },
    /// Estimated or copied: never accepted (DSP-7).
    NotRead,
}

/// The last read reading of a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub read_at: DateTime<Utc>,
    pub cumulative_volume: i64,
    pub consumption: Option<i64>,
    pub days: Option<i32>,
}

/// A reading accepted for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub consumption: Option<i64>,
    pub days: Option<i32>,
    pub anomaly: Option<Anomaly>,
}

/// Why a reading was refused: a stable reason and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: &'static str,
    pub message: String,
}

fn reject(reason: &'static str, message: impl Into<String>) -> Reject {
    Reject { reason, message: message.into() }
}

/// Checks one reading of `meter` against its previous read reading.
pub fn check(
    meter: &Meter,
    outcome: &Outcome,
    read_at: DateTime<Utc>,
    previous: Option<&Previous>,
) -> Result<Accepted, Reject> {
    let (volume, balance) = match outcome {
        Outcome::NotRead => {
            return Err(reject(
                "ESTIMATE_NOT_ALLOWED",
                "estimated or copied readings are not accepted; record the reading as missed with a reason",
            ));
        }
        Outcome::Missed { reason } if reason.trim().is_empty() => {
            return Err(reject("INVALID", "a missed reading needs missed_reason"));
        }
        Outcome::Missed { .. } => return Ok(Accepted { consumption: None, days: None, anomaly: None }),
        Outcome::Read { base_reading, cumulative_volume, balance, .. } => {
            if *base_reading < 0 || *cumulative_volume < 0 {
                return Err(reject("INVALID", "register values must not be negative"));
            }
            (*cumulative_volume, *balance)
        }
    };
    match (meter.prepaid, balance) {
        (true, None) => return Err(reject("INVALID", "a prepaid meter's reading records the balance left")),
        (false, Some(_)) => return Err(reject("INVALID", "only prepaid meters carry a balance")),
        _ => {}
    }
    let Some(prev) = previous else { return Ok(Accepted { consumption: None, days: None, anomaly: None }) };
    if read_at <= prev.read_at {
        return Err(reject("OUT_OF_ORDER", "the meter was read later than this already"));
    }
    let (change, base) = match outcome {
        Outcome::Read { change, base_reading, .. } => (*change, *base_reading),
        _ => (RegisterChange::None, 0),
    };
    // Consumption is never negative: a register that went down must say why.
    let consumption = match change {
        RegisterChange::None if volume < prev.cumulative_volume => {
            return Err(reject(
                "BACKWARDS_READING",
                format!(
                    "{volume} is below the previous reading {}; mark it as a meter replacement or roll-over",
                    prev.cumulative_volume
                ),
            ));
        }
        RegisterChange::None => volume - prev.cumulative_volume,
        RegisterChange::MeterReplaced { old_final } if old_final >= prev.cumulative_volume && volume >= base => {
            (old_final - prev.cumulative_volume) + (volume - base)
        }
        RegisterChange::MeterReplaced { .. } => {
            return Err(reject(
                "INVALID",
                "a replacement needs the old meter's final value (not below the previous reading) and a new \
                 register not below its base",
            ));
        }
        RegisterChange::RolledOver { max } if max > prev.cumulative_volume && volume < prev.cumulative_volume => {
            (max - prev.cumulative_volume) + volume
        }
        RegisterChange::RolledOver { .. } => {
            return Err(reject(
                "INVALID",
                "a roll-over wraps past the register's maximum (above the previous reading) to below the previous reading",
            ));
        }
    };
    let days = i32::try_from((read_at - prev.read_at).num_days().max(1)).unwrap_or(i32::MAX);
    let anomaly = match (prev.consumption, prev.days) {
        (Some(p), Some(pd)) => detect(consumption, days, p, pd),
        _ => None,
    };
    Ok(Accepted { consumption: Some(consumption), days: Some(days), anomaly })
}

/// Compares daily consumption with the previous interval's, in integers:
/// a meter that stopped is dead, one running `ANOMALY_FACTOR` times faster
/// or slower is fast or slow.
pub fn detect(consumption: i64, days: i32, prev: i64, prev_days: i32) -> Option<Anomaly> {
    if prev <= 0 || prev_days <= 0 || days <= 0 {
        return None;
    }
    if consumption == 0 {
        return Some(Anomaly::Dead);
    }
    // consumption/days vs prev/prev_days, cross-multiplied.
    let now = i128::from(consumption) * i128::from(prev_days);
    let before = i128::from(prev) * i128::from(days);
    if now > ANOMALY_FACTOR * before {
        Some(Anomaly::Fast)
    } else if now * ANOMALY_FACTOR < before {
        Some(Anomaly::Slow)
    } else {
        None
    }
}

/// Read rate in basis points, rounded down; an empty route has nothing to
/// miss.
pub fn rate_bp(read: i64, planned: i64) -> i32 {
    if planned <= 0 {
        return 10_000;
    }
    i32::try_from(read.saturating_mul(10_000) / planned).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;

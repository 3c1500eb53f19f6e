//! BIL-3 usage: consecutive meter readings become consumption, and a period's
//! consumption becomes charges with the tariff in force on each day.
//!
//! - A normal reading is never lower than the previous one (rejected).
//! - A replacement records the old meter's final reading and the new meter's
//!   first: consumption is the old meter's last stretch; the new meter counts
//!   from its first reading.
//! - A roll-over wraps past the meter's maximum: consumption is the way up to
//!   the maximum plus the new reading.
//!   So consumption is never negative.
//! - When tariffs change inside a period, consumption is split by days at each
//!   version, and each version's block bounds are scaled by its share of the
//!   period's days (the tiers are per billing period).

use chrono::NaiveDate;

use super::{
    RuleViolation,
    pricing::{Block, BlockCharge, div_half_up, out_of_range, tiered_charge, vat_of},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingKind {
    Normal,
    Replacement { old_meter_final: i64 },
    Rollover { meter_max: i64 },
}

/// Litres consumed between `previous` and a reading (`None` previous: the
/// first reading of a meter is a base, not consumption). `Err` names why the
/// pair is impossible.
pub fn consumption(previous: Option<i64>, reading: i64, kind: ReadingKind) -> Result<i64, &'static str> {
    if reading < 0 {
        return Err("INVALID");
    }
    let Some(prev) = previous else {
        return Ok(0);
    };
    match kind {
        ReadingKind::Normal if reading >= prev => Ok(reading - prev),
        ReadingKind::Normal => Err("READING_BELOW_PREVIOUS"),
        ReadingKind::Replacement { old_meter_final } if old_meter_final >= prev => Ok(old_meter_final - prev),
        ReadingKind::Replacement { .. } => Err("OLD_METER_FINAL_BELOW_PREVIOUS"),
        ReadingKind::Rollover { meter_max } if meter_max > prev && reading < prev => Ok(meter_max - prev + reading),
        ReadingKind::Rollover { .. } => Err("NOT_A_ROLLOVER"),
    }
}

/// What becomes of a reading of a meter whose latest recorded reading is
/// `latest` (day, litres) — the one rule of the RecordMeterReadings stream
/// and of `meter.read` events. `already` says the meter has a reading
/// on `day` recorded (a resent reading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Duplicate,
    Reject { reason: &'static str, message: String },
}

pub fn judge(
    latest: Option<(NaiveDate, i64)>,
    already: bool,
    day: NaiveDate,
    litres: i64,
    kind: ReadingKind,
) -> Verdict {
    if already {
        return Verdict::Duplicate;
    }
    match latest {
        // Twice in the same stream.
        Some((d, _)) if d == day => return Verdict::Duplicate,
        Some((d, _)) if d > day => {
            return Verdict::Reject {
                reason: "OUT_OF_ORDER",
                message: format!("the meter already has a reading on {d}"),
            };
        }
        _ => {}
    }
    match consumption(latest.map(|p| p.1), litres, kind) {
        Ok(_) => Verdict::Accept,
        Err(reason) => Verdict::Reject { reason, message: "the reading does not follow the previous one".into() },
    }
}

/// One tariff version's part of a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment<'a> {
    pub days: i64,
    pub blocks: &'a [Block],
    pub vat_rate_bp: i32,
}

/// Net and VAT of `volume_litres` over a period made of `segments` (days
/// summing to the period's length); AMOUNT_OUT_OF_RANGE when a sum does not
/// fit.
pub fn period_charge(
    segments: &[Segment<'_>],
    volume_litres: i64,
) -> Result<(i64, i64, Vec<BlockCharge>), RuleViolation> {
    let total_days: i64 = segments.iter().map(|s| s.days).sum();
    if total_days <= 0 || volume_litres <= 0 {
        return Ok((0, 0, Vec::new()));
    }
    let (mut net, mut vat) = (0i64, 0i64);
    let mut lines = Vec::new();
    let mut assigned = 0i64;
    for (i, s) in segments.iter().enumerate() {
        // The last segment takes the rounding remainder so every litre is billed once.
        let litres = if i + 1 == segments.len() {
            volume_litres - assigned
        } else {
            // A share of `volume_litres`, so it fits.
            i64::try_from(div_half_up(i128::from(volume_litres) * i128::from(s.days), i128::from(total_days)))
                .map_err(|_| out_of_range())?
        };
        assigned += litres;
        let scaled: Vec<Block> = s
            .blocks
            .iter()
            .map(|b| Block {
                up_to_m3: b.up_to_m3.map(|m3| {
                    i64::try_from(div_half_up(i128::from(m3) * i128::from(s.days), i128::from(total_days)))
                        .unwrap_or(m3)
                }),
                price_minor_per_m3: b.price_minor_per_m3,
            })
            .collect();
        let charges = tiered_charge(&scaled, litres)?;
        let seg_net =
            charges.iter().try_fold(0i64, |sum, c| sum.checked_add(c.amount_minor)).ok_or_else(out_of_range)?;
        net = net.checked_add(seg_net).ok_or_else(out_of_range)?;
        vat = vat.checked_add(vat_of(seg_net, s.vat_rate_bp)?).ok_or_else(out_of_range)?;
        lines.extend(charges);
    }
    Ok((net, vat, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn readings_become_consumption() {
        assert_eq!(consumption(None, 500, ReadingKind::Normal), Ok(0));
        assert_eq!(consumption(Some(500), 800, ReadingKind::Normal), Ok(300));
        assert_eq!(consumption(Some(800), 700, ReadingKind::Normal), Err("READING_BELOW_PREVIOUS"));
        // Old meter read 900 before it came out; the new one starts at 3.
        assert_eq!(consumption(Some(800), 3, ReadingKind::Replacement { old_meter_final: 900 }), Ok(100));
        // 99 999 999 L register wrapped: 99 999 000 → 500.
        assert_eq!(consumption(Some(99_999_000), 500, ReadingKind::Rollover { meter_max: 100_000_000 }), Ok(1_500));
        assert!(consumption(Some(500), 600, ReadingKind::Rollover { meter_max: 1_000 }).is_err());
    }

    #[test]
    fn readings_are_judged_against_the_latest() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap_or_default();
        assert_eq!(judge(None, false, d(1), 5, ReadingKind::Normal), Verdict::Accept);
        assert_eq!(judge(Some((d(1), 5)), false, d(2), 9, ReadingKind::Normal), Verdict::Accept);
        assert_eq!(judge(Some((d(2), 9)), true, d(1), 5, ReadingKind::Normal), Verdict::Duplicate);
        assert_eq!(judge(Some((d(2), 9)), false, d(2), 9, ReadingKind::Normal), Verdict::Duplicate);
        assert!(matches!(
            judge(Some((d(2), 9)), false, d(1), 5, ReadingKind::Normal),
            Verdict::Reject { reason: "OUT_OF_ORDER", .. }
        ));
        assert!(matches!(
            judge(Some((d(1), 9)), false, d(2), 5, ReadingKind::Normal),
            Verdict::Reject { reason: "READING_BELOW_PREVIOUS", .. }
        ));
    }

    fn flat(price: i64) -> Vec<Block> {
        vec![Block { up_to_m3: None, price_minor_per_m3: price }]
    }

    #[test]
    fn a_mid_period_tariff_change_splits_by_days() {
        let old = flat(200);
        let new = flat(300);
        // 30 days, the new price from day 21: 30 m³ → 20 m³ at 2.00, 10 m³ at 3.00.
        let (net, vat, _) = period_charge(
            &[
                Segment { days: 20, blocks: &old, vat_rate_bp: 900 },
                Segment { days: 10, blocks: &new, vat_rate_bp: 900 },
            ],
            30_000,
        )
        .unwrap_or_default();
        assert_eq!(net, 4_000 + 3_000);
        assert_eq!(vat, 360 + 270);
    }

    #[test]
    fn block_bounds_scale_with_the_segment() {
        let ladder = vec![
            Block { up_to_m3: Some(300), price_minor_per_m3: 100 },
            Block { up_to_m3: None, price_minor_per_m3: 200 },
        ];
        // Half the period at this tariff: its first block ends at 150 m³.
        let (net, _, lines) = period_charge(
            &[
                Segment { days: 15, blocks: &ladder, vat_rate_bp: 0 },
                Segment { days: 15, blocks: &ladder, vat_rate_bp: 0 },
            ],
            400_000,
        )
        .unwrap_or_default();
        assert_eq!(lines.len(), 4);
        assert_eq!(net, 2 * (150 * 100 + 50 * 200));
    }

    proptest! {
        #[test]
        fn consumption_is_never_negative(prev in 0i64..1_000_000, reading in 0i64..1_000_000, max in 1i64..2_000_000, old in 0i64..1_000_000, k in 0u8..3) {
            let kind = match k { 0 => ReadingKind::Normal, 1 => ReadingKind::Replacement { old_meter_final: old }, _ => ReadingKind::Rollover { meter_max: max } };
            if let Ok(c) = consumption(Some(prev), reading, kind) {
                prop_assert!(c >= 0);
            }
        }

        #[test]
        fn splitting_a_period_bills_every_litre_once(volume in 0i64..2_000_000, a in 1i64..31, b in 1i64..31) {
            let x = flat(100);
            let y = flat(100);
            let (_, _, lines) = period_charge(&[Segment { days: a, blocks: &x, vat_rate_bp: 0 }, Segment { days: b, blocks: &y, vat_rate_bp: 0 }], volume).unwrap_or_default();
            prop_assert_eq!(lines.iter().map(|l| l.volume_litres).sum::<i64>(), volume.max(0));
        }

        #[test]
        fn one_segment_equals_the_plain_tariff(volume in 0i64..2_000_000, days in 1i64..40) {
            let ladder = vec![Block { up_to_m3: Some(300), price_minor_per_m3: 261 }, Block { up_to_m3: None, price_minor_per_m3: 391 }];
            let (net, _, _) = period_charge(&[Segment { days, blocks: &ladder, vat_rate_bp: 0 }], volume).unwrap_or_default();
            prop_assert_eq!(net, tiered_charge(&ladder, volume).unwrap_or_default().iter().map(|c| c.amount_minor).sum::<i64>());
        }
    }
}

//! DSP-3/DSP-4 planning rules: priority from urgency and service level, the
//! urgent-parts target, and how candidates for an order are ranked.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_domain::WorkingCalendar;

use super::{Kind, Priority, RuleViolation, ServiceLevel, Technician, Urgency, WorkOrder};

/// DSP-4: urgent spare parts for a repair arrive within 6 hours.
pub const PARTS_WINDOW: Duration = Duration::hours(6);

/// DSP-4: urgency first, then the customer's service level. Key and special
/// customers are served one step ahead of general ones.
pub fn priority(urgency: Urgency, level: ServiceLevel) -> Priority {
    match (urgency, level) {
        (Urgency::Urgent, ServiceLevel::Key | ServiceLevel::Special) => Priority::Critical,
        (Urgency::Urgent, ServiceLevel::General) => Priority::High,
        (Urgency::Normal, ServiceLevel::Key | ServiceLevel::Special) => Priority::Medium,
        (Urgency::Normal, ServiceLevel::General) => Priority::Low,
    }
}

/// When the parts of an order approved at `approved_at` are due: urgent
/// repairs only (DSP-4).
pub fn parts_due(kind: Kind, urgency: Urgency, approved_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (kind == Kind::Repair && urgency == Urgency::Urgent).then(|| approved_at + PARTS_WINDOW)
}

/// DSP-3: work is booked on working days of the calendar, today or later.
pub fn check_day(calendar: &WorkingCalendar, day: NaiveDate, today: NaiveDate) -> Result<(), RuleViolation> {
    if day < today {
        return Err(RuleViolation::new("DAY_IN_PAST", format!("{day} has passed; book today or later")));
    }
    if !calendar.is_working_day(day) {
        return Err(RuleViolation::new(
            "NOT_A_WORKING_DAY",
            format!("{day} is not a working day of the calendar (weekend or holiday)"),
        ));
    }
    Ok(())
}

/// A technician as seen for one order on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub technician: Technician,
    pub skills_matched: usize,
    pub skills_required: usize,
    pub same_territory: bool,
    pub booked: i32,
    pub capacity: i32,
}

impl Candidate {
    pub fn assess(order: &WorkOrder, technician: Technician, booked: i32) -> Self {
        let skills_matched = order.required_skills.iter().filter(|s| technician.skills.contains(s)).count();
        Self {
            skills_matched,
            skills_required: order.required_skills.len(),
            same_territory: technician.territory == order.territory,
            booked,
            capacity: technician.daily_capacity,
            technician,
        }
    }

    /// Has every skill the order needs: only qualified technicians are
    /// assigned.
    pub fn qualified(&self) -> bool {
        self.skills_matched == self.skills_required
    }

    pub fn has_room(&self) -> bool {
        self.booked < self.capacity
    }
}

/// Ranks the candidates with room left on the day, best first: qualified
/// before unqualified, more matching skills first; then, for high and
/// critical orders, the least loaded technician before territory (the fastest
/// hands win), for the others territory before load (less travel); ties by
/// id so the order is deterministic.
pub fn rank(priority: Priority, mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.retain(Candidate::has_room);
    let hurry = matches!(priority, Priority::High | Priority::Critical);
    candidates.sort_by(|a, b| {
        let skills = b.qualified().cmp(&a.qualified()).then(b.skills_matched.cmp(&a.skills_matched));
        // Load as a share of capacity, compared without division.
        let load = (i64::from(a.booked) * i64::from(b.capacity)).cmp(&(i64::from(b.booked) * i64::from(a.capacity)));
        let territory = b.same_territory.cmp(&a.same_territory);
        let rest = if hurry { load.then(territory) } else { territory.then(load) };
        skills.then(rest).then(a.technician.id.0.cmp(&b.technician.id.0))
    });
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Details, NewWorkOrder, TechnicianId};
    use crm_domain::ids::CustomerId;

    fn order(skills: &[&str], territory: &str, urgency: Urgency) -> WorkOrder {
        let new = NewWorkOrder {
            customer_id: CustomerId::new(),
            urgency,
            site_address: "a".into(),
            contact_name: "c".into(),
            contact_phone: "p".into(),
            description: "d".into(),
            required_skills: skills.iter().map(|s| s.to_string()).collect(),
            territory: territory.into(),
            details: Details::Maintenance,
        };
        WorkOrder::create(new, "x".into(), ServiceLevel::General, "u", Utc::now())
    }

    fn tech(n: u128, skills: &[&str], territory: &str, capacity: i32) -> Technician {
        Technician {
            id: TechnicianId(uuid::Uuid::from_u128(n)),
            user_sub: format!("t{n}"),
            display_name: format!("T{n}"),
            skills: skills.iter().map(|s| s.to_string()).collect(),
            territory: territory.into(),
            daily_capacity: capacity,
            created_by: "m".into(),
            created_at: Utc::now(),
            version: 1,
        }
    }

    fn ids(c: &[Candidate]) -> Vec<u128> {
        c.iter().map(|c| c.technician.id.0.as_u128()).collect()
    }

    #[test]
    fn days_are_working_days_from_today_on() {
        let cal = WorkingCalendar::default();
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default();
        // 2026-11-26 is a Thursday.
        assert_eq!(check_day(&cal, d(11, 26), d(11, 26)), Ok(()));
        assert_eq!(check_day(&cal, d(11, 25), d(11, 26)).map_err(|e| e.reason), Err("DAY_IN_PAST"));
        assert_eq!(check_day(&cal, d(11, 28), d(11, 26)).map_err(|e| e.reason), Err("NOT_A_WORKING_DAY"));
        let holiday = WorkingCalendar::new("Asia/Shanghai", [d(11, 27)], []).unwrap_or_default();
        assert_eq!(check_day(&holiday, d(11, 27), d(11, 26)).map_err(|e| e.reason), Err("NOT_A_WORKING_DAY"));
    }

    #[test]
    fn priority_follows_urgency_then_service_level() {
        assert_eq!(priority(Urgency::Urgent, ServiceLevel::Key), Priority::Critical);
        assert_eq!(priority(Urgency::Urgent, ServiceLevel::Special), Priority::Critical);
        assert_eq!(priority(Urgency::Urgent, ServiceLevel::General), Priority::High);
        assert_eq!(priority(Urgency::Normal, ServiceLevel::Key), Priority::Medium);
        assert_eq!(priority(Urgency::Normal, ServiceLevel::General), Priority::Low);
    }

    #[test]
    fn parts_are_due_six_hours_after_approval_for_urgent_repairs_only() {
        let t = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        assert_eq!(parts_due(Kind::Repair, Urgency::Urgent, t), Some(t + Duration::hours(6)));
        assert_eq!(parts_due(Kind::Repair, Urgency::Normal, t), None);
        for k in [Kind::Installation, Kind::Maintenance, Kind::Inspection] {
            assert_eq!(parts_due(k, Urgency::Urgent, t), None);
        }
    }

    #[test]
    fn qualified_first_then_territory_then_load_for_routine_work() {
        let o = order(&["gps", "can"], "north", Urgency::Normal);
        let c = vec![
            Candidate::assess(&o, tech(1, &["gps"], "north", 3), 0),
            Candidate::assess(&o, tech(2, &["gps", "can"], "south", 3), 0),
            Candidate::assess(&o, tech(3, &["gps", "can"], "north", 3), 2),
            Candidate::assess(&o, tech(4, &["gps", "can"], "north", 3), 1),
            Candidate::assess(&o, tech(5, &["gps", "can"], "north", 2), 2),
        ];
        // 5 is full and left out; 1 lacks a skill and comes last.
        assert_eq!(ids(&rank(o.priority, c)), [4, 3, 2, 1]);
    }

    #[test]
    fn urgent_work_goes_to_the_least_loaded_before_territory() {
        let o = order(&["gps"], "north", Urgency::Urgent);
        let c = vec![
            Candidate::assess(&o, tech(1, &["gps"], "north", 4), 2),
            Candidate::assess(&o, tech(2, &["gps"], "south", 4), 0),
        ];
        assert_eq!(ids(&rank(o.priority, c.clone())), [2, 1]);
        let routine = order(&["gps"], "north", Urgency::Normal);
        assert_eq!(ids(&rank(routine.priority, c)), [1, 2]);
    }

    proptest::proptest! {
        /// Whatever the candidates, nobody without room is proposed and every
        /// qualified candidate precedes every unqualified one.
        #[test]
        fn ranking_never_proposes_a_full_technician(
            techs in proptest::collection::vec((0u8..4, 0i32..5, 1i32..5, proptest::bool::ANY), 0..20),
            urgent in proptest::bool::ANY,
        ) {
            let o = order(&["a", "b"], "north", if urgent { Urgency::Urgent } else { Urgency::Normal });
            let all = ["a", "b", "c"];
            let c: Vec<Candidate> = techs.iter().enumerate().map(|(i, (mask, booked, cap, north))| {
                let skills: Vec<&str> = all.iter().enumerate().filter(|(b, _)| mask & (1 << b) != 0).map(|(_, s)| *s).collect();
                Candidate::assess(&o, tech(i as u128, &skills, if *north { "north" } else { "south" }, *cap), *booked)
            }).collect();
            let ranked = rank(o.priority, c);
            proptest::prop_assert!(ranked.iter().all(Candidate::has_room));
            let first_unqualified = ranked.iter().position(|c| !c.qualified()).unwrap_or(ranked.len());
            proptest::prop_assert!(ranked[first_unqualified..].iter().all(|c| !c.qualified()));
        }
    }
}

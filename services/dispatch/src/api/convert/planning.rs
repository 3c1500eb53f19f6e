//! Technicians and the candidates proposed for an order.

use super::*;

/// Validates a technician to register; `by`/`at` are the registrar.
pub(crate) fn new_technician(t: Option<&pb::Technician>, by: &str, at: DateTime<Utc>) -> Result<Technician, Status> {
    let mut v = Violations::default();
    let Some(t) = t else { return Err(invalid_argument("technician", "is required")) };
    let user_sub = line(&mut v, "technician.user_sub", &t.user_sub, 200);
    let display_name = line(&mut v, "technician.display_name", &t.display_name, 100);
    let skills = skills(&mut v, "technician.skills", &t.skills);
    let territory = line(&mut v, "technician.territory", &t.territory, 100);
    if !(1..=50).contains(&t.daily_capacity) {
        v.add("technician.daily_capacity", "must be between 1 and 50 orders a day");
    }
    let (user_sub, display_name, territory) = v.finish_with((user_sub, display_name, territory))?;
    Ok(Technician {
        id: TechnicianId::new(),
        user_sub,
        display_name,
        skills,
        territory,
        daily_capacity: t.daily_capacity,
        created_by: by.to_string(),
        created_at: at,
        version: 1,
    })
}

pub(crate) fn technician(t: &Technician) -> pb::Technician {
    pb::Technician {
        id: t.id.to_string(),
        user_sub: t.user_sub.clone(),
        display_name: t.display_name.clone(),
        skills: t.skills.clone(),
        territory: t.territory.clone(),
        daily_capacity: t.daily_capacity,
        created_at: Some(ts(t.created_at)),
        etag: t.etag(),
    }
}

pub(crate) fn candidate(c: &Candidate) -> pb::Candidate {
    pb::Candidate {
        technician: Some(technician(&c.technician)),
        qualified: c.qualified(),
        skills_matched: i32::try_from(c.skills_matched).unwrap_or(i32::MAX),
        skills_required: i32::try_from(c.skills_required).unwrap_or(i32::MAX),
        same_territory: c.same_territory,
        booked: c.booked,
        capacity: c.capacity,
    }
}

//! Routes, meters and field readings (DSP-7).

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Invalid, ids::CustomerId};
use crm_platform::{Violations, proto_time};
use crm_proto::dispatch::v1 as pb;
use tonic::Status;

use super::{date_out, line, money_in, required_date, ts};
use crate::model::{
    ServiceLevel,
    metering::{FlowDirection, Meter, MeterClass, MeterId, MeterKind, Outcome, RegisterChange, Route, Schedule},
};

crm_platform::enum_map!(pub(crate) schedule_in, schedule_out, pb::RouteSchedule, Schedule {
    CommercialMonthly <=> CommercialMonthly, ResidentialMonthly <=> ResidentialMonthly,
    ResidentialIndoorQuarterly <=> ResidentialIndoorQuarterly,
});
crm_platform::enum_map!(pub(crate) meter_kind_in, meter_kind_out, pb::MeterKind, MeterKind { Gas <=> Gas, Water <=> Water, Heat <=> Heat });
crm_platform::enum_map!(pub(crate) meter_class_in, meter_class_out, pb::MeterClass, MeterClass {
    Residential <=> Residential, Commercial <=> Commercial, Industrial <=> Industrial,
});
crm_platform::enum_map!(pub(crate) flow_in, flow_out, pb::FlowDirection, FlowDirection {
    Forward <=> Forward, Reverse <=> Reverse, Bidirectional <=> Bidirectional,
});

pub(crate) fn new_route(r: Option<&pb::Route>, by: &str, at: DateTime<Utc>) -> Result<Route, Status> {
    let mut v = Violations::default();
    let r = r.cloned().unwrap_or_default();
    let name = line(&mut v, "route.name", &r.name, 100);
    let schedule = v.check("route.schedule", super::required(schedule_in(r.schedule)));
    let (name, schedule) = v.finish_with((name, schedule))?;
    Ok(Route { id: uuid::Uuid::now_v7(), name, schedule, created_by: by.to_string(), created_at: at })
}

pub(crate) fn route(r: &Route) -> pb::Route {
    pb::Route {
        id: r.id.to_string(),
        name: r.name.clone(),
        schedule: schedule_out(r.schedule),
        created_at: Some(ts(r.created_at)),
    }
}

/// A meter to register: what the request says, before the customer and the
/// route are checked.
pub(crate) struct NewMeter {
    pub customer_id: CustomerId,
    pub route_id: uuid::Uuid,
    pub number: String,
    pub kind: MeterKind,
    pub class: MeterClass,
    pub installed_on: NaiveDate,
    pub flow_direction: FlowDirection,
    pub prepaid: bool,
    pub site_address: String,
}

pub(crate) fn new_meter(m: Option<&pb::Meter>, today: NaiveDate) -> Result<NewMeter, Status> {
    let mut v = Violations::default();
    let m = m.cloned().unwrap_or_default();
    let customer_id = v.check("meter.customer_id", CustomerId::parse(&m.customer_id));
    let route_id = v.check(
        "meter.route_id",
        uuid::Uuid::parse_str(m.route_id.trim()).map_err(|_| Invalid::new("is not a valid id")),
    );
    let number = line(&mut v, "meter.number", &m.number, 50);
    let kind = v.check("meter.kind", super::required(meter_kind_in(m.kind)));
    let class = v.check("meter.meter_class", super::required(meter_class_in(m.meter_class)));
    let installed_on = required_date(&mut v, "meter.installed_on", m.installed_on.as_ref());
    if installed_on.is_some_and(|d| d > today) {
        v.add("meter.installed_on", "must not be in the future");
    }
    let flow_direction = v.check("meter.flow_direction", super::required(flow_in(m.flow_direction)));
    let site_address = line(&mut v, "meter.site_address", &m.site_address, 500);
    let (customer_id, route_id, number, (kind, class), installed_on, flow_direction, site_address) =
        v.finish_with((customer_id, route_id, number, kind.zip(class), installed_on, flow_direction, site_address))?;
    Ok(NewMeter {
        customer_id,
        route_id,
        number,
        kind,
        class,
        installed_on,
        flow_direction,
        prepaid: m.prepaid,
        site_address,
    })
}

impl NewMeter {
    pub(crate) fn into_meter(self, name: String, level: ServiceLevel, by: &str, at: DateTime<Utc>) -> Meter {
        Meter {
            id: MeterId::new(),
            customer_id: self.customer_id,
            customer_name: name,
            service_level: level,
            number: self.number,
            kind: self.kind,
            class: self.class,
            installed_on: self.installed_on,
            flow_direction: self.flow_direction,
            prepaid: self.prepaid,
            route_id: self.route_id,
            site_address: self.site_address,
            created_by: by.to_string(),
            created_at: at,
        }
    }
}

pub(crate) fn meter(m: &Meter) -> pb::Meter {
    pb::Meter {
        id: m.id.to_string(),
        customer_id: m.customer_id.to_string(),
        number: m.number.clone(),
        kind: meter_kind_out(m.kind),
        meter_class: meter_class_out(m.class),
        installed_on: Some(date_out(m.installed_on)),
        flow_direction: flow_out(m.flow_direction),
        prepaid: m.prepaid,
        route_id: m.route_id.to_string(),
        site_address: m.site_address.clone(),
        created_at: Some(ts(m.created_at)),
    }
}

/// One field reading, parsed; a reading that cannot be parsed is rejected
/// on its own, never the stream.
pub(crate) struct FieldReading {
    pub id: uuid::Uuid,
    pub meter_number: String,
    pub read_at: DateTime<Utc>,
    pub outcome: Outcome,
}

pub(crate) fn field_reading(r: &pb::MeterReading, now: DateTime<Utc>) -> Result<FieldReading, String> {
    let id = uuid::Uuid::parse_str(r.reading_id.trim()).map_err(|_| "reading_id is not a UUID".to_string())?;
    let meter_number = r.meter_number.trim().to_string();
    if meter_number.is_empty() {
        return Err("meter_number is required".into());
    }
    let read_at = r
        .read_at
        .as_ref()
        .ok_or("read_at is required")
        .and_then(|t| proto_time::from_proto(t).map_err(|_| "read_at is not a valid time"))?;
    // A handheld's clock may run a little ahead; a reading from tomorrow is not.
    if read_at > now + chrono::Duration::minutes(10) {
        return Err("read_at is in the future".into());
    }
    let outcome = match pb::ReadingOutcome::try_from(r.outcome) {
        Ok(pb::ReadingOutcome::Read) => Outcome::Read {
            base_reading: r.base_reading,
            cumulative_volume: r.cumulative_volume,
            balance: r.balance.as_ref().map(money_in).transpose().map_err(|e| format!("balance {}", e.reason))?,
            change: match pb::RegisterChange::try_from(r.register_change) {
                Ok(pb::RegisterChange::Unspecified) => RegisterChange::None,
                Ok(pb::RegisterChange::MeterReplaced) => {
                    RegisterChange::MeterReplaced { old_final: r.old_meter_final_volume }
                }
                Ok(pb::RegisterChange::RolledOver) => RegisterChange::RolledOver { max: r.register_max_volume },
                Err(_) => return Err("register_change is not a known value".into()),
            },
        },
        Ok(pb::ReadingOutcome::Missed) => Outcome::Missed { reason: r.missed_reason.trim().to_string() },
        Ok(pb::ReadingOutcome::Estimated | pb::ReadingOutcome::Copied) => Outcome::NotRead,
        _ => return Err("outcome is required".into()),
    };
    Ok(FieldReading { id, meter_number, read_at, outcome })
}

//! Meter reading (DSP-7): routes and their schedules, meters, bulk readings
//! streamed from the field, anomalies raising repair orders, read rates.

use crm_platform::edge::Page;
use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use crm_domain::{ids::CustomerId, page};
use crm_platform::{error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::dispatch::v1 as pb;
use tonic::Streaming;

use super::{Caller, DispatchApi, Opened, convert};
use crate::{
    error::{Error, Result},
    model::{
        Details, NewWorkOrder, RepairDetails, RuleViolation, Step, Urgency, WorkOrder,
        metering::{self, Accepted, Meter, Outcome, Previous},
    },
    store::{self, IDEMPOTENCY_TABLE, ReadingColumns},
    usecases::publish,
};

/// Readings checked and written per transaction.
const CHUNK: usize = 1_000;
/// Rejections reported in full; beyond it they are only counted, so what a
/// stream of millions of bad readings keeps in memory stays bounded.
const MAX_REJECTIONS_REPORTED: usize = 1_000;
/// Who raises the repair orders of flagged meters.
const METER_READING_ACTOR: &str = "system:meter-reading";

impl DispatchApi {
    pub(super) async fn create_route(
        &self,
        caller: &Caller,
        req: pb::CreateRouteRequest,
    ) -> Result<pb::CreateRouteResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateRoute", who, &req.request_id, &req)?;
        let r = convert::new_route(req.route.as_ref(), &who.sub, self.clock.now())?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        store::insert_route(&mut tx, &r).await?;
        let response = pb::CreateRouteResponse { route: Some(convert::route(&r)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    /// The route `id` names (request field `route_id`).
    async fn route(&self, conn: &mut sqlx::PgConnection, id: &str) -> Result<metering::Route> {
        let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| invalid_argument("route_id", "is not a valid id"))?;
        store::load_route(conn, id).await?.ok_or_else(|| Error::NotFound { resource: "route", id: id.to_string() })
    }

    pub(super) async fn get_route_schedule(
        &self,
        _caller: &Caller,
        req: pb::GetRouteScheduleRequest,
    ) -> Result<pb::GetRouteScheduleResponse> {
        if !(2000..=2100).contains(&req.year) {
            return Err(invalid_argument("year", "must be between 2000 and 2100").into());
        }
        let mut conn = self.pool.acquire().await?;
        let r = self.route(&mut conn, &req.route_id).await?;
        Ok(pb::GetRouteScheduleResponse {
            windows: r
                .schedule
                .windows(req.year)
                .into_iter()
                .map(|w| pb::ReadingWindow {
                    period: w.period,
                    first_day: Some(convert::date_out(w.first_day)),
                    last_day: Some(convert::date_out(w.last_day)),
                })
                .collect(),
        })
    }

    pub(super) async fn register_meter(
        &self,
        caller: &Caller,
        req: pb::RegisterMeterRequest,
    ) -> Result<pb::RegisterMeterResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RegisterMeter", who, &req.request_id, &req)?;
        let at = self.clock.now();
        let new = convert::new_meter(req.meter.as_ref(), self.calendar.local_date(at))?;
        match self.open::<pb::RegisterMeterResponse>(&call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx.rollback().await?,
        }
        let (id, name, level, _) = self.customer(new.customer_id, caller.request_id.as_deref()).await?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        // The survivor, also when the merge was applied after the lookup (CUS-2).
        let mut new = new;
        new.customer_id = CustomerId(crm_events::aliases::resolve(&mut tx, "dispatch", id.0).await?);
        let route = store::load_route(&mut tx, new.route_id)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "route", id: new.route_id.to_string() })?;
        // DSP-7: a route reads meters of its class only.
        if !route.schedule.takes(new.class) {
            return Err(RuleViolation::new(
                "METER_CLASS_MISMATCH",
                format!(
                    "route {} ({}) does not read {} meters",
                    route.name,
                    route.schedule.as_str(),
                    new.class.as_str()
                ),
            )
            .into());
        }
        // CUS-11: no new installations for a customer whose termination has started.
        if store::is_terminating(&mut tx, new.customer_id).await? {
            return Err(crate::model::customer_terminated().into());
        }
        let m = new.into_meter(name, level, &who.sub, at);
        store::insert_meter(&mut tx, &m).await?;
        let response = pb::RegisterMeterResponse { meter: Some(convert::meter(&m)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn list_meters(
        &self,
        _caller: &Caller,
        req: pb::ListMetersRequest,
    ) -> Result<pb::ListMetersResponse> {
        let route = if req.route_id.is_empty() {
            None
        } else {
            Some(
                uuid::Uuid::parse_str(req.route_id.trim())
                    .map_err(|_| invalid_argument("route_id", "is not a valid id"))?,
            )
        };
        let fingerprint = page::fingerprint(&[req.route_id.as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_meters(&mut conn, route, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        Ok(pb::ListMetersResponse { meters: rows.iter().map(convert::meter).collect(), next_page_token })
    }

    /// Checks and writes the stream chunk by chunk as it arrives; each chunk
    /// is one transaction, and every reading is accepted or rejected on its
    /// own. No connection is held while waiting for the client, and what is
    /// kept between chunks is bounded (the counts and the first rejections).
    /// A reading id sent again in a later chunk is acknowledged as stored,
    /// as a resent stream is.
    pub(super) async fn record_reading_stream(
        &self,
        caller: &Caller,
        mut stream: Streaming<pb::RecordReadingsRequest>,
    ) -> Result<pb::RecordReadingsResponse> {
        let mut out = pb::RecordReadingsResponse::default();
        let mut pending: Vec<pb::MeterReading> = Vec::with_capacity(CHUNK);
        let mut offset = 0usize;
        while let Some(msg) = stream.message().await? {
            for r in msg.readings {
                pending.push(r);
                if pending.len() >= CHUNK {
                    self.record_chunk(caller, &pending, offset, &mut out).await?;
                    offset += pending.len();
                    pending.clear();
                }
            }
        }
        self.record_chunk(caller, &pending, offset, &mut out).await?;
        Ok(out)
    }

    async fn record_chunk(
        &self,
        caller: &Caller,
        chunk: &[pb::MeterReading],
        offset: usize,
        out: &mut pb::RecordReadingsResponse,
    ) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let at = self.clock.now();
        let mut seen = HashSet::new();
        let mut reject = |i: usize, id: &str, reason: &str, message: String| {
            out.rejected_count += 1;
            if out.rejected.len() >= MAX_REJECTIONS_REPORTED {
                return;
            }
            out.rejected.push(pb::RejectedReading {
                reading_id: id.to_string(),
                index: i64::try_from(offset + i).unwrap_or(i64::MAX),
                reason: reason.to_string(),
                message,
            });
        };
        let mut parsed = vec![];
        for (i, r) in chunk.iter().enumerate() {
            match convert::field_reading(r, at) {
                Ok(f) if !seen.insert(f.id) => {
                    reject(i, &r.reading_id, "DUPLICATE_READING_ID", "the reading id is repeated in the stream".into())
                }
                Ok(f) => parsed.push((i, f)),
                Err(message) => reject(i, &r.reading_id, "INVALID", message),
            }
        }
        if parsed.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let numbers: Vec<String> = parsed.iter().map(|(_, f)| f.meter_number.clone()).collect();
        let ids: Vec<uuid::Uuid> = parsed.iter().map(|(_, f)| f.id).collect();
        let since = parsed.iter().map(|(_, f)| f.read_at).min().unwrap_or(at) - Duration::days(100);
        let mut ctx = store::reading_context(&mut tx, &numbers, &ids, since).await?;
        let mut cols = ReadingColumns::default();
        let mut read_events = vec![];
        let mut accepted = 0i64;
        for (i, f) in parsed {
            if ctx.stored.contains(&f.id) {
                // Stored by an earlier send of this stream: acknowledged again.
                accepted += 1;
                continue;
            }
            let Some((meter, schedule, route_name)) = ctx.meters.get(&f.meter_number) else {
                reject(i, &f.id.to_string(), "UNKNOWN_METER", format!("no meter {}", f.meter_number));
                continue;
            };
            let day = self.calendar.local_date(f.read_at);
            let period = schedule.period_of(day);
            let outside_window = !schedule.in_window(day);
            if ctx.taken.contains(&(meter.id.0, period.clone())) {
                let message = format!("meter {} already has a reading for {period}", meter.number);
                reject(i, &f.id.to_string(), "ALREADY_READ_IN_PERIOD", message);
                continue;
            }
            let previous = ctx.previous.get(&meter.id.0).copied();
            let a = match metering::check(meter, &f.outcome, f.read_at, previous.as_ref()) {
                Ok(a) => a,
                Err(r) => {
                    reject(i, &f.id.to_string(), r.reason, r.message);
                    continue;
                }
            };
            let repair = match (a.anomaly, previous) {
                (Some(_), Some(p)) => raise_repair(&mut tx, meter, route_name, &period, &a, &p, at).await?,
                _ => None,
            };
            accepted += 1;
            if outside_window {
                out.outside_window += 1;
            }
            ctx.taken.insert((meter.id.0, period.clone()));
            push(&mut cols, f.id, meter, &period, f.read_at, &f.outcome, &a, repair);
            cols.outside_window.push(outside_window);
            if let Some(e) = publish::meter_read(f.id, meter, &period, f.read_at, &f.outcome, &a) {
                read_events.push((f.id, e));
            }
            if let Outcome::Read { cumulative_volume, .. } = &f.outcome {
                ctx.previous.insert(
                    meter.id.0,
                    Previous {
                        read_at: f.read_at,
                        cumulative_volume: *cumulative_volume,
                        consumption: a.consumption,
                        days: a.days,
                    },
                );
            }
            if let Some(r) = repair {
                out.repair_work_order_ids.push(r.to_string());
            }
        }
        let inserted = store::insert_readings(&mut tx, &cols, &caller.who.sub, at).await?;
        // The meters are locked, so nothing else can have taken these rows.
        if inserted.len() != cols.id.len() {
            return Err(Error::Corrupt(format!("{} of {} readings inserted", inserted.len(), cols.id.len())));
        }
        // readings flow to billing, in one statement for the chunk.
        crm_events::emit_many(&mut tx, publish::SCHEMA, at, read_events).await?;
        tx.commit().await?;
        out.accepted += accepted;
        Ok(())
    }

    pub(super) async fn get_read_rate(
        &self,
        _caller: &Caller,
        req: pb::GetReadRateRequest,
    ) -> Result<pb::GetReadRateResponse> {
        let period = req.period.trim().to_string();
        let mut conn = self.pool.acquire().await?;
        let routes = if req.route_id.is_empty() {
            store::list_routes(&mut conn, None).await?
        } else {
            vec![self.route(&mut conn, &req.route_id).await?]
        };
        let routes: Vec<_> = routes.into_iter().filter(|r| r.schedule.is_period(&period)).collect();
        if routes.is_empty() && !metering::Schedule::ALL.iter().any(|s| s.is_period(&period)) {
            return Err(
                invalid_argument("period", "is a month (2026-11) or, for indoor routes, a quarter (2026-Q4)").into()
            );
        }
        if routes.is_empty() && !req.route_id.is_empty() {
            return Err(invalid_argument("period", "does not match the route's schedule (month or quarter)").into());
        }
        let mut out = vec![];
        for r in routes {
            let store::ReadCounts { planned, read, missed, anomalies, outside_window } =
                store::read_counts(&mut conn, r.id, &period).await?;
            let rate_bp = metering::rate_bp(read, planned);
            let target_bp = r.schedule.target_bp();
            out.push(pb::RouteReadRate {
                route: Some(convert::route(&r)),
                period: period.clone(),
                planned: i32::try_from(planned).unwrap_or(i32::MAX),
                read: i32::try_from(read).unwrap_or(i32::MAX),
                missed: i32::try_from(missed).unwrap_or(i32::MAX),
                rate_bp,
                target_bp,
                target_met: rate_bp >= target_bp,
                anomalies: i32::try_from(anomalies).unwrap_or(i32::MAX),
                outside_window: i32::try_from(outside_window).unwrap_or(i32::MAX),
            });
        }
        Ok(pb::GetReadRateResponse { routes: out })
    }
}

/// Adds an accepted reading to the chunk's columns.
#[allow(clippy::too_many_arguments)] // one row of the UNNEST insert, column by column
fn push(
    c: &mut ReadingColumns,
    id: uuid::Uuid,
    meter: &Meter,
    period: &str,
    read_at: DateTime<Utc>,
    outcome: &Outcome,
    a: &Accepted,
    repair: Option<uuid::Uuid>,
) {
    let (kind, base, volume, balance, missed) = match outcome {
        Outcome::Read { base_reading, cumulative_volume, balance, .. } => {
            ("read", Some(*base_reading), Some(*cumulative_volume), *balance, String::new())
        }
        Outcome::Missed { reason } => ("missed", None, None, None, reason.clone()),
        // Never pushed: `metering::check` rejects estimates before this.
        Outcome::NotRead => ("missed", None, None, None, String::new()),
    };
    c.id.push(id);
    c.meter_id.push(meter.id.0);
    c.period.push(period.to_string());
    c.read_at.push(read_at);
    c.outcome.push(kind.to_string());
    c.base_reading.push(base);
    c.cumulative_volume.push(volume);
    c.consumption.push(a.consumption);
    c.days.push(a.days);
    c.balance_minor.push(balance.map(|b| b.amount_minor()));
    c.currency.push(balance.map(|b| b.currency().code().to_string()));
    c.missed_reason.push(missed);
    c.anomaly.push(a.anomaly.map(|x| x.as_str().to_string()));
    c.repair_work_order_id.push(repair);
    c.register_change.push(match outcome {
        Outcome::Read { change, .. } => change.as_str().map(str::to_string),
        _ => None,
    });
}

/// DSP-7: a fast, slow or dead meter raises a repair order, created as a
/// draft for the dispatcher to submit for approval like any repair (DSP-2) —
/// unless the customer's termination has started (CUS-11): the reading still
/// counts (billing needs the final one), but no new work is taken.
async fn raise_repair(
    conn: &mut sqlx::PgConnection,
    meter: &Meter,
    route_name: &str,
    period: &str,
    a: &Accepted,
    prev: &Previous,
    at: DateTime<Utc>,
) -> Result<Option<uuid::Uuid>> {
    if store::is_terminating(conn, meter.customer_id).await? {
        return Ok(None);
    }
    let anomaly = a.anomaly.map(|x| x.as_str()).unwrap_or("abnormal");
    let fault = format!(
        "meter {} reads {anomaly}: {} l in {} days in {period}, against {} l in {} days before",
        meter.number,
        a.consumption.unwrap_or(0),
        a.days.unwrap_or(0),
        prev.consumption.unwrap_or(0),
        prev.days.unwrap_or(0),
    );
    let new = NewWorkOrder {
        customer_id: meter.customer_id,
        urgency: Urgency::Normal,
        site_address: meter.site_address.clone(),
        contact_name: meter.customer_name.clone(),
        contact_phone: String::new(),
        description: format!("{anomaly} meter found by meter reading"),
        required_skills: vec!["meter".into()],
        territory: route_name.to_string(),
        details: Details::Repair(RepairDetails {
            device_model: format!("{} meter", meter.kind.as_str()),
            purchase_date: meter.installed_on,
            fault,
            device_serial: meter.number.clone(),
        }),
    };
    let w = WorkOrder::create(new, meter.customer_name.clone(), meter.service_level, METER_READING_ACTOR, at);
    store::insert_work_order(conn, &w).await?;
    let step = Step {
        action: "created".into(),
        from_state: None,
        to_state: w.state,
        actor: METER_READING_ACTOR.into(),
        at,
        note: format!("{anomaly} meter {}", meter.number),
    };
    store::record_step(conn, w.id, &step).await?;
    Ok(Some(w.id.0))
}

//! Work orders, their installation lines and their history.

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Currency, Money, ids::CustomerId};
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::parse;
use crate::{
    error::{Error, Result},
    model::{
        Completion, Details, Kind, OrderInvoice, Priority, RepairDetails, ServiceLevel, State, Step, TechnicianId,
        Urgency, Vehicle, WorkOrder, WorkOrderId, access::OrderScope, base::DeviceId,
    },
};

const COLUMNS: &str = "w.id, w.customer_id, w.customer_name, w.service_level, w.kind, w.state, w.urgency, \
     w.priority, w.site_address, w.contact_name, w.contact_phone, w.description, w.required_skills, w.territory, \
     w.request_reference, w.device_model, w.purchase_date, w.fault, w.device_serial, w.technician_id, \
     w.scheduled_on, w.parts_due_at, w.checklist_confirmed_by, w.checklist_confirmed_at, w.work_done, \
     w.signed_off_by, w.cancel_reason, w.created_by, w.created_at, w.updated_at, w.version, w.device_id, \
     w.in_warranty, w.amount_due_minor, w.collected_minor, w.currency, w.branch, w.labour_minutes, \
     w.labour_charge_minor, w.invoice_id, w.invoice_number, w.invoice_status, w.invoice_total_minor, \
     w.invoice_paid_minor, w.invoice_currency";

#[derive(sqlx::FromRow)]
pub(crate) struct WorkOrderRow {
    id: Uuid,
    customer_id: Uuid,
    customer_name: String,
    service_level: String,
    kind: String,
    state: String,
    urgency: String,
    priority: String,
    site_address: String,
    contact_name: String,
    contact_phone: String,
    description: String,
    required_skills: Vec<String>,
    territory: String,
    branch: String,
    request_reference: Option<String>,
    device_model: Option<String>,
    purchase_date: Option<NaiveDate>,
    fault: Option<String>,
    device_serial: Option<String>,
    technician_id: Option<Uuid>,
    scheduled_on: Option<NaiveDate>,
    parts_due_at: Option<DateTime<Utc>>,
    checklist_confirmed_by: Option<String>,
    checklist_confirmed_at: Option<DateTime<Utc>>,
    work_done: String,
    signed_off_by: String,
    cancel_reason: String,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    device_id: Option<Uuid>,
    in_warranty: Option<bool>,
    amount_due_minor: Option<i64>,
    collected_minor: Option<i64>,
    currency: Option<String>,
    labour_minutes: Option<i32>,
    labour_charge_minor: Option<i64>,
    invoice_id: Option<Uuid>,
    invoice_number: Option<String>,
    invoice_status: Option<String>,
    invoice_total_minor: Option<i64>,
    invoice_paid_minor: Option<i64>,
    invoice_currency: Option<String>,
}

impl WorkOrderRow {
    /// The order without its lines (installation vehicles are filled in by
    /// `load`).
    fn into_model(self) -> Result<WorkOrder> {
        let kind = parse("kind", &self.kind, Kind::from_db)?;
        let details = match kind {
            Kind::Installation => Details::Installation {
                request_reference: self.request_reference.unwrap_or_default(),
                vehicles: vec![],
            },
            Kind::Repair => Details::Repair(RepairDetails {
                device_model: self.device_model.unwrap_or_default(),
                purchase_date: self
                    .purchase_date
                    .ok_or_else(|| Error::Corrupt(format!("repair {} without purchase date", self.id)))?,
                fault: self.fault.unwrap_or_default(),
                device_serial: self.device_serial.unwrap_or_default(),
            }),
            Kind::Maintenance => Details::Maintenance,
            Kind::Inspection => Details::Inspection,
        };
        let completion = match (self.in_warranty, self.amount_due_minor, self.collected_minor, &self.currency) {
            (Some(in_warranty), Some(due), Some(collected), Some(c)) => {
                let currency = Currency::parse(c).map_err(|e| Error::Corrupt(e.to_string()))?;
                Some(Completion {
                    device_id: self.device_id.map(DeviceId),
                    in_warranty,
                    parts: vec![],
                    amount_due: Money::new(due, currency),
                    collected: Money::new(collected, currency),
                    labour_minutes: self.labour_minutes.unwrap_or(0),
                    labour_charge: self.labour_charge_minor.map(|m| Money::new(m, currency)),
                })
            }
            _ => None,
        };
        let invoice = match (
            self.invoice_id,
            self.invoice_number,
            self.invoice_status,
            self.invoice_total_minor,
            self.invoice_paid_minor,
            &self.invoice_currency,
        ) {
            (Some(id), Some(number), Some(status), Some(total), Some(paid), Some(c)) => {
                let currency = Currency::parse(c).map_err(|e| Error::Corrupt(e.to_string()))?;
                Some(OrderInvoice {
                    id,
                    number,
                    status,
                    total: Money::new(total, currency),
                    paid: Money::new(paid, currency),
                })
            }
            _ => None,
        };
        Ok(WorkOrder {
            invoice,
            id: WorkOrderId(self.id),
            customer_id: CustomerId(self.customer_id),
            customer_name: self.customer_name,
            service_level: parse("service level", &self.service_level, ServiceLevel::from_db)?,
            state: parse("state", &self.state, State::from_db)?,
            urgency: parse("urgency", &self.urgency, Urgency::from_db)?,
            priority: parse("priority", &self.priority, Priority::from_db)?,
            site_address: self.site_address,
            contact_name: self.contact_name,
            contact_phone: self.contact_phone,
            description: self.description,
            required_skills: self.required_skills,
            territory: self.territory,
            branch: self.branch,
            details,
            technician_id: self.technician_id.map(TechnicianId),
            scheduled_on: self.scheduled_on,
            parts_due_at: self.parts_due_at,
            checklist_confirmed_by: self.checklist_confirmed_by,
            checklist_confirmed_at: self.checklist_confirmed_at,
            work_done: self.work_done,
            signed_off_by: self.signed_off_by,
            cancel_reason: self.cancel_reason,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            history: vec![],
            completion,
        })
    }
}

#[tracing::instrument(skip_all, fields(work_order = %w.id))]
pub async fn insert_work_order(conn: &mut PgConnection, w: &WorkOrder) -> Result<()> {
    let (reference, repair) = match &w.details {
        Details::Installation { request_reference, .. } => (Some(request_reference.as_str()), None),
        Details::Repair(r) => (None, Some(r)),
        Details::Maintenance | Details::Inspection => (None, None),
    };
    sqlx::query(
        "INSERT INTO dispatch.work_orders (id, customer_id, customer_name, service_level, kind, state, urgency, \
         priority, site_address, contact_name, contact_phone, description, required_skills, territory, \
         request_reference, device_model, purchase_date, fault, device_serial, created_by, created_at, updated_at, \
         version, branch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24)",
    )
    .bind(w.id.0)
    .bind(w.customer_id.0)
    .bind(&w.customer_name)
    .bind(w.service_level.as_str())
    .bind(w.kind().as_str())
    .bind(w.state.as_str())
    .bind(w.urgency.as_str())
    .bind(w.priority.as_str())
    .bind(&w.site_address)
    .bind(&w.contact_name)
    .bind(&w.contact_phone)
    .bind(&w.description)
    .bind(&w.required_skills)
    .bind(&w.territory)
    .bind(reference)
    .bind(repair.map(|r| r.device_model.as_str()))
    .bind(repair.map(|r| r.purchase_date))
    .bind(repair.map(|r| r.fault.as_str()))
    .bind(repair.map(|r| r.device_serial.as_str()))
    .bind(&w.created_by)
    .bind(w.created_at)
    .bind(w.updated_at)
    .bind(w.version)
    .bind(&w.branch)
    .execute(&mut *conn)
    .await?;
    if let Details::Installation { vehicles, .. } = &w.details {
        insert_lines(conn, w.id, vehicles).await?;
    }
    Ok(())
}

/// DSP-2: one line per vehicle, in one statement.
async fn insert_lines(conn: &mut PgConnection, id: WorkOrderId, vehicles: &[Vehicle]) -> Result<()> {
    let mut q = QueryBuilder::new(
        "INSERT INTO dispatch.work_order_lines (work_order_id, line_no, plate, driver_name, driver_phone, \
         device_model) ",
    );
    q.push_values(vehicles.iter().enumerate(), |mut b, (i, v)| {
        b.push_bind(id.0)
            .push_bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .push_bind(&v.plate)
            .push_bind(&v.driver_name)
            .push_bind(&v.driver_phone)
            .push_bind(&v.device_model);
    });
    q.build().execute(conn).await?;
    Ok(())
}

/// Saves what a step may change and bumps the version (the etag).
#[tracing::instrument(skip_all, fields(work_order = %w.id))]
pub async fn save_work_order(conn: &mut PgConnection, w: &WorkOrder, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE dispatch.work_orders SET state = $2, technician_id = $3, scheduled_on = $4, parts_due_at = $5, \
         checklist_confirmed_by = $6, checklist_confirmed_at = $7, work_done = $8, signed_off_by = $9, \
         cancel_reason = $10, updated_at = $11, version = version + 1 WHERE id = $1",
    )
    .bind(w.id.0)
    .bind(w.state.as_str())
    .bind(w.technician_id.map(|t| t.0))
    .bind(w.scheduled_on)
    .bind(w.parts_due_at)
    .bind(&w.checklist_confirmed_by)
    .bind(w.checklist_confirmed_at)
    .bind(&w.work_done)
    .bind(&w.signed_off_by)
    .bind(&w.cancel_reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// DSP-5/DSP-6: what completion decided, and its part lines.
#[tracing::instrument(skip_all, fields(work_order = %id))]
pub async fn save_completion(conn: &mut PgConnection, id: WorkOrderId, c: &Completion) -> Result<()> {
    sqlx::query(
        "UPDATE dispatch.work_orders SET device_id = $2, in_warranty = $3, amount_due_minor = $4, \
         collected_minor = $5, currency = $6, labour_minutes = $7, labour_charge_minor = $8 WHERE id = $1",
    )
    .bind(id.0)
    .bind(c.device_id.map(|d| d.0))
    .bind(c.in_warranty)
    .bind(c.amount_due.amount_minor())
    .bind(c.collected.amount_minor())
    .bind(c.amount_due.currency().code())
    .bind(c.labour_minutes)
    .bind(c.labour_charge.map(|m| m.amount_minor()))
    .execute(&mut *conn)
    .await?;
    super::insert_order_parts(conn, id, &c.parts).await
}

#[tracing::instrument(skip(conn, step))]
pub async fn record_step(conn: &mut PgConnection, id: WorkOrderId, step: &Step) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.work_order_history (work_order_id, action, from_state, to_state, actor, at, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.0)
    .bind(&step.action)
    .bind(step.from_state.map(|s| s.as_str()))
    .bind(step.to_state.as_str())
    .bind(&step.actor)
    .bind(step.at)
    .bind(&step.note)
    .execute(conn)
    .await?;
    Ok(())
}

/// One work order with its lines and history; `lock` takes its row lock for
/// a change.
#[tracing::instrument(skip(conn))]
pub async fn load(conn: &mut PgConnection, id: WorkOrderId, lock: bool) -> Result<Option<WorkOrder>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM dispatch.work_orders w WHERE w.id = $1{lock}");
    let Some(row) =
        sqlx::query_as::<_, WorkOrderRow>(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(&mut *conn).await?
    else {
        return Ok(None);
    };
    let mut w = row.into_model()?;
    if let Details::Installation { vehicles, .. } = &mut w.details {
        *vehicles = load_lines(conn, id).await?;
    }
    w.history = load_history(conn, id).await?;
    if let Some(c) = w.completion.as_mut() {
        c.parts = super::load_order_parts(conn, id).await?;
    }
    Ok(Some(w))
}

/// Loads for a change: NOT_FOUND if absent, ABORTED on a stale etag.
pub async fn load_for_change(conn: &mut PgConnection, id: WorkOrderId, etag: Option<&str>) -> Result<WorkOrder> {
    let w =
        load(conn, id, true).await?.ok_or_else(|| Error::NotFound { resource: "work order", id: id.to_string() })?;
    if let Some(want) = etag
        && want != w.etag()
    {
        return Err(Error::StaleEtag { current: w.etag() });
    }
    Ok(w)
}

async fn load_lines(conn: &mut PgConnection, id: WorkOrderId) -> Result<Vec<Vehicle>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT plate, driver_name, driver_phone, device_model FROM dispatch.work_order_lines \
         WHERE work_order_id = $1 ORDER BY line_no",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(plate, driver_name, driver_phone, device_model)| Vehicle {
            plate,
            driver_name,
            driver_phone,
            device_model,
        })
        .collect())
}

/// A history row: action, from, to, actor, at, note.
type HistoryRow = (String, Option<String>, String, String, DateTime<Utc>, String);

async fn load_history(conn: &mut PgConnection, id: WorkOrderId) -> Result<Vec<Step>> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT action, from_state, to_state, actor, at, note FROM dispatch.work_order_history \
         WHERE work_order_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(action, from, to, actor, at, note)| {
            Ok(Step {
                action,
                from_state: from.as_deref().map(|s| parse("state", s, State::from_db)).transpose()?,
                to_state: parse("state", &to, State::from_db)?,
                actor,
                at,
                note,
            })
        })
        .collect()
}

/// ListWorkOrders filters; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub state: Option<State>,
    pub kind: Option<Kind>,
    pub customer_id: Option<Uuid>,
    pub technician_id: Option<Uuid>,
    /// Whose orders the caller may see (CUS-13).
    pub scope: OrderScope,
}

/// A page of work orders in id (creation) order, one more than `limit` when
/// there is a next page. Lines of installations are not loaded here.
#[tracing::instrument(skip(conn))]
pub async fn list(conn: &mut PgConnection, f: &ListFilter, after: Option<Uuid>, limit: u32) -> Result<Vec<WorkOrder>> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM dispatch.work_orders w WHERE TRUE"));
    if let Some(v) = f.state {
        q.push(" AND w.state = ").push_bind(v.as_str());
    }
    if let Some(v) = f.kind {
        q.push(" AND w.kind = ").push_bind(v.as_str());
    }
    if let Some(v) = f.customer_id {
        q.push(" AND w.customer_id = ").push_bind(v);
    }
    if let Some(v) = f.technician_id {
        q.push(" AND w.technician_id = ").push_bind(v);
    }
    match &f.scope {
        OrderScope::All => {}
        OrderScope::Branch(b) => {
            q.push(" AND (w.branch = ").push_bind(b.clone()).push(" OR w.branch = '')");
        }
        OrderScope::AssignedTo(sub) => {
            q.push(" AND w.technician_id IN (SELECT id FROM dispatch.technicians WHERE user_sub = ")
                .push_bind(sub.clone());
            q.push(")");
        }
    }
    if let Some(a) = after {
        q.push(" AND w.id > ").push_bind(a);
    }
    q.push(" ORDER BY w.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<WorkOrderRow> = q.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter().map(WorkOrderRow::into_model).collect()
}

/// DSP-4: open urgent repairs not yet on site whose parts are due by
/// `until` (overdue included), earliest first, one more than `limit` when
/// there is a next page. The page key is the last order's (due, id).
#[tracing::instrument(skip(conn))]
pub async fn list_at_risk(
    conn: &mut PgConnection,
    until: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<WorkOrder>> {
    let mut q = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM dispatch.work_orders w WHERE w.parts_due_at IS NOT NULL \
         AND w.state IN ('approved', 'assigned', 'en_route') AND w.parts_due_at <= "
    ));
    q.push_bind(until);
    if let Some(a) = after {
        q.push(" AND (w.parts_due_at, w.id) > (SELECT parts_due_at, id FROM dispatch.work_orders WHERE id = ");
        q.push_bind(a).push(")");
    }
    q.push(" ORDER BY w.parts_due_at, w.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<WorkOrderRow> = q.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter().map(WorkOrderRow::into_model).collect()
}

//! The installed base (DSP-1): devices and their append-only swap history.

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::ids::CustomerId;
use crm_platform::error::violated_constraint;
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use super::parse;
use crate::{
    error::{Error, Result},
    model::{
        WorkOrderId,
        base::{Device, DeviceId, DeviceStatus, Swap, SwapKind},
    },
};

const COLUMNS: &str = "d.id, d.customer_id, d.model, d.serial_number, d.sim_number, d.vehicle_plate, \
     d.site_address, d.driver_name, d.purchase_date, d.warranty_end, d.status, d.decommission_reason, \
     d.registered_by, d.registered_at, d.version";

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: Uuid,
    customer_id: Uuid,
    model: String,
    serial_number: String,
    sim_number: Option<String>,
    vehicle_plate: String,
    site_address: String,
    driver_name: String,
    purchase_date: NaiveDate,
    warranty_end: NaiveDate,
    status: String,
    decommission_reason: String,
    registered_by: String,
    registered_at: DateTime<Utc>,
    version: i64,
}

impl DeviceRow {
    fn into_model(self) -> Result<Device> {
        Ok(Device {
            id: DeviceId(self.id),
            customer_id: CustomerId(self.customer_id),
            model: self.model,
            serial_number: self.serial_number,
            sim_number: self.sim_number,
            vehicle_plate: self.vehicle_plate,
            site_address: self.site_address,
            driver_name: self.driver_name,
            purchase_date: self.purchase_date,
            warranty_end: self.warranty_end,
            status: parse("device status", &self.status, DeviceStatus::from_db)?,
            decommission_reason: self.decommission_reason,
            registered_by: self.registered_by,
            registered_at: self.registered_at,
            version: self.version,
            swaps: vec![],
        })
    }
}

/// DSP-1 uniqueness, by constraint name: ALREADY_EXISTS, never a bare error.
fn unique(e: sqlx::Error, d: &Device) -> Error {
    match violated_constraint(&e) {
        Some("devices_serial_number_key") => Error::AlreadyExists {
            resource: "device",
            detail: format!("serial/terminal number {} is registered to another device", d.serial_number),
        },
        Some("devices_active_sim_key") => Error::AlreadyExists {
            resource: "device",
            detail: format!("SIM {} is in another active device", d.sim_number.as_deref().unwrap_or("")),
        },
        _ => Error::Db(e),
    }
}

#[tracing::instrument(skip_all, fields(device = %d.id))]
pub async fn insert_device(conn: &mut PgConnection, d: &Device) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.devices (id, customer_id, model, serial_number, sim_number, vehicle_plate, \
         site_address, driver_name, purchase_date, warranty_end, status, registered_by, registered_at, updated_at, \
         version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
    )
    .bind(d.id.0)
    .bind(d.customer_id.0)
    .bind(&d.model)
    .bind(&d.serial_number)
    .bind(&d.sim_number)
    .bind(&d.vehicle_plate)
    .bind(&d.site_address)
    .bind(&d.driver_name)
    .bind(d.purchase_date)
    .bind(d.warranty_end)
    .bind(d.status.as_str())
    .bind(&d.registered_by)
    .bind(d.registered_at)
    .bind(d.version)
    .execute(conn)
    .await
    .map_err(|e| unique(e, d))?;
    Ok(())
}

/// Saves the numbers and status a swap or decommissioning changed and bumps
/// the version (the etag).
#[tracing::instrument(skip_all, fields(device = %d.id))]
pub async fn save_device(conn: &mut PgConnection, d: &Device, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE dispatch.devices SET serial_number = $2, sim_number = $3, status = $4, decommission_reason = $5, \
         updated_at = $6, version = version + 1 WHERE id = $1",
    )
    .bind(d.id.0)
    .bind(&d.serial_number)
    .bind(&d.sim_number)
    .bind(d.status.as_str())
    .bind(&d.decommission_reason)
    .bind(at)
    .execute(conn)
    .await
    .map_err(|e| unique(e, d))?;
    Ok(())
}

/// Appends a swap; the history is never updated or deleted.
#[tracing::instrument(skip(conn, s))]
pub async fn insert_swap(conn: &mut PgConnection, device: DeviceId, s: &Swap) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch.device_swaps (device_id, kind, old_number, new_number, swapped_at, swapped_by, \
         reason, work_order_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(device.0)
    .bind(s.kind.as_str())
    .bind(&s.old_number)
    .bind(&s.new_number)
    .bind(s.swapped_at)
    .bind(&s.swapped_by)
    .bind(&s.reason)
    .bind(s.work_order_id.map(|w| w.0))
    .execute(conn)
    .await?;
    Ok(())
}

/// One device with its swaps; `lock` takes its row lock for a change.
#[tracing::instrument(skip(conn))]
pub async fn load_device(conn: &mut PgConnection, id: DeviceId, lock: bool) -> Result<Option<Device>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM dispatch.devices d WHERE d.id = $1{lock}");
    let Some(row) =
        sqlx::query_as::<_, DeviceRow>(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(&mut *conn).await?
    else {
        return Ok(None);
    };
    let mut d = row.into_model()?;
    d.swaps = load_swaps(conn, id).await?;
    Ok(Some(d))
}

type SwapRow = (String, String, String, DateTime<Utc>, String, String, Option<Uuid>);

async fn load_swaps(conn: &mut PgConnection, id: DeviceId) -> Result<Vec<Swap>> {
    let rows: Vec<SwapRow> = sqlx::query_as(
        "SELECT kind, old_number, new_number, swapped_at, swapped_by, reason, work_order_id \
         FROM dispatch.device_swaps WHERE device_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(kind, old_number, new_number, swapped_at, swapped_by, reason, work_order_id)| {
            Ok(Swap {
                kind: parse("swap kind", &kind, SwapKind::from_db)?,
                old_number,
                new_number,
                swapped_at,
                swapped_by,
                reason,
                work_order_id: work_order_id.map(WorkOrderId),
            })
        })
        .collect()
}

/// A page of devices in id order, one more than `limit` when there is a
/// next page.
#[tracing::instrument(skip(conn))]
pub async fn list_devices(
    conn: &mut PgConnection,
    customer_id: Option<Uuid>,
    plate: Option<&str>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Device>> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM dispatch.devices d WHERE TRUE"));
    if let Some(v) = customer_id {
        q.push(" AND d.customer_id = ").push_bind(v);
    }
    if let Some(v) = plate {
        q.push(" AND d.vehicle_plate = ").push_bind(v.to_string());
    }
    if let Some(a) = after {
        q.push(" AND d.id > ").push_bind(a);
    }
    q.push(" ORDER BY d.id LIMIT ").push_bind(i64::from(limit) + 1);
    let rows: Vec<DeviceRow> = q.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(DeviceRow::into_model).collect()
}

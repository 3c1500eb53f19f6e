//! The installed base (DSP-1): registering, reading, listing and retiring
//! devices. Swaps happen at completion (`field`), in the order's transaction.

use crm_domain::{ids::CustomerId, page};
use crm_platform::edge::Page;
use crm_platform::{Violations, idempotency::IdempotentCall};
use crm_proto::dispatch::v1 as pb;

use super::{Caller, DispatchApi, Opened, convert};
use crate::{
    error::{Error, Result},
    model::base::{DeviceId, DeviceStatus},
    store::{self, IDEMPOTENCY_TABLE},
};

impl DispatchApi {
    pub(super) async fn register_device(
        &self,
        caller: &Caller,
        req: pb::RegisterDeviceRequest,
    ) -> Result<pb::RegisterDeviceResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RegisterDevice", who, &req.request_id, &req)?;
        let at = self.clock.now();
        let d = convert::new_device(req.device.as_ref(), &who.sub, at, self.calendar.local_date(at))?;
        match self.open::<pb::RegisterDeviceResponse>(&call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx.rollback().await?,
        }
        // Devices are installed for customers being served (DSP-1, DSP-2).
        let (id, _, _, _) = self.customer(d.customer_id, caller.request_id.as_deref()).await?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        // The survivor, also when the merge was applied after the lookup (CUS-2).
        let mut d = d;
        d.customer_id = CustomerId(crm_events::aliases::resolve(&mut tx, "dispatch", id.0).await?);
        store::insert_device(&mut tx, &d).await?;
        let response = pb::RegisterDeviceResponse { device: Some(convert::device(&d)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    pub(super) async fn get_device(
        &self,
        _caller: &Caller,
        req: pb::GetDeviceRequest,
    ) -> Result<pb::GetDeviceResponse> {
        let mut v = Violations::default();
        let id = v.check("id", DeviceId::parse(&req.id));
        let id = v.finish_with(id)?;
        let mut conn = self.pool.acquire().await?;
        let d = store::load_device(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "device", id: id.to_string() })?;
        Ok(pb::GetDeviceResponse { device: Some(convert::device(&d)) })
    }

    pub(super) async fn list_devices(
        &self,
        _caller: &Caller,
        req: pb::ListDevicesRequest,
    ) -> Result<pb::ListDevicesResponse> {
        let mut v = Violations::default();
        let customer_id =
            if req.customer_id.is_empty() { None } else { v.check("customer_id", CustomerId::parse(&req.customer_id)) };
        v.finish()?;
        let plate = req.vehicle_plate.trim().to_uppercase();
        let fingerprint = page::fingerprint(&[req.customer_id.as_bytes(), plate.as_bytes()]);
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let mut conn = self.pool.acquire().await?;
        let plate = (!plate.is_empty()).then_some(plate.as_str());
        let rows = store::list_devices(&mut conn, customer_id.map(|c| c.0), plate, page.after, page.size).await?;
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        Ok(pb::ListDevicesResponse { devices: rows.iter().map(convert::device).collect(), next_page_token })
    }

    pub(super) async fn decommission_device(
        &self,
        caller: &Caller,
        req: pb::DecommissionDeviceRequest,
    ) -> Result<pb::DecommissionDeviceResponse> {
        let who = &caller.who;
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "DecommissionDevice", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = v.check("id", DeviceId::parse(&req.id));
        let reason = convert::required_text(&mut v, "reason", &req.reason, convert::NOTE);
        let (id, reason) = v.finish_with((id, reason))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let mut d = store::load_device(&mut tx, id, true)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "device", id: id.to_string() })?;
        if let Some(want) = convert::etag(&req.etag)
            && want != d.etag()
        {
            return Err(Error::StaleEtag { current: d.etag() });
        }
        d.check_active()?;
        d.status = DeviceStatus::Decommissioned;
        d.decommission_reason = reason;
        store::save_device(&mut tx, &d, self.clock.now()).await?;
        let saved = store::load_device(&mut tx, id, false)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("device {id} vanished inside its transaction")))?;
        let response = pb::DecommissionDeviceResponse { device: Some(convert::device(&saved)) };
        call.commit(tx, &response).await?;
        Ok(response)
    }
}

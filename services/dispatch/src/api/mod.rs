//! gRPC handlers: decode and validate (convert), authorize (policy table and
//! the model's role rules), let the model decide, persist with the store in
//! one transaction together with the idempotency key. No SQL and no business
//! rules here.

mod base;
mod cash;
mod convert;
mod field;
mod metering;
mod orders;
mod planning;

use chrono::{DateTime, Utc};
use crm_domain::WorkingCalendar;
use crm_platform::{
    Clock, Policy, Principal, ServiceContext, customers::Customers, idempotency::IdempotentCall, idempotency::Opened,
};
use crm_proto::dispatch::v1::{self as pb, dispatch_service_server::DispatchService};
use prost::Message;
use sqlx::{PgPool, Postgres, Transaction};
use tonic::{Request, Response, Status};

use crate::{
    error::{Error, Result},
    model::{
        State, Step, WorkOrder, WorkOrderId,
        access::{
            CASH_READERS, FIELD, FINANCE, INSTALLERS, INTAKE, METER_ADMINS, METER_READERS, PLANNERS, READERS,
            REPORT_READERS, ROUTE_READERS, SUPERVISORS, TEAM_ADMINS,
        },
        lifecycle::Event,
    },
    store,
};

pub const SERVICE_NAME: &str = "crm.dispatch.v1.DispatchService";

/// Who may call which RPC at all (DSP-2..DSP-4, see `model::access`).
pub fn policy() -> Policy {
    Policy::new(SERVICE_NAME)
        .allow("CreateWorkOrder", INTAKE)
        .allow("GetWorkOrder", READERS)
        .allow("ListWorkOrders", READERS)
        .allow("SubmitWorkOrder", INTAKE)
        .allow("ApproveWorkOrder", SUPERVISORS)
        .allow("CancelWorkOrder", SUPERVISORS)
        .allow("CloseWorkOrder", SUPERVISORS)
        .allow("CreateTechnician", TEAM_ADMINS)
        .allow("GetTechnician", READERS)
        .allow("ListTechnicians", READERS)
        .allow("ProposeTechnicians", PLANNERS)
        .allow("AssignWorkOrder", PLANNERS)
        .allow("AutoAssign", PLANNERS)
        .allow("ConfirmChecklist", FIELD)
        .allow("StartTravel", FIELD)
        .allow("ArriveOnSite", FIELD)
        .allow("CompleteWorkOrder", FIELD)
        .allow("ListAtRisk", PLANNERS)
        .allow("RegisterDevice", INSTALLERS)
        .allow("GetDevice", READERS)
        .allow("ListDevices", READERS)
        .allow("DecommissionDevice", SUPERVISORS)
        .allow("ListParts", READERS)
        .allow("SetLabourRate", TEAM_ADMINS)
        .allow("GetLabourRate", READERS)
        .allow("RecordCashHandover", FINANCE)
        .allow("ListUnreconciledCollections", CASH_READERS)
        .allow("CreateRoute", TEAM_ADMINS)
        .allow("GetRouteSchedule", ROUTE_READERS)
        .allow("RegisterMeter", METER_ADMINS)
        .allow("ListMeters", ROUTE_READERS)
        .allow("RecordReadings", METER_READERS)
        .allow("GetReadRate", REPORT_READERS)
}

/// The gRPC service over one database pool.
#[derive(Clone)]
pub struct DispatchApi {
    pool: PgPool,
    calendar: WorkingCalendar,
    /// The customers service, checked at creation.
    customers: Customers,
    clock: Clock,
}

pub(crate) use crm_platform::Caller;

impl DispatchApi {
    pub fn new(pool: PgPool, ctx: &ServiceContext) -> Self {
        Self {
            pool,
            calendar: ctx.calendar.clone(),
            customers: Customers::new(ctx, "dispatch"),
            clock: ctx.clock.clone(),
        }
    }

    pub fn into_server(self) -> pb::dispatch_service_server::DispatchServiceServer<Self> {
        pb::dispatch_service_server::DispatchServiceServer::new(self)
    }

    /// Opens the transaction of a mutating call and claims its idempotency
    /// key; a call that already ran yields its first response instead.
    async fn open<R: Message + Default>(&self, call: &IdempotentCall) -> Result<Opened<R>> {
        Ok(call.open(&self.pool).await?)
    }

    /// Claims the key, locks the order, checks the etag and asks the
    /// lifecycle whether `event` may happen now.
    async fn begin_change<R: Message + Default>(
        &self,
        call: &IdempotentCall,
        id: WorkOrderId,
        etag: &str,
        event: impl FnOnce(&WorkOrder) -> Event,
    ) -> Result<Opened<R, Box<Fresh>>> {
        let opened = call
            .open_change(&self.pool, async |tx| {
                let w = store::load_for_change(tx, id, convert::etag(etag)).await?;
                let to = w.state.transition(event(&w))?;
                Ok::<_, Error>((w, to))
            })
            .await?;
        Ok(opened.map(|(tx, (w, to))| Box::new(Fresh { tx, w, to })))
    }

    /// Saves the order (new etag), records the step, reads it back as
    /// stored, builds the response, stores it with the key and commits.
    async fn finish_change<R: Message>(
        call: IdempotentCall,
        tx: Transaction<'static, Postgres>,
        w: &WorkOrder,
        step: Step,
        respond: impl FnOnce(pb::WorkOrder) -> R,
    ) -> Result<R> {
        call.finish(tx, async |tx| {
            store::save_work_order(tx, w, step.at).await?;
            store::record_step(tx, w.id, &step).await?;
            let saved = store::load(tx, w.id, false)
                .await?
                .ok_or_else(|| Error::Corrupt(format!("work order {} vanished inside its transaction", w.id)))?;
            Ok(respond(convert::work_order(&saved)))
        })
        .await
    }
}

/// A change to one work order, opened under its row lock.
struct Fresh {
    tx: Transaction<'static, Postgres>,
    w: WorkOrder,
    /// The state the lifecycle allows after the event.
    to: State,
}

/// A step of `w` moving from `from` to its current state.
fn step(action: &str, from: State, w: &WorkOrder, who: &Principal, at: DateTime<Utc>, note: String) -> Step {
    Step { action: action.into(), from_state: Some(from), to_state: w.state, actor: who.sub.clone(), at, note }
}

crm_platform::grpc_service! {
    impl DispatchService for DispatchApi {
        create_work_order(pb::CreateWorkOrderRequest) -> pb::CreateWorkOrderResponse;
        get_work_order(pb::GetWorkOrderRequest) -> pb::GetWorkOrderResponse;
        list_work_orders(pb::ListWorkOrdersRequest) -> pb::ListWorkOrdersResponse;
        submit_work_order(pb::SubmitWorkOrderRequest) -> pb::SubmitWorkOrderResponse;
        approve_work_order(pb::ApproveWorkOrderRequest) -> pb::ApproveWorkOrderResponse;
        cancel_work_order(pb::CancelWorkOrderRequest) -> pb::CancelWorkOrderResponse;
        close_work_order(pb::CloseWorkOrderRequest) -> pb::CloseWorkOrderResponse;
        create_technician(pb::CreateTechnicianRequest) -> pb::CreateTechnicianResponse;
        get_technician(pb::GetTechnicianRequest) -> pb::GetTechnicianResponse;
        list_technicians(pb::ListTechniciansRequest) -> pb::ListTechniciansResponse;
        propose_technicians(pb::ProposeTechniciansRequest) -> pb::ProposeTechniciansResponse;
        assign_work_order(pb::AssignWorkOrderRequest) -> pb::AssignWorkOrderResponse;
        auto_assign(pb::AutoAssignRequest) -> pb::AutoAssignResponse;
        confirm_checklist(pb::ConfirmChecklistRequest) -> pb::ConfirmChecklistResponse;
        start_travel(pb::StartTravelRequest) -> pb::StartTravelResponse;
        arrive_on_site(pb::ArriveOnSiteRequest) -> pb::ArriveOnSiteResponse;
        complete_work_order(pb::CompleteWorkOrderRequest) -> pb::CompleteWorkOrderResponse;
        list_at_risk(pb::ListAtRiskRequest) -> pb::ListAtRiskResponse;
        register_device(pb::RegisterDeviceRequest) -> pb::RegisterDeviceResponse;
        get_device(pb::GetDeviceRequest) -> pb::GetDeviceResponse;
        list_devices(pb::ListDevicesRequest) -> pb::ListDevicesResponse;
        decommission_device(pb::DecommissionDeviceRequest) -> pb::DecommissionDeviceResponse;
        list_parts(pb::ListPartsRequest) -> pb::ListPartsResponse;
        set_labour_rate(pb::SetLabourRateRequest) -> pb::SetLabourRateResponse;
        get_labour_rate(pb::GetLabourRateRequest) -> pb::GetLabourRateResponse;
        record_cash_handover(pb::RecordCashHandoverRequest) -> pb::RecordCashHandoverResponse;
        list_unreconciled_collections(pb::ListUnreconciledCollectionsRequest) -> pb::ListUnreconciledCollectionsResponse;
        create_route(pb::CreateRouteRequest) -> pb::CreateRouteResponse;
        get_route_schedule(pb::GetRouteScheduleRequest) -> pb::GetRouteScheduleResponse;
        register_meter(pb::RegisterMeterRequest) -> pb::RegisterMeterResponse;
        list_meters(pb::ListMetersRequest) -> pb::ListMetersResponse;
        get_read_rate(pb::GetReadRateRequest) -> pb::GetReadRateResponse;
    }
    streaming {
        async fn record_readings(
            &self,
            request: Request<tonic::Streaming<pb::RecordReadingsRequest>>,
        ) -> std::result::Result<Response<pb::RecordReadingsResponse>, Status> {
            let caller = Caller::of(&request)?;
            Ok(Response::new(self.record_reading_stream(&caller, request.into_inner()).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC of the service is in the policy table (unlisted ones are
    /// denied to everyone, which would make an RPC silently unusable).
    #[test]
    fn policy_names_every_rpc() {
        let listed = policy().methods();
        let descriptor = include_str!("../../../../proto/crm/dispatch/v1/dispatch.proto");
        let mut rpcs: Vec<String> = descriptor
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .map(str::to_string)
            .collect();
        assert!(!rpcs.is_empty());
        rpcs.sort();
        assert_eq!(listed, rpcs);
    }
}

//! The customers service as its peers read it: complaints at intake,
//! dispatch when an order is created, billing when an account is opened.
//! One lookup with one deadline and one reading of its answers; what a
//! terminated customer means is each service's own rule.

use std::time::Duration;

use crm_domain::ids::CustomerId;
use crm_proto::customers::v1::{self as cpb, customer_service_client::CustomerServiceClient};
use tonic::{Code, Status};

use crate::{ServiceContext, client, client::Peer, error};

/// How long a peer waits for the customers service.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The customer as the customers service knows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentCustomer {
    /// The survivor's id when the id asked for was merged away (CUS-2).
    pub id: CustomerId,
    pub display_name: String,
    pub branch: String,
    pub service_level: cpb::ServiceLevel,
    pub value_tier: cpb::ValueTier,
    pub terminated: bool,
}

/// A client of the customers service, calling with a `system` token.
#[derive(Clone)]
pub struct Customers {
    /// An unusable URL is reported on use, so the service still starts.
    peer: Result<Peer, String>,
}

impl Customers {
    /// The customers service at `ctx.customers_url`, called as `caller`.
    pub fn new(ctx: &ServiceContext, caller: &str) -> Self {
        Self { peer: Peer::lazy(&ctx.customers_url, ctx.keys.clone(), caller).map_err(|e| e.to_string()) }
    }

    /// The customer `id` now: NOT_FOUND when unknown; UNAVAILABLE
    /// (`CUSTOMERS_UNAVAILABLE`, retry with the same request id) when the
    /// customers service cannot answer.
    pub async fn current(&self, id: CustomerId, request_id: Option<&str>) -> Result<CurrentCustomer, Status> {
        let peer = self.peer.as_ref().map_err(|e| unavailable(e))?;
        let mut customers = CustomerServiceClient::with_interceptor(peer.channel.clone(), peer.auth.clone());
        let req = client::request(cpb::GetCustomerRequest { id: id.to_string() }, request_id, LOOKUP_TIMEOUT);
        let c = match customers.get_customer(req).await {
            Ok(r) => r.into_inner().customer.ok_or_else(|| error::internal(&"GetCustomer returned no customer"))?,
            Err(s) if s.code() == Code::NotFound => return Err(error::not_found("customer", &id.to_string())),
            Err(s) => return Err(unavailable(&format!("{:?}: {}", s.code(), s.message()))),
        };
        let current_id =
            CustomerId::parse(&c.id).map_err(|e| error::internal(&format!("GetCustomer id: {}", e.reason)))?;
        Ok(CurrentCustomer {
            id: current_id,
            service_level: c.service_level(),
            value_tier: c.value_tier(),
            terminated: c.stage() == cpb::LifecycleStage::Terminated,
            display_name: c.display_name,
            branch: c.branch,
        })
    }
}

fn unavailable(detail: &str) -> Status {
    tracing::warn!(error = %detail, "customers service unavailable");
    error::with_reason(
        Code::Unavailable,
        "CUSTOMERS_UNAVAILABLE",
        "the customer could not be checked right now; retry with the same request_id",
        &[],
    )
}

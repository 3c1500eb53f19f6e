//! Shared set-up of the flow tests: all four services in-process on one
//! ephemeral cluster, each following the others' event feeds, with clients
//! and tokens for every role.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

use std::time::Duration;

use crm_platform::ServiceDef;
use crm_proto::{
    billing::v1::billing_service_client::BillingServiceClient,
    complaints::v1::complaint_service_client::ComplaintServiceClient,
    customers::v1::customer_service_client::CustomerServiceClient,
    dispatch::v1::dispatch_service_client::DispatchServiceClient,
    events::v1::event_feed_service_client::EventFeedServiceClient,
};
use crm_testkit::{Bearer, Role, TestGroup};
use sqlx::PgPool;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub use crm_testkit;

pub type Client<T> = T;
pub type Authed = InterceptedService<Channel, Bearer>;

/// The four services in the order they are started.
pub const ALL: [&ServiceDef; 4] =
    [&crm_customers::SERVICE, &crm_complaints::SERVICE, &crm_dispatch::SERVICE, &crm_billing::SERVICE];

/// The whole system for one test.
pub struct System {
    pub group: TestGroup,
    pub pool: PgPool,
}

impl System {
    pub async fn start() -> System {
        let group = TestGroup::spawn(&ALL).await;
        let pool = group.db.pool().await;
        System { group, pool }
    }

    async fn channel(&self, service: &str) -> Channel {
        self.group.get(service).channel().await
    }

    fn bearer(&self, roles: &[Role], sub: &str, branch: Option<&str>) -> Bearer {
        self.group.get("customers").bearer(roles, sub, branch)
    }

    pub async fn customers(&self, roles: &[Role], sub: &str) -> CustomerServiceClient<Authed> {
        CustomerServiceClient::with_interceptor(self.channel("customers").await, self.bearer(roles, sub, Some("bj")))
    }

    pub async fn complaints(&self, roles: &[Role], sub: &str) -> ComplaintServiceClient<Authed> {
        ComplaintServiceClient::with_interceptor(self.channel("complaints").await, self.bearer(roles, sub, Some("bj")))
    }

    pub async fn dispatch(&self, roles: &[Role], sub: &str) -> DispatchServiceClient<Authed> {
        DispatchServiceClient::with_interceptor(self.channel("dispatch").await, self.bearer(roles, sub, Some("bj")))
    }

    pub async fn billing(&self, roles: &[Role], sub: &str) -> BillingServiceClient<Authed> {
        BillingServiceClient::with_interceptor(self.channel("billing").await, self.bearer(roles, sub, Some("bj")))
    }

    /// The event feed (and consumer views) of `service`, as admin.
    pub async fn feed(&self, service: &str) -> EventFeedServiceClient<Authed> {
        EventFeedServiceClient::with_interceptor(self.channel(service).await, self.bearer(&[Role::Admin], "ops", None))
    }
}

/// Polls `check` until it returns Some, for at most `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh idempotency key.
pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

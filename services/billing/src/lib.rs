//! The billing service (`crm.billing.v1`): accounts, tariffs and the price
//! catalogue, invoices, payments and credit notes allocated oldest first,
//! arrears, and the immutable ledger with statements (SPEC BIL-1, BIL-2,
//! BIL-4..BIL-9). Data flows api → model → store; `usecases` holds what the
//! RPCs, the event consumers (`events`, X-2) and the jobs share: posting
//! money, publishing the catalogue, dunning and the termination (CUS-11).

pub mod api;
pub mod error;
pub mod events;
pub mod model;
pub mod store;
pub mod usecases;

use usecases::{catalogue, dunning, termination};

use crm_platform::{ServiceContext, ServiceDef, ServiceSpec, service::BackgroundTask};
use sqlx::{PgPool, migrate::Migrator};
use tonic::service::Routes;

/// This schema's migrations (history in `billing._sqlx_migrations`).
pub static MIGRATOR: Migrator = sqlx::migrate!();

pub const SERVICE: ServiceDef = ServiceDef {
    name: "billing",
    default_port: 50054,
    migrator: &MIGRATOR,
    idempotency_table: store::IDEMPOTENCY_TABLE,
    build,
    background: Some(background),
};

fn background(pool: PgPool, ctx: ServiceContext) -> BackgroundTask {
    let subscriptions = events::subscriptions(&ctx);
    let consumers = crm_events::consume(SERVICE.name, pool.clone(), ctx.clone(), subscriptions);
    Box::pin(async move {
        tokio::join!(
            catalogue::announce_at_start(pool.clone()),
            dunning::run(pool.clone(), ctx.calendar.clone(), dunning::EVERY),
            termination::run(pool, ctx.saga_retry),
            consumers
        );
    })
}

fn build(pool: PgPool, ctx: &ServiceContext) -> ServiceSpec {
    ServiceSpec {
        name: SERVICE.name,
        policy: api::policy(),
        also: vec![crm_events::feed::policy()],
        routes: Routes::new(api::BillingApi::new(pool.clone(), ctx).into_server()).add_service(crm_events::feed(
            SERVICE.name,
            pool,
            ctx,
            events::subscriptions(ctx),
        )),
        file_descriptor_set: crm_proto::FILE_DESCRIPTOR_SET,
    }
}

//! The customers service (`crm.customers.v1`): customer profiles, contacts,
//! addresses, ownership, classification and lifecycle (SPEC CUS-1, CUS-2,
//! CUS-3, CUS-8, CUS-9, CUS-13). Data flows api → model → store.

pub mod api;
pub mod error;
pub mod events;
pub mod model;
pub mod store;

use crm_platform::{ServiceContext, ServiceDef, ServiceSpec, service::BackgroundTask};
use sqlx::{PgPool, migrate::Migrator};
use tonic::service::Routes;

/// This schema's migrations (`migrations/`, history in
/// `customers._sqlx_migrations` per `sqlx.toml`).
pub static MIGRATOR: Migrator = sqlx::migrate!();

pub const SERVICE: ServiceDef = ServiceDef {
    name: "customers",
    default_port: 50051,
    migrator: &MIGRATOR,
    idempotency_table: store::IDEMPOTENCY_TABLE,
    build,
    background: Some(background),
};

fn build(pool: PgPool, ctx: &ServiceContext) -> ServiceSpec {
    ServiceSpec {
        name: SERVICE.name,
        policy: api::policy(),
        also: vec![crm_events::feed::policy()],
        routes: Routes::new(api::CustomersApi::new(pool.clone(), ctx.calendar.clone()).into_server())
            .add_service(crm_events::feed(SERVICE.name, pool, ctx, events::subscriptions(ctx))),
        file_descriptor_set: crm_proto::FILE_DESCRIPTOR_SET,
    }
}

fn background(pool: PgPool, ctx: ServiceContext) -> BackgroundTask {
    let subscriptions = events::subscriptions(&ctx);
    let every = ctx.saga_retry;
    let consumers = crm_events::consume(SERVICE.name, pool.clone(), ctx, subscriptions);
    Box::pin(async move {
        tokio::join!(consumers, events::run_saga(pool, every));
    })
}

//! The customers service (`crm.customers.v1`): customer profiles, contacts,
//! addresses, ownership, classification and lifecycle (SPEC CUS-1, CUS-2,
//! CUS-3, CUS-8, CUS-9, CUS-13). Data flows api → model → store.

pub mod api;
pub mod error;
pub mod events;
pub mod model;
pub mod store;
pub mod usecases;

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

/// How often rows with search terms of an older version are looked for.
const REINDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn background(pool: PgPool, ctx: ServiceContext) -> BackgroundTask {
    let subscriptions = events::subscriptions(&ctx);
    let every = ctx.saga_retry;
    let consumers = crm_events::consume(SERVICE.name, pool.clone(), ctx, subscriptions);
    let reindex = crm_platform::jobs::every("search reindex", pool.clone(), REINDEX_EVERY, |pool| async move {
        let mut done = 0;
        loop {
            let n = store::reindex_batch(&pool, 1_000).await?;
            done += n;
            if n == 0 {
                return Ok::<u64, error::Error>(done);
            }
        }
    });
    Box::pin(async move {
        tokio::join!(consumers, usecases::termination::run_saga(pool, every), reindex);
    })
}

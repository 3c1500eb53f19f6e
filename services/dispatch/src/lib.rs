//! The dispatch service (`crm.dispatch.v1`): the installed base and its swap
//! history, work orders and their lifecycle, technicians, proposals and
//! capacity-safe assignment, priority and the urgent-parts target, completion
//! with parts, warranty and on-site payment, cash hand-over, and meter
//! reading (SPEC DSP-1..DSP-7). Data flows api → model → store.

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
/// `dispatch._sqlx_migrations` per `sqlx.toml`).
pub static MIGRATOR: Migrator = sqlx::migrate!();

pub const SERVICE: ServiceDef = ServiceDef {
    name: "dispatch",
    default_port: 50053,
    migrator: &MIGRATOR,
    idempotency_table: store::IDEMPOTENCY_TABLE,
    build,
    // The at-risk list is computed on read; only the event consumers run in the background.
    background: Some(background),
};

fn build(pool: PgPool, ctx: &ServiceContext) -> ServiceSpec {
    let routes = Routes::new(api::DispatchApi::new(pool.clone(), ctx).into_server());
    crm_events::spec_with_feed(SERVICE.name, api::policy(), routes, pool, ctx, events::subscriptions(ctx))
}

fn background(pool: PgPool, ctx: ServiceContext) -> BackgroundTask {
    let subscriptions = events::subscriptions(&ctx);
    Box::pin(crm_events::consume(SERVICE.name, pool, ctx, subscriptions))
}

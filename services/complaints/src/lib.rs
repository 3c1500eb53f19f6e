//! The complaints service (`crm.complaints.v1`): intake, acceptance,
//! investigation and escalation, re-test of test data, answer deadlines and
//! their escalation, outcome and feedback, compensation, records and reports
//! (SPEC CMP-1..CMP-9). Data flows api → model → store; `escalation` is the
//! background job that escalates overdue answers; `events` publishes and
//! consumes events, and re-checks held termination steps in the background.

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
/// `complaints._sqlx_migrations` per `sqlx.toml`).
pub static MIGRATOR: Migrator = sqlx::migrate!();

pub const SERVICE: ServiceDef = ServiceDef {
    name: "complaints",
    default_port: 50052,
    migrator: &MIGRATOR,
    idempotency_table: store::IDEMPOTENCY_TABLE,
    build,
    background: Some(background),
};

fn build(pool: PgPool, ctx: &ServiceContext) -> ServiceSpec {
    let routes = Routes::new(api::ComplaintsApi::new(pool.clone(), ctx).into_server());
    crm_events::spec_with_feed(SERVICE.name, api::policy(), routes, pool, ctx, events::subscriptions(ctx))
}

fn background(pool: PgPool, ctx: ServiceContext) -> BackgroundTask {
    let subscriptions = events::subscriptions(&ctx);
    let recheck = events::termination::run(pool.clone(), ctx.saga_retry, ctx.clock.clone());
    let clock = ctx.clock.clone();
    let consumers = crm_events::consume(SERVICE.name, pool.clone(), ctx, subscriptions);
    Box::pin(async move {
        tokio::join!(usecases::escalation::run(pool, usecases::escalation::EVERY, clock), consumers, recheck);
    })
}

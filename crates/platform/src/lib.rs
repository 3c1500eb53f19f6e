//! What every service runs on, used unchanged by all four: configuration,
//! telemetry, the tower stack, JWT auth with a per-service policy table, rich
//! gRPC errors, the database pool and migrations, idempotency keys, serving
//! with health/reflection/graceful shutdown, and a local Postgres for
//! development and tests.

pub mod admission;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod conn;
pub mod customers;
pub mod db;
pub mod edge;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod jobs;
pub mod limits;
pub mod localpg;
pub mod methods;
pub mod metrics;
pub mod proto_time;
pub mod server;
pub mod service;
pub mod service_error;
pub mod telemetry;

pub use auth::{Caller, Policy, Principal, TokenKeys};
pub use clock::Clock;
pub use config::{CalendarConfig, ServerConfig};
pub use error::{Parsed, Violations};
pub use server::{ServiceSpec, serve};
pub use service::{ServiceContext, ServiceDef, Stopping};
pub use service_error::ServiceError;

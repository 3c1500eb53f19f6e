//! Customers service over real gRPC against a real Postgres: one test binary,
//! one database per test (crm-testkit).

mod access;
mod create;
mod helpers;
mod idempotency;
mod lifecycle;
mod parts;
mod read;
mod update;

//! Customers service over real gRPC against a real Postgres: one test binary,
//! one database per test (crm-testkit).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod access;
mod create;
mod helpers;
mod idempotency;
mod lifecycle;
mod parts;
mod read;
mod update;

//! Customers service over real gRPC against a real Postgres: one test binary,
//! one database per test (crm-testkit).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod access;
mod accounts;
mod audit;
mod contact_log;
mod create;
mod events;
mod helpers;
mod idempotency;
mod import;
mod leads;
mod lifecycle;
mod merge;
mod parts;
mod read;
mod search;
mod termination;
mod update;
mod visits;

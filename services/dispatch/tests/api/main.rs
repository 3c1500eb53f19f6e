//! Dispatch service over real gRPC against a real Postgres, with the
//! customers service it checks at creation spawned on the same database.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod access;
mod assignment;
mod base;
mod completion;
mod events;
mod helpers;
mod metering;
mod orders;

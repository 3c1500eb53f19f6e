//! Complaints service over real gRPC against a real Postgres, with the
//! customers service it checks at intake spawned on the same database.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod access;
mod deadlines;
mod events;
mod helpers;
mod intake;
mod lifecycle;
mod records;
mod retries;

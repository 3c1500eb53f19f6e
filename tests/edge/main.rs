//! The edge of every service under hostile input and load (SPEC ),
//! over real gRPC against real Postgres: status codes a client can act on,
//! admission that queues and shares, bounded streams, health that follows
//! the database, idle connections closed, abandoned queries cancelled.
//! The slow and destructive checks (kill -9, Postgres restarts, fuzzing at
//! volume) are in `make faults` (`tests/faults`).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod admission;
mod codes;
mod connections;
mod raw;

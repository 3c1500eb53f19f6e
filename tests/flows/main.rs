//! End-to-end flows between the four services (SPEC, CUS-11): all
//! of them in-process on one ephemeral cluster, over real gRPC, each
//! following the others' event feeds.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod compensation;
mod delivery;
mod feed;
mod merges;
mod paid_work;
mod readings;
mod termination;

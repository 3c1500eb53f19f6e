//! Billing over real gRPC against a real Postgres, with the customers
//! service it checks accounts against, both on one test database.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod accounts;
mod desk;
mod events;
mod helpers;
mod invoices;
mod ledger;
mod payments;
mod tariffs;
mod termination;
mod usage;

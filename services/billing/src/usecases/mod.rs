//! Billing's use cases: what RPC handlers, event consumers and jobs share,
//! so each happens one way whoever starts it — posting money (issuing,
//! receiving, crediting, with ledger rows and events), publishing the
//! catalogue, dunning, and billing's part of a customer's termination.

pub mod catalogue;
pub mod dunning;
pub mod posting;
pub mod termination;

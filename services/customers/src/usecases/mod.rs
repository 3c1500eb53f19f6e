//! The customers service's use cases: what RPC handlers, event consumers and
//! jobs share, so each happens one way whoever starts it — publishing events
//! (`publish`), behaviour facts and automatic tiers (`behaviour`, CUS-8) and
//! the termination saga's steps (`termination`, CUS-11).

pub mod behaviour;
pub mod publish;
pub mod termination;

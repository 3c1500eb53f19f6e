//! Dispatch's use cases: what RPC handlers, event consumers and jobs share,
//! so each happens one way whoever starts it — cancelling a work order (by a
//! supervisor or by a customer's termination) and publishing what dispatch
//! tells the other services (`publish`, X-1).

pub mod cancellation;
pub mod publish;

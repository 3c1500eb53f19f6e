//! Complaints' use cases: what RPC handlers, event consumers and jobs share,
//! so each happens one way whoever starts it — today the overdue-answer
//! escalation job (CMP-6), which escalates through the same model rule as
//! EscalateComplaint (`model::escalation::escalate`).

pub mod escalation;

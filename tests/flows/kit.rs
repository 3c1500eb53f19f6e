//! Shared set-up of the flow tests.

//! Every type that crosses a process boundary: the event envelope and the closed event enum, the
//! campaign and variant file models with their validation and matrix expansion, and the JetStream
//! stream `EVAL` that carries the events (its configuration, subjects, and a thin client).

pub mod campaign;
pub mod cleanup;
pub mod event;
pub mod fit;
pub mod ids;
pub mod log;
pub mod operator_db;
pub mod program;

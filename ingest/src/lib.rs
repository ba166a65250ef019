//! What brings outside data into the event log: campaign files (`evalctl validate`, `evalctl publish`),
//! the operator.db capture, and the import of legacy `eval.db` files.

pub mod campaign_files;
pub mod capture;
pub mod legacy;
pub mod publish;
pub(crate) mod sqlite;

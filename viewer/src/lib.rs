//! The views of the log that never publish: `eval events` now; later the axum web UI, its JSON
//! API and the CLI views over DuckDB (`list`, `show`, `compare…`, `sql`).

pub mod events;

//! The views that never publish: `evalctl events`, the read-only SQL surface over DuckDB and the
//! read commands built on it (`sql`, `list`, `show`, `analyze`, `compare…`), and the local API
//! that serves them while another process owns the DuckDB file; the web viewer (`web`), served as a
//! stage by `serve`, and its benchmark (`bench`); the
//! text tables every command prints (`table`); what database text becomes on a terminal or in a CSV
//! cell (`escape`).

pub mod api;
pub mod escape;
pub mod events;
pub mod http;
pub mod query;
pub mod reader;
pub mod serve;
pub mod show;
pub mod table;
pub mod views;
pub mod web;

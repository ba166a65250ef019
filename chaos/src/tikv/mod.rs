//! The TiKV subject: a cluster of PD members and TiKV stores, seen through PD's HTTP API
//! (`pd.rs`). Built so far: the API client, health and state capture from PD's view, the
//! evict-leader scheduler, and where the programs are found (`binaries.rs`); the lab runtime for `pd-server` and `tikv-server`, TiKV's faults and
//! its reference operator are not built yet (issue 17).

pub mod binaries;
pub mod pd;

//! The TiKV subject: a cluster of PD members and TiKV stores, seen through PD's HTTP API
//! (`pd.rs`), run from `pd-server` and `tikv-server` wherever they are found (`binaries.rs`), as
//! a [`Subject`](crate::subject::Subject) on any runtime (`subject.rs`).

pub mod binaries;
pub mod pd;
pub mod subject;

pub use subject::TikvSubject;

//! The chaos stage: the subject × runtime seam (`subject.rs`, `runtime.rs`), the etcd and TiKV
//! subjects, the lab runtime, the six generic faults and TiKV's three, their cleanups, state capture, the trial worker, and the
//! lab broker of its unprivileged operators.

pub mod broker;
pub(crate) mod error;
pub mod etcd;
pub mod faults;
pub mod http;
pub mod kubernetes;
pub mod lab;
pub mod nft;
pub mod operator;
pub mod preflight;
pub mod proxy;
pub mod runtime;
pub mod subject;
pub mod tikv;
pub mod worker;

pub use error::{Error, Result};

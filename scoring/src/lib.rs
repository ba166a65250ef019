//! Grading trials: the pure, versioned scorer ([`score()`]), command classification by rules
//! ([`rules`]), thrashing detection ([`commands`]), statistics, comparisons and sample sizes
//! ([`stats`], [`compare`], [`power`]), and at the edges the scoring stage ([`stage::run`]) and
//! re-scoring by replay ([`rescore()`]), which read the log and publish `TrialScored` events
//! beside the old ones.
//!
//! The core is sans-IO: [`score()`] takes a trial's events and settings and returns its grade.
//! NATS is touched only by [`stage`], [`mod@rescore`] and [`mod@bench`].

pub mod commands;
pub mod compare;
pub mod fixtures;
pub mod power;
pub mod rescore;
pub mod rules;
pub mod score;
pub(crate) mod shell;
pub mod stage;
pub mod stats;

use std::path::PathBuf;

pub use rescore::{RescoreFilter, RescoreProgress, RescoreReport, rescore};
pub use rules::{Category, Rules};
pub use score::{ScoringConfig, TrialScore, score};

/// The version of the scoring logic and built-in rules. A change to either that can change a
/// score must bump it, so that old and new scores stand side by side.
/// `v2` added the grading of control trials (`chaos: none`) and the `control`,
/// `n_false_alarms` and `stayed_healthy` figures; fault trials grade as under `v1`.
/// `v3` added the rules of PD's HTTP API through curl: a scheduler change is a remediation (it
/// was destructive as any HTTP DELETE), unsafe recovery and a store's state set by hand are
/// destructive (they were remediations as any HTTP POST).
pub const SCORER_VERSION: &str = "v3";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
    #[error("{0}")]
    Rules(#[from] rules::RulesError),
    #[error("cannot read rules file {}: {source}", path.display())]
    ReadRules {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scoring consumer {consumer}: {reason}")]
    Consumer { consumer: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

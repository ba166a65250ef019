//! Campaign and variant files: the models, a span-aware YAML reader, validation that reports
//! every error with file, line and column, and the pure expansion into a matrix of trials.

mod diagnostic;
mod matrix;
mod model;
mod schema_walk;
mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Location, did_you_mean};
pub use matrix::{MAX_TRIALS, MatrixCell, TrialSpec, expand, matrix_counts, trial_count};
pub use model::*;
pub use validate::{MAX_FILE_BYTES, ParsedCampaign, parse_campaign, parse_variant};

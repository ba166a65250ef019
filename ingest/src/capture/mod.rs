//! The operator.db capture: follows one trial's operator.db (DESIGN.md, "operator.db contract") and
//! publishes what the operator did as events: `TicketOpened` for the trial's ticket,
//! `AgentSessionStarted` per session on it, one `AgentLogRecorded` per `agent_log_entries` row of
//! those sessions, and `TicketResolved`.
//!
//! # Which ticket
//!
//! The trial's ticket is the first (lowest id) whose `first_seen_at` is at or after the injection
//! (minus [`INJECTION_SLACK`], for clocks read at different moments) and whose `subject_context`
//! names the trial's subject or no subject at all.
//!
//! # Ids, cursors and restarts
//!
//! Every event id derives from the campaign, the trial, the database's identity (a hash of its
//! canonical path), the table and the row id, so a second capture of the same rows publishes only
//! duplicates, which JetStream drops within its duplicate window. Beyond that window, [`follow`]
//! seeds its [`Cursor`] from the trial's capture events already in the log, so nothing is sent
//! twice. Each batch is published before the cursor moves past it.
//!
//! # Reading while the operator writes
//!
//! Each poll opens the file read-only with a busy timeout and reads in one transaction (one
//! snapshot, WAL or rollback journal). The harness's only write is the trial's variant into its
//! ticket's `variant_*` columns, once, on a separate short read-write connection after the read
//! transaction ended (so a rollback-journal operator is never blocked by our shared lock).
//!
//! # Time zones
//!
//! A time without a zone is read in the operator's zone: `UTC`, a fixed offset (`+02:00`,
//! `-0530`, `UTC+2`), or an IANA name read from the system's TZif files (`/usr/share/zoneinfo`,
//! or `$TZDIR`), which `jiff` interprets.
//!
//! The modules: `rows` is the edge that reads SQLite ([`poll`], [`final_rows`]), pure but for
//! the file; `follow` adds the waiting, the log and the loop; `time` reads the operator's times
//! and zones (through `jiff`); [`stage`] runs `follow` for every trial with an operator on this
//! host, as the worker injects its fault, and ends each with `OperatorCaptureFinished`. The
//! capture stage is the only reader of operator.db, and the only writer (the variant).

pub mod confine;
mod follow;
mod rows;
pub mod stage;
mod time;

pub use follow::{cursor_from, follow, follow_seeded, seed_cursor};
pub use rows::{final_rows, poll};
pub use time::{OperatorZone, parse_operator_time};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::campaign::{SubjectKind, VariantFile};
use schemas::event::Timestamp;
use sha2::{Digest, Sha256};

/// How often [`follow`] reads the file.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a read waits for the operator's write lock before giving up for this poll.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A ticket first seen this long before the injection still counts as the trial's.
pub const INJECTION_SLACK: Duration = Duration::from_millis(500);
/// Publishes awaiting their acknowledgement at once.
const IN_FLIGHT: usize = 256;

/// One trial's operator.db and what the capture needs to know about the trial.
#[derive(Debug, Clone)]
pub struct CaptureTarget {
    pub campaign_id: String,
    pub trial_id: String,
    pub operator_db: PathBuf,
    pub subject: SubjectKind,
    pub injected_at: Timestamp,
    /// How zone-less times are read: `UTC`, a fixed offset like `+02:00`, or an IANA name.
    pub operator_timezone: String,
    /// Written into the trial's ticket when it appears; `None` for baselines.
    pub variant: Option<VariantFile>,
}

/// How far a capture has read one operator.db.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Ticket rows up to this id were looked at and are not the trial's.
    pub last_ticket_row: i64,
    /// The trial's ticket, once found (its `TicketOpened` is then published).
    pub ticket_id: Option<i64>,
    /// The variant is in the ticket's `variant_*` columns.
    pub variant_written: bool,
    /// `session_id`s of the ticket's sessions already published.
    pub sessions: BTreeSet<String>,
    /// `agent_log_entries` rows up to this id are published.
    pub last_entry_row: i64,
    /// The ticket's `TicketResolved` is published.
    pub resolved: bool,
    /// `AgentLogRecorded` events of the trial from this file (published, or found in the log).
    pub n_entries: u64,
}

/// What a [`follow`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureReport {
    pub operator_db: PathBuf,
    /// The trial's ticket, when one appeared.
    pub ticket_id: Option<i64>,
    pub resolved: bool,
    /// `AgentLogRecorded` events of the trial from this file, in the log now.
    pub n_log_entries: u64,
    /// Capture events of this trial the log held when the capture started (not sent again).
    pub n_already_in_log: u64,
    /// Events stored by this capture.
    pub n_published: u64,
    /// Events the stream already had (same id), dropped.
    pub n_duplicates: u64,
    /// Log entries whose `tool_params` were not valid JSON (kept raw).
    pub n_malformed_tool_params: u64,
    pub n_polls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("operator.db {} did not appear within {}s", path.display(), waited.as_secs_f64())]
    MissingFile { path: PathBuf, waited: Duration },
    #[error("{} has no table {table:?} (see the operator.db contract)", path.display())]
    MissingTable { path: PathBuf, table: String },
    #[error("{}: table {table} has no column {column:?} (see the operator.db contract)", path.display())]
    MissingColumn {
        path: PathBuf,
        table: String,
        column: String,
    },
    #[error("{} is corrupt or not an sqlite database ({reason}); the events already published stay in the log", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: {table} row {row}, column {column}: {reason}", path.display())]
    BadValue {
        path: PathBuf,
        table: String,
        row: i64,
        column: String,
        reason: String,
    },
    #[error("operator time zone {zone:?} is not supported: {reason}")]
    Timezone { zone: String, reason: String },
    #[error("{} is locked by the operator ({reason})", path.display())]
    Busy { path: PathBuf, reason: String },
    #[error("reading {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("refused to open {}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("writing the variant into ticket {ticket_id} of {}: {reason}", path.display())]
    VariantWrite {
        path: PathBuf,
        ticket_id: i64,
        reason: String,
    },
    #[error("trial {trial_id} of campaign {campaign_id}: {reason}")]
    Trial {
        campaign_id: String,
        trial_id: String,
        reason: String,
    },
    #[error("consumer {consumer}: {reason}")]
    Consumer { consumer: String, reason: String },
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
}

pub type Result<T, E = CaptureError> = std::result::Result<T, E>;

/// A stable identity of the database file: 16 hex digits of the SHA-256 of its canonical path.
/// Together with the trial id in every event id, it keeps rows of two files (or of one file
/// shared by two trials) apart, while a restarted capture of the same file finds the same ids.
pub fn db_identity(path: &Path) -> Result<String> {
    let canonical = path.canonicalize().map_err(|error| CaptureError::Read {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let hash = Sha256::digest(canonical.to_string_lossy().as_bytes());
    Ok(hash[..8].iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The id of the capture event for `row` of `table` (`kind` tells events of one row apart).
pub fn capture_event_id(target: &CaptureTarget, identity: &str, key: &str) -> uuid::Uuid {
    schemas::ids::derived_event_id(
        &target.campaign_id,
        &format!("capture/{}/{identity}/{key}", target.trial_id),
        0,
    )
}

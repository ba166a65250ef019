//! The standalone viewer's hold on its file: one read-only DuckDB instance kept between requests,
//! since opening one costs about 20 ms (DuckDB's functions registered, the catalog read) and
//! starts its buffer pool cold. It is given up:
//! - as soon as an owner claims the file (`projector::owner`), so that `evalctl up` or `evalctl
//!   project` can open it; the owner waits for that, and meanwhile each request opens the file as
//!   before (or reads through the owner's API once it is announced);
//! - when the file changes under it (replaced, or written by another instance of this process);
//! - after `IDLE` without requests, so that an idle viewer holds nothing.
//!
//! A watcher thread runs while an instance is held, looking for a claim every `WATCH_EVERY`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use duckdb::Connection;

use super::cache::{FileStamp, file_stamp, lock};
use crate::query::{QueryError, open_read_only};
use crate::reader::Reader;

/// Without a request for this long, the instance is let go.
const IDLE: Duration = Duration::from_secs(60);

/// How often the watcher looks for an owner's claim.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// The file and the instance held on it.
#[derive(Debug)]
pub(super) struct HeldFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    held: Option<Held>,
    watching: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "State(held: {})", self.held.is_some())
    }
}

struct Held {
    connection: Connection,
    /// The file as it was when opened: a change means another instance wrote or replaced it.
    stamp: FileStamp,
    last_used: Instant,
}

impl HeldFile {
    pub(super) fn new(path: PathBuf) -> Arc<HeldFile> {
        Arc::new(HeldFile {
            path,
            state: Mutex::new(State::default()),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an instance is held now (for tests).
    pub(super) fn is_held(&self) -> bool {
        lock(&self.state).held.is_some()
    }

    /// A reader for one request: the owner's API when one is announced; the file opened for
    /// this request alone while an owner claims it; else a connection to the held instance,
    /// opened first if need be.
    pub(super) fn reader(self: &Arc<Self>) -> Result<Reader, QueryError> {
        if let Some(remote) = Reader::owner(&self.path) {
            self.release();
            return Ok(remote);
        }
        if projector::owner::owner_pid(&self.path).is_some() {
            self.release();
            return Reader::open(&self.path);
        }
        let stamp = file_stamp(&self.path);
        let mut state = lock(&self.state);
        if let Some(held) = state.held.as_mut().filter(|held| held.stamp == stamp) {
            held.last_used = Instant::now();
            return held
                .connection
                .try_clone()
                .map(Reader::Local)
                .map_err(|error| QueryError::Open(error.to_string()));
        }
        state.held = None;
        let connection = open_read_only(&self.path)?;
        let reader = connection
            .try_clone()
            .map(Reader::Local)
            .map_err(|error| QueryError::Open(error.to_string()))?;
        state.held = Some(Held {
            connection,
            stamp,
            last_used: Instant::now(),
        });
        if !state.watching {
            state.watching = true;
            let weak = Arc::downgrade(self);
            std::thread::Builder::new()
                .name("viewer-hold".to_string())
                .spawn(move || watch(weak))
                .map_err(|error| QueryError::Open(format!("cannot start a thread: {error}")))?;
        }
        Ok(reader)
    }

    /// Lets go of the instance; queries in flight keep it until they end.
    fn release(&self) {
        lock(&self.state).held = None;
    }
}

/// Lets go of the instance when an owner claims the file or it has been idle for `IDLE`; ends
/// when nothing is held, or the viewer has gone.
fn watch(file: Weak<HeldFile>) {
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(file) = file.upgrade() else {
            return;
        };
        let claimed = projector::owner::owner_pid(&file.path).is_some();
        let mut state = lock(&file.state);
        let idle = state
            .held
            .as_ref()
            .is_none_or(|held| held.last_used.elapsed() >= IDLE);
        if claimed || idle {
            state.held = None;
            state.watching = false;
            return;
        }
    }
}

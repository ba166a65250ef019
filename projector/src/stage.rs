//! The projector stage: reads the stream from the sequence after the last one committed, folds
//! the events on a blocking thread, and commits in batches (by size, by age, and whenever the
//! stream is drained).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemas::log::{EventFilter, EventLog, StoredMessage};
use tokio_util::sync::CancellationToken;

use crate::db::Writer;
use crate::project::{Batch, Projection};
use crate::{Error, Result};

/// How the stage runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop once every event stored when the stage started is committed.
    pub until_caught_up: bool,
    /// Commit after this many events …
    pub batch_events: usize,
    /// … or when the oldest uncommitted event waited this long.
    pub max_delay: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            until_caught_up: false,
            batch_events: 100_000,
            max_delay: Duration::from_secs(1),
        }
    }
}

/// Progress after a commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events applied by this run.
    pub applied: u64,
    /// The last stream sequence committed.
    pub last_sequence: u64,
    /// The stream's last sequence when the run started.
    pub stream_last_sequence: u64,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: u64,
    pub commits: u64,
    pub last_sequence: u64,
    /// The CPU time of the thread that folded the events into rows ([`FOLD_THREAD`]).
    pub fold_cpu: Duration,
    /// The CPU time of the thread that wrote them ([`COMMIT_THREAD`]): DuckDB's appends, commits
    /// and the closing checkpoint as far as they ran there, not DuckDB's own worker threads.
    pub commit_cpu: Duration,
}

/// The names of the stage's two threads (as `top -H` and `/proc/PID/task/*/comm` show them).
pub const FOLD_THREAD: &str = "eval-fold";
pub const COMMIT_THREAD: &str = "eval-commit";

/// The CPU time the calling thread has used so far.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// Deletes the DuckDB file (and its write-ahead log) for a rebuild.
pub fn delete_file(path: &Path) -> Result<()> {
    for file in [path.to_path_buf(), wal_path(path)] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(Error::Open {
                    path: file,
                    message: format!("cannot delete it for --rebuild: {error}"),
                });
            }
        }
    }
    Ok(())
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

/// Runs the projector on an open writer until the stream is drained (`until_caught_up`) or
/// `shutdown`; every event read before the end is committed.
pub async fn run(
    log: &EventLog,
    writer: Writer,
    projection: Projection,
    options: &Options,
    progress: impl FnMut(Progress) + Send + 'static,
    shutdown: CancellationToken,
) -> Result<Report> {
    let stream_last_sequence = log
        .stream()
        .await?
        .get_info()
        .await
        .map_err(|error| Error::Log(schemas::log::Error::Read(error.to_string())))?
        .state
        .last_sequence;
    let start = projection.last_sequence + 1;
    // An async channel: the reader never blocks a runtime thread while the fold commits.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<StoredMessage>>(64);
    let fold_options = options.clone();
    let handle = tokio::runtime::Handle::current();
    // A thread of its own, named, rather than one of the runtime's blocking pool: the fold runs
    // for the whole stage, and its CPU time is its thread's.
    let (folded, folder) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(FOLD_THREAD.to_string())
        .spawn(move || {
            // The timeout's timer needs the runtime's context, which a thread of the blocking
            // pool had and this one must enter.
            let _runtime = handle.enter();
            let mut next = |wait: Duration| -> std::result::Result<_, mpsc::RecvTimeoutError> {
                match handle.block_on(tokio::time::timeout(wait, receiver.recv())) {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => Err(mpsc::RecvTimeoutError::Disconnected),
                    Err(_) => Err(mpsc::RecvTimeoutError::Timeout),
                }
            };
            let _ = folded.send(fold(
                writer,
                projection,
                &mut next,
                &fold_options,
                stream_last_sequence,
                progress,
            ));
        })
        .map_err(|error| Error::Stage(format!("cannot start the projector thread: {error}")))?;

    let read = async {
        if options.until_caught_up && start > stream_last_sequence {
            return Ok(());
        }
        let events = log
            .read_messages_from(&EventFilter::default(), start, !options.until_caught_up)
            .await?;
        let mut chunks = Box::pin(events.ready_chunks(1024));
        loop {
            let chunk = tokio::select! {
                () = shutdown.cancelled() => break,
                chunk = chunks.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let mut stored = Vec::with_capacity(chunk.len());
            for item in chunk {
                stored.push(item?);
            }
            let past_end = options.until_caught_up
                && stored
                    .last()
                    .is_some_and(|event| event.sequence >= stream_last_sequence);
            // The fold ends when it has stopped; its error is reported below.
            if sender.send(stored).await.is_err() || past_end {
                break;
            }
        }
        Ok::<(), Error>(())
    };
    let read_result = read.await;
    drop(sender);
    // Dropped unsent only when the thread panicked.
    let fold_result = folder
        .await
        .map_err(|_| Error::Stage("the projector thread panicked".to_string()))?;
    let report = fold_result?;
    read_result?;
    Ok(report)
}

/// Applies every event stored now to an open writer, then stops: [`run`] with
/// `until_caught_up` and no progress reports.
pub async fn catch_up(log: &EventLog, writer: Writer, projection: Projection) -> Result<Report> {
    let options = Options {
        until_caught_up: true,
        ..Options::default()
    };
    run(
        log,
        writer,
        projection,
        &options,
        |_| {},
        CancellationToken::new(),
    )
    .await
}

/// Folds the chunks `next` yields and commits the batches on a thread of its own: DuckDB writes
/// one batch while the fold fills the next (and the reader reads on). At most one batch waits to
/// be written; a commit's error stops the fold.
fn fold(
    writer: Writer,
    mut projection: Projection,
    next: &mut impl FnMut(Duration) -> std::result::Result<Vec<StoredMessage>, mpsc::RecvTimeoutError>,
    options: &Options,
    stream_last_sequence: u64,
    progress: impl FnMut(Progress) + Send,
) -> Result<Report> {
    let first_sequence = projection.last_sequence;
    let (batches, inbox) = mpsc::sync_channel::<(Batch, u64)>(0);
    std::thread::scope(|scope| {
        let committer = std::thread::Builder::new()
            .name(COMMIT_THREAD.to_string())
            .spawn_scoped(scope, move || {
                let committed = commit_all(writer, inbox, stream_last_sequence, progress);
                (committed, thread_cpu())
            })
            .map_err(|error| {
                Error::Stage(format!(
                    "cannot start the projector's writing thread: {error}"
                ))
            })?;
        let folded = fold_into(&mut projection, next, options, &batches);
        let fold_cpu = thread_cpu();
        drop(batches);
        let (committed, commit_cpu) = committer
            .join()
            .map_err(|_| Error::Stage("the projector's writing thread panicked".to_string()))?;
        // A commit's error first: it is why the fold stopped.
        let (commits, committing, last_committed) = committed?;
        let (applied, applying, waiting) = folded;
        tracing::debug!(
            applied,
            commits,
            applying_ms = applying.as_millis(),
            committing_ms = committing.as_millis(),
            waiting_ms = waiting.as_millis(),
            "projector run ended"
        );
        Ok(Report {
            applied,
            commits,
            last_sequence: last_committed.unwrap_or(first_sequence),
            fold_cpu,
            commit_cpu,
        })
    })
}

/// Applies chunks until `next` says the reader is done, handing each batch due to `batches`
/// with the number of events applied so far. Returns the events applied and the time spent
/// applying and waiting.
fn fold_into(
    projection: &mut Projection,
    next: &mut impl FnMut(Duration) -> std::result::Result<Vec<StoredMessage>, mpsc::RecvTimeoutError>,
    options: &Options,
    batches: &mpsc::SyncSender<(Batch, u64)>,
) -> (u64, Duration, Duration) {
    let mut applied = 0u64;
    let mut oldest: Option<Instant> = None;
    let (mut applying, mut waiting) = (Duration::ZERO, Duration::ZERO);
    // False once the writer has stopped (its error is reported by `fold`).
    let hand_over = |projection: &mut Projection, applied: u64| {
        batches.send((projection.take_batch(), applied)).is_ok()
    };
    loop {
        let wait = oldest.map_or(Duration::from_secs(3600), |since| {
            options.max_delay.saturating_sub(since.elapsed())
        });
        let started = Instant::now();
        let received = next(wait);
        waiting += started.elapsed();
        match received {
            Ok(chunk) => {
                let started = Instant::now();
                for stored in &chunk {
                    projection.apply(stored);
                }
                applying += started.elapsed();
                applied += chunk.len() as u64;
                oldest.get_or_insert_with(Instant::now);
                let due = projection.uncommitted >= options.batch_events
                    || oldest.is_some_and(|since| since.elapsed() >= options.max_delay);
                if due {
                    if !hand_over(projection, applied) {
                        break;
                    }
                    oldest = None;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if projection.uncommitted > 0 && !hand_over(projection, applied) {
                    break;
                }
                oldest = None;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if projection.uncommitted > 0 {
                    hand_over(projection, applied);
                }
                break;
            }
        }
    }
    (applied, applying, waiting)
}

/// Commits the batches in the order received; returns the number of commits, the time they took
/// and the last sequence committed.
fn commit_all(
    mut writer: Writer,
    inbox: mpsc::Receiver<(Batch, u64)>,
    stream_last_sequence: u64,
    mut progress: impl FnMut(Progress),
) -> Result<(u64, Duration, Option<u64>)> {
    let (mut commits, mut committing, mut last_committed) = (0u64, Duration::ZERO, None);
    for (batch, applied) in inbox {
        let started = Instant::now();
        let stats = writer.commit_batch(batch)?;
        committing += started.elapsed();
        commits += 1;
        last_committed = Some(stats.last_sequence);
        progress(Progress {
            applied,
            last_sequence: stats.last_sequence,
            stream_last_sequence,
        });
    }
    // Closing the file (its last checkpoint) belongs to the run.
    drop(writer);
    Ok((commits, committing, last_committed))
}

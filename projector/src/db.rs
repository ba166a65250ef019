//! The DuckDB file: opening it for writing (one writer), creating the tables, loading the fold's
//! state back, and committing a batch of rows together with the stream sequence they reach.

use std::path::{Path, PathBuf};

use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{Config, Connection, params};
use schemas::event::Timestamp;

use crate::owner::{Claim, owner_file_path, wait_for_lock};
use crate::project::{Batch, CampaignRow, Projection, TrialRow, TrialScore};
use crate::schema::{self, Kind, PROJECTOR_VERSION, Table};
use crate::{Error, Result};

/// The name of the stream whose sequence `projector_progress` records.
const STREAM: &str = schemas::log::STREAM_NAME;

/// The DuckDB file, open for writing.
pub struct Writer {
    connection: Connection,
    path: PathBuf,
    /// The last sequence committed to the file.
    committed: u64,
    /// This process's claim on the file (`None` when another owner claimed it first and the
    /// open still succeeded): dropped after the connection, so the file is let go first.
    _claim: Option<Claim>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Writer({})", self.path.display())
    }
}

/// What a commit wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub events: usize,
    pub last_sequence: u64,
}

/// Settings every connection to the file gets: no access to anything but the file itself.
/// `lock_configuration` follows once the tables exist (see [`Writer::open`]).
pub fn sandboxed_config() -> Result<Config> {
    Ok(Config::default()
        .enable_external_access(false)?
        .enable_autoload_extension(false)?)
}

/// The writer's settings: sandboxed, and a checkpoint only every 256 MB of write-ahead log
/// (DuckDB's default, 16 MB, checkpoints after nearly every batch of a rebuild).
fn writer_config() -> Result<Config> {
    Ok(sandboxed_config()?.with("checkpoint_threshold", "256MB")?)
}

/// The DuckDB release this build links (the official library `scripts/install-duckdb` installs,
/// or the same release compiled with `--features bundled`).
pub const DUCKDB_VERSION: &str = "v1.5.6";

/// Opens `path`, turning DuckDB's lock error into one that says who holds the file, and its
/// storage-version error into one that names `--rebuild`.
pub fn open_with(path: &Path, config: Config) -> Result<Connection> {
    Connection::open_with_flags(path, config).map_err(|error| {
        let text = error.to_string();
        if text.contains("created with a newer version of DuckDB") {
            Error::NewerDuckdb {
                path: path.to_path_buf(),
            }
        } else if text.contains("Could not set lock") || text.contains("Conflicting lock") {
            let holder = text
                .split("PID ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .filter(|pid| !pid.is_empty())
                .map(|pid| format!("process {pid}"))
                .unwrap_or_else(|| "another process".to_string());
            Error::Locked {
                path: path.to_path_buf(),
                holder,
            }
        } else {
            Error::Open {
                path: path.to_path_buf(),
                message: text,
            }
        }
    })
}

impl Writer {
    /// Opens (or creates) the file, creates the tables and views, and loads the fold's state.
    /// A file made by another projector version is an error naming `--rebuild`.
    pub fn open(path: &Path) -> Result<(Writer, Projection)> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| Error::Open {
                path: path.to_path_buf(),
                message: format!("cannot create {}: {error}", dir.display()),
            })?;
        }
        // Said before opening, so that a standalone viewer holding the file lets go of it.
        let claim = Claim::take(path).map_err(|error| Error::Open {
            path: path.to_path_buf(),
            message: format!("cannot write {}: {error}", owner_file_path(path).display()),
        })?;
        let connection = match claim {
            Some(_) => wait_for_lock(path, || open_with(path, writer_config()?))?,
            // Another owner holds it: its lock error, at once.
            None => open_with(path, writer_config()?)?,
        };
        let mut ddl = String::new();
        for table in schema::TABLES {
            ddl.push_str(&table.create_sql());
            ddl.push('\n');
        }
        ddl.push_str(schema::PROGRESS_SQL);
        for view in schema::VIEWS {
            ddl.push_str(view.sql);
            ddl.push('\n');
        }
        connection.execute_batch(&ddl)?;
        let progress: Option<(u64, i32)> = connection
            .query_row(
                "SELECT last_sequence, projector_version FROM projector_progress WHERE stream = ?",
                params![STREAM],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map(Some)
            .or_else(|error| match error {
                duckdb::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        let last_sequence = match progress {
            Some((_, version)) if version != PROJECTOR_VERSION => {
                return Err(Error::Version {
                    path: path.to_path_buf(),
                    found: version,
                });
            }
            Some((sequence, _)) => sequence,
            None => {
                connection.execute(
                    "INSERT INTO projector_progress VALUES (?, 0, ?, NULL)",
                    params![STREAM, PROJECTOR_VERSION],
                )?;
                0
            }
        };
        connection.execute_batch("SET lock_configuration = true;")?;
        let mut projection = Projection::new(last_sequence);
        load_state(&connection, &mut projection)?;
        let writer = Writer {
            connection,
            path: path.to_path_buf(),
            committed: last_sequence,
            _claim: claim,
        };
        Ok((writer, projection))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another connection to the same database, for readers in this process (the API).
    pub fn reader(&self) -> Result<Connection> {
        Ok(self.connection.try_clone()?)
    }

    /// Writes every pending row, the rows of changed trials and campaigns, and the last sequence, in one transaction. After an error the projection no longer
    /// matches the file: drop it and open the file again.
    pub fn commit(&mut self, projection: &mut Projection) -> Result<CommitStats> {
        self.commit_batch(projection.take_batch())
    }

    /// [`Writer::commit`] of a batch taken from the projection earlier (the projector's stage
    /// writes one batch while its fold fills the next). Batches must come in the order taken.
    pub fn commit_batch(&mut self, batch: Batch) -> Result<CommitStats> {
        let stats = CommitStats {
            events: batch.events,
            last_sequence: batch.last_sequence,
        };
        self.connection.execute_batch("BEGIN TRANSACTION;")?;
        match self.write(batch) {
            Ok(()) => {
                let started = std::time::Instant::now();
                self.connection.execute_batch("COMMIT;")?;
                tracing::debug!(commit_ms = started.elapsed().as_millis(), "committed");
                self.committed = stats.last_sequence;
                Ok(stats)
            }
            Err(error) => {
                let _ = self.connection.execute_batch("ROLLBACK;");
                Err(error)
            }
        }
    }

    fn write(&mut self, batch: Batch) -> Result<()> {
        let started = std::time::Instant::now();
        let scored = batch
            .appended
            .iter()
            .any(|(table, _)| table.name == schema::SCORES.name);
        for (table, rows) in batch.appended {
            self.append(table, rows)?;
        }
        if scored {
            // A trial scored again (a re-score, a new scorer version): its earlier scores are
            // no longer the latest.
            self.connection.execute(
                "UPDATE scores SET latest = false
                 FROM (SELECT trial_id, max(seq) AS newest FROM scores WHERE seq > ? GROUP BY trial_id) AS fresh
                 WHERE scores.trial_id = fresh.trial_id AND scores.seq < fresh.newest AND scores.latest",
                params![self.committed],
            )?;
        }
        let appended = started.elapsed();
        let (keys, rows) = batch.trials;
        self.replace(&schema::TRIALS, "trial_id", &keys, rows)?;
        let (keys, rows) = batch.campaigns;
        self.replace(&schema::CAMPAIGNS, "campaign_id", &keys, rows)?;
        tracing::debug!(
            append_ms = appended.as_millis(),
            replace_ms = (started.elapsed() - appended).as_millis(),
            "commit parts"
        );
        self.connection.execute(
            "UPDATE projector_progress SET last_sequence = ?, updated_at = now()::TIMESTAMP WHERE stream = ?",
            params![batch.last_sequence, STREAM],
        )?;
        Ok(())
    }

    fn append(&self, table: &Table, rows: RecordBatch) -> Result<()> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let mut appender = self.connection.appender(table.name)?;
        appender.append_record_batch(rows)?;
        appender.flush()?;
        Ok(())
    }

    /// Deletes the rows of `keys` and appends the new rows.
    fn replace(&self, table: &Table, key: &str, keys: &[String], rows: RecordBatch) -> Result<()> {
        for chunk in keys.chunks(2048) {
            let list: Vec<String> = chunk.iter().map(|key| sql_string(key)).collect();
            self.connection.execute(
                &format!(
                    "DELETE FROM {} WHERE {key} IN ({})",
                    table.name,
                    list.join(",")
                ),
                [],
            )?;
        }
        self.append(table, rows)
    }
}

/// `text` as a SQL string literal.
fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SELECT list of `table` with times as microseconds since the epoch, for reading rows back.
fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|column| match column.kind {
            Kind::Time => format!("epoch_us({})", column.name),
            _ => column.name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a row's columns in order.
struct Cells<'a, 'stmt> {
    row: &'a duckdb::Row<'stmt>,
    next: usize,
}

impl Cells<'_, '_> {
    fn get<T: duckdb::types::FromSql>(&mut self) -> duckdb::Result<T> {
        let value = self.row.get(self.next);
        self.next += 1;
        value
    }

    fn time(&mut self) -> duckdb::Result<Option<Timestamp>> {
        Ok(self
            .get::<Option<i64>>()?
            .and_then(Timestamp::from_unix_micros))
    }
}

fn load_state(connection: &Connection, projection: &mut Projection) -> Result<()> {
    let sql = format!("SELECT {} FROM trials", select_list(&schema::TRIALS));
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut c = Cells { row, next: 0 };
        let trial = TrialRow {
            trial_id: c.get()?,
            campaign_id: c.get()?,
            trial_index: c.get()?,
            subject: c.get()?,
            chaos_type: c.get()?,
            chaos_index: c.get()?,
            chaos_json: c.get()?,
            variant: c.get()?,
            baseline: c.get()?,
            control: c.get()?,
            repetition: c.get()?,
            seed: c.get()?,
            timeout_seconds: c.get()?,
            state: c.get()?,
            status: c.get()?,
            reason: c.get()?,
            worker: c.get()?,
            attempt: c.get()?,
            requested_at: c.time()?,
            started_at: c.time()?,
            reset_at: c.time()?,
            healthy_at: c.time()?,
            injected_at: c.time()?,
            target: c.get()?,
            ticket_first_seen_at: c.time()?,
            ticket_opened_at: c.time()?,
            session_started_at: c.time()?,
            ticket_resolved_at: c.time()?,
            cleaned_up_at: c.time()?,
            cleanup_error: c.get()?,
            finished_at: c.time()?,
            duration_ms: c.get()?,
            initial_healthy: c.get()?,
            final_healthy: c.get()?,
            initial_state_json: c.get()?,
            final_state_json: c.get()?,
            operator_db: c.get()?,
            n_log_entries: c.get()?,
            n_tool_calls: c.get()?,
            last_event_at: c.time()?,
            first_seq: c.get()?,
            last_seq: c.get()?,
            score: {
                let score = TrialScore {
                    outcome: c.get()?,
                    detected: c.get()?,
                    time_to_detect_ms: c.get()?,
                    time_to_resolve_ms: c.get()?,
                    time_to_heal_ms: c.get()?,
                    n_commands: c.get()?,
                    n_unique_commands: c.get()?,
                    n_destructive: c.get()?,
                    n_thrashing: c.get()?,
                    n_false_alarms: c.get()?,
                    stayed_healthy: c.get()?,
                };
                score.outcome.is_some().then_some(score)
            },
            in_table: true,
        };
        projection.trials.insert(trial.trial_id.clone(), trial);
    }
    let sql = format!("SELECT {} FROM campaigns", select_list(&schema::CAMPAIGNS));
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut c = Cells { row, next: 0 };
        let campaign = CampaignRow {
            campaign_id: c.get()?,
            name: c.get()?,
            file_name: c.get()?,
            published_at: c.time()?,
            seed: c.get()?,
            n_trials: c.get()?,
            n_baseline_trials: c.get()?,
            subjects_json: c.get()?,
            chaos_types_json: c.get()?,
            variants_json: c.get()?,
            campaign_json: c.get()?,
            file_text: c.get()?,
            n_started: c.get::<Option<i32>>()?.unwrap_or(0),
            n_finished: c.get::<Option<i32>>()?.unwrap_or(0),
            finished_at: c.time()?,
            status: c.get()?,
            by_status_json: c.get()?,
        };
        projection
            .campaigns
            .insert(campaign.campaign_id.clone(), campaign);
    }
    Ok(())
}

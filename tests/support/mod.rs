//! Fixtures that several test files of the binary share.

#![allow(dead_code)]

pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use schemas::event::{Event, Producer, TrialStatus};
use scoring::fixtures::TrialFixture;
use scoring::score::{ScoringConfig, score};

/// A trial's events followed by its score (when it finished).
pub fn scored(trial: &TrialFixture) -> Vec<Event> {
    let mut events = trial.events();
    if events.iter().any(|e| e.event_type() == "TrialFinished") {
        events.push(score(&events, &ScoringConfig::default()).to_event(&Producer::here("test")));
    }
    events
}

/// The `CampaignPublished` of the quickstart campaign under `campaign_id`.
pub fn published(campaign_id: &str) -> Event {
    let prepared = ingest::campaign_files::prepare(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("campaigns/quickstart.yaml"),
        None,
        Some(campaign_id),
    )
    .unwrap();
    ingest::publish::campaign_events(&prepared, &Producer::here("test"))
        .next()
        .unwrap()
}

/// The trials of the comparison fixture campaigns, `repetitions` of each: `clear` (careful
/// always repairs, hasty never does, on the same seeds, and baselines), `even` (alpha and beta
/// both repair every other trial).
pub fn comparison_campaign_trials(repetitions: u32) -> Vec<Event> {
    let mut events = Vec::new();
    let mut index = 0;
    let mut trial = |campaign: &str, variant: Option<&str>, repetition: u32, success: bool| {
        index += 1;
        comparison_trial(campaign, index - 1, variant, repetition, success)
    };
    for repetition in 0..repetitions {
        events.extend(trial("clear", Some("careful"), repetition, true));
        events.extend(trial("clear", Some("hasty"), repetition, false));
        events.extend(trial("clear", None, repetition, true));
        events.extend(trial(
            "even",
            Some("alpha"),
            repetition,
            repetition % 2 == 0,
        ));
        events.extend(trial("even", Some("beta"), repetition, repetition % 2 == 1));
    }
    events
}

/// A scored etcd `node_kill` trial of the comparison fixtures: an operator trial of `variant`
/// that repairs (`success`) or times out after a destructive command, or, without a variant, a
/// baseline that heals after a minute.
pub fn comparison_trial(
    campaign: &str,
    index: u32,
    variant: Option<&str>,
    repetition: u32,
    success: bool,
) -> Vec<Event> {
    let mut fixture = TrialFixture::test()
        .in_campaign(campaign)
        .with_trial_index(index)
        .with_repetition(repetition);
    let Some(variant) = variant else {
        return scored(
            &fixture
                .baseline()
                .healthy_after(60_000 + i64::from(repetition) * 1_000),
        );
    };
    let detect = 1_000 + i64::from(repetition) * 100;
    fixture = fixture
        .with_variant(variant)
        .detected_after(detect)
        .command_at(detect + 500, "etcdctl endpoint status --cluster");
    fixture = if success {
        fixture
            .command_at(detect + 1_000, "eval lab node start 2")
            .resolved_after(8_000 + i64::from(repetition) * 250)
    } else {
        fixture
            .command_at(detect + 1_000, "etcdctl member remove 1")
            .finished(TrialStatus::TimedOut, 300_000)
    };
    scored(&fixture)
}

/// The patience of most waits: long enough for a loaded CI machine, short enough that a broken
/// build fails instead of hanging.
pub const MINUTE: Duration = Duration::from_secs(60);

/// The `eval` binary with `args`, against the NATS server at `nats`, from the repository root.
pub fn eval(nats: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(args)
        .env("EVAL_NATS_URL", nats)
        .env("RUST_LOG", "off")
        .current_dir(repo_root())
        .output()
        .expect("eval runs")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A port nothing listens on, outside the range outgoing connections take theirs from (a server
/// started on it later does not race every other test's connections for it).
pub fn free_port() -> u16 {
    schemas::log::ports::unused_port().unwrap()
}

pub fn process_exists(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
}

/// Polls `ready` every 50 ms; panics after `patience`.
pub fn wait_until(patience: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < patience, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `evalctl up` started by a test, stopped (SIGTERM) when dropped.
pub struct Up {
    child: Child,
    stderr: PathBuf,
}

impl Up {
    pub fn start(url: &str, data_dir: &Path) -> Up {
        Up::start_with(url, data_dir, &[])
    }

    /// `evalctl up` with more arguments, such as `--port 0`.
    pub fn start_with(url: &str, data_dir: &Path, args: &[&str]) -> Up {
        Up::start_logging(url, data_dir, args, "off")
    }

    /// [`Up::start_with`], logging at `level` (`RUST_LOG`) into what [`Up::stderr`] reads.
    pub fn start_logging(url: &str, data_dir: &Path, args: &[&str], level: &str) -> Up {
        let stderr = data_dir.with_extension("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_evalctl"))
            .args(["up", "--nats", url, "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut up = Up { child, stderr };
        // Up to a minute; an `evalctl up` that exits or never gets ready is reported with what
        // it printed.
        let started = Instant::now();
        while !up.stderr().contains("ready at") {
            if let Ok(Some(status)) = up.child.try_wait() {
                panic!(
                    "eval up exited ({status}) before it was ready:\n{}",
                    up.stderr()
                );
            }
            assert!(
                started.elapsed() < MINUTE,
                "gave up waiting for eval up to be ready; it printed:\n{}",
                up.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        up
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Where its viewer and read API listen, as it printed.
    pub fn viewer_url(&self) -> String {
        let stderr = self.stderr();
        stderr
            .split("viewer and read API at ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no viewer address in: {stderr}"))
            .to_string()
    }

    /// SIGKILL, as a crash would; returns once it is gone.
    pub fn kill(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Up {
    /// A failing test still stops its `evalctl up` (which removes its labs).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// A DuckDB file projected from `events` through a real nats-server (its own, stopped at the
/// end), at `<target tmp>/<name>/eval.duckdb`, made afresh.
pub fn projected_database(name: &str, events: Vec<Event>) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eval.duckdb");
    let build = path.clone();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let nats = testkit::TemporaryNats::start().await.unwrap();
            let log = schemas::log::EventLog::connect(nats.url()).await.unwrap();
            log.ensure_stream().await.unwrap();
            log.publish_all(events, 256, |_| {}).await.unwrap();
            let (writer, projection) = projector::Writer::open(&build).unwrap();
            projector::stage::catch_up(&log, writer, projection)
                .await
                .unwrap();
        });
    })
    .join()
    .unwrap();
    path
}

/// A number below `bound` from the clock, for kill points that differ from run to run (tests
/// print the points they used, so that a failure can be read against them).
pub fn random_below(bound: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos.wrapping_mul(6364136223846793005).rotate_left(17) % bound.max(1)
}

/// Every projected table's rows, sorted, as text.
pub fn dump_tables(path: &Path) -> String {
    let connection = duckdb::Connection::open(path).unwrap();
    let mut out = String::new();
    for table in projector::schema::TABLES {
        let mut statement = connection
            .prepare(&format!(
                "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {} ORDER BY ALL",
                table.name
            ))
            .unwrap();
        let mut rows = statement.query([]).unwrap();
        out.push_str(&format!("== {}\n", table.name));
        while let Some(row) = rows.next().unwrap() {
            let n = row.as_ref().column_count();
            let cells: Vec<String> = (0..n)
                .map(|i| row.get::<_, Option<String>>(i).unwrap().unwrap_or_default())
                .collect();
            out.push_str(&cells.join(" | "));
            out.push('\n');
        }
    }
    out
}

/// A process a test started, stopped with SIGTERM when dropped (a failing test leaves no worker
/// running its labs), with when it started.
pub struct Spawned {
    pub child: Child,
    pub started: Instant,
}

impl Spawned {
    pub fn new(child: Child) -> Spawned {
        Spawned {
            child,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// SIGKILL, as a crash would; returns once it is gone.
    pub fn crash(&mut self) {
        kill(self.pid(), Signal::SIGKILL).unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM once it has had `settle` to install its handler, then its exit status.
    pub fn stop_after(mut self, settle: Duration) -> std::process::ExitStatus {
        if let Some(rest) = settle.checked_sub(self.started.elapsed()) {
            std::thread::sleep(rest);
        }
        kill(self.pid(), Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(self.pid(), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// The `evalctl` binary with `args` against the NATS server at `nats` and the data dir `data`,
/// from the repository root, logging warnings only.
pub fn evalctl(nats: &str, data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_evalctl"));
    command
        .args(args)
        .arg("--nats")
        .arg(nats)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .current_dir(repo_root());
    command
}

/// Writes `yaml` as `dir/campaign.yaml`, publishes it with `evalctl publish` (with the variant
/// files of `variants_dir`, relative to the repository, when given), and returns the campaign id.
pub fn publish_campaign(
    nats: &str,
    data: &Path,
    dir: &Path,
    yaml: &str,
    variants_dir: Option<&str>,
) -> String {
    let file = dir.join("campaign.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut args = vec!["publish", file.to_str().unwrap(), "--json"];
    if let Some(variants) = variants_dir {
        args.extend(["--variants-dir", variants]);
    }
    let published = evalctl(nats, data, &args).output().unwrap();
    assert!(published.status.success(), "{}", text(&published.stderr));
    let report: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    report["campaign_id"].as_str().unwrap().to_string()
}

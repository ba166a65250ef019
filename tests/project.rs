//! `evalctl project`, `evalctl sql` and the read commands as a user runs them, against a real
//! nats-server and real DuckDB files: kill -9 at random moments then a restart gives the same
//! tables as an uninterrupted run; `evalctl sql` refuses writes, files and settings, locally and
//! through the API of a running projector; the comparison commands on fixture campaigns whose
//! answer is known.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{published, scored};

use expect_test::expect;
use schemas::event::Producer;
use schemas::log::EventLog;
use scoring::fixtures::{TrialFixture, synthetic_trial};
use scoring::score::{ScoringConfig, score};
use testkit::TemporaryNats;

fn eval(nats: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(args)
        .env("EVAL_NATS_URL", nats)
        .env("RUST_LOG", "off")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("eval runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn project_into(log: &EventLog, path: &Path) {
    let (writer, projection) = projector::Writer::open(path).unwrap();
    projector::stage::catch_up(log, writer, projection)
        .await
        .unwrap();
}

/// Every table's content in a stable order.
fn dump(path: &Path) -> String {
    let connection = duckdb::Connection::open(path).unwrap();
    let mut out = String::new();
    for table in projector::schema::TABLES {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                if c.name == "modified_at" {
                    "modified_at IS NOT NULL".to_string()
                } else {
                    format!("\"{}\"::VARCHAR", c.name)
                }
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY ALL",
            columns.join(", "),
            table.name
        );
        let mut statement = connection.prepare(&sql).unwrap();
        let mut rows = statement.query([]).unwrap();
        out.push_str(&format!("== {}\n", table.name));
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..table.columns.len())
                .map(|i| format!("{:?}", row.get::<_, duckdb::types::Value>(i).unwrap()))
                .collect();
            out.push_str(&cells.join("|"));
            out.push('\n');
        }
    }
    out
}

/// A small deterministic generator for the kill moments.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test]
async fn kill_9_at_random_moments_then_restart_gives_the_same_tables() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let producer = Producer::here("test");
    let mut events = vec![published("killtest")];
    // Enough work that most runs are killed before they catch up.
    for index in 0..1_000 {
        let trial = synthetic_trial("killtest", index);
        let mut trial_events = trial.events();
        trial_events.push(score(&trial_events, &ScoringConfig::default()).to_event(&producer));
        events.extend(trial_events);
    }
    let n_events = events.len();
    log.publish_all(events, 256, |_| {}).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.duckdb");
    project_into(&log, &reference).await;

    let killed = dir.path().join("killed.duckdb");
    let killed_arg = killed.display().to_string();
    let mut rng = Lcg(2026);
    let mut kills = 0;
    let mut finished_early = 0;
    for _ in 0..24 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_evalctl"))
            .args([
                "project",
                "--until-caught-up",
                "--batch-events",
                "97",
                "--db",
                &killed_arg,
            ])
            .env("EVAL_NATS_URL", nats.url())
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        match child.try_wait().unwrap() {
            Some(_) => finished_early += 1,
            None => {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
        }
        child.wait().unwrap();
    }
    assert!(
        kills >= 20,
        "only {kills} runs were killed ({finished_early} finished first)"
    );
    let output = eval(
        nats.url(),
        &[
            "project",
            "--until-caught-up",
            "--json",
            "--db",
            &killed_arg,
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        summary["last_sequence"],
        n_events as u64,
        "{summary} {}",
        text(&output.stderr)
    );

    let (a, b) = (dump(&reference), dump(&killed));
    assert!(a.len() > 100_000, "the reference holds the campaign");
    assert!(
        a == b,
        "the tables after {kills} kills differ from an uninterrupted run"
    );
}

/// Attacks on the SQL surface; each must fail and change nothing.
const ATTACKS: &[&str] = &[
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '/etc/passwd'",
    "ATTACH '/tmp/eval-attack.duckdb' AS other",
    "COPY trials TO '/tmp/eval-attack.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "PRAGMA enable_profiling",
    "DELETE FROM trials",
    "DROP TABLE trials",
    "INSERT INTO trials (trial_id) VALUES ('x')",
    "UPDATE trials SET status = 'succeeded'",
    "CREATE TABLE stolen AS SELECT 1",
    "SELECT 1; DROP TABLE trials",
    "SELECT 1) AS q; DELETE FROM trials; SELECT * FROM (SELECT 1",
    "CALL pragma_version()",
    "EXPORT DATABASE '/tmp/eval-attack'",
];

fn assert_refused(nats: &str, db: &str, mode: &str) {
    for attack in ATTACKS {
        let output = eval(nats, &["sql", attack, "--db", db]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{mode}: {attack:?} was not refused: {}",
            text(&output.stdout)
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.starts_with("error: "),
            "{mode}: {attack:?}: {stderr}"
        );
        assert!(
            !stderr.contains("root:"),
            "{mode}: {attack:?} leaked a file: {stderr}"
        );
    }
    let output = eval(
        nats,
        &[
            "sql",
            "SELECT count(*) AS n FROM trials",
            "--csv",
            "--db",
            db,
        ],
    );
    assert_eq!(
        text(&output.stdout),
        "n\n3\n",
        "{mode}: {}",
        text(&output.stderr)
    );
    for path in [
        "/tmp/eval-attack.duckdb",
        "/tmp/eval-attack.csv",
        "/tmp/eval-attack",
    ] {
        assert!(!Path::new(path).exists(), "{mode}: {path} was written");
    }
}

#[tokio::test]
async fn eval_sql_refuses_writes_files_and_settings_locally_and_through_the_api() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let mut events = vec![published("sqltest")];
    for index in 0..3 {
        events.extend(scored(
            &TrialFixture::test()
                .in_campaign("sqltest")
                .with_trial_index(index),
        ));
    }
    log.publish_all(events, 64, |_| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let db_arg = db.display().to_string();
    project_into(&log, &db).await;

    // Nothing owns the file: the read-only file.
    assert_refused(nats.url(), &db_arg, "read-only file");

    // A running projector owns it: the API (a read-only open would meet DuckDB's lock).
    let mut projector = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["project", "--db", &db_arg])
        .env("EVAL_NATS_URL", nats.url())
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api_file = dir.path().join("eval.duckdb.api");
    let started = Instant::now();
    while !api_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the API never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_refused(nats.url(), &db_arg, "API");
    // Values bound through the API stay values: an attack as a parameter is text, not SQL.
    let reader = viewer::reader::Reader::open(&db).unwrap();
    assert!(matches!(reader, viewer::reader::Reader::Remote { .. }));
    let limits = viewer::query::Limits::default();
    let count = |campaign: &str| {
        reader
            .query(
                "SELECT count(*) AS n FROM trials WHERE campaign_id = (SELECT p1 FROM params)",
                &[viewer::query::Param::from(campaign)],
                limits,
            )
            .unwrap()
            .rows[0][0]
            .clone()
    };
    assert_eq!(count("sqltest"), 3);
    assert_eq!(count("sqltest' OR '1'='1"), 0);
    for attack in ATTACKS {
        let echoed = reader
            .query(
                "SELECT (SELECT p1 FROM params) AS value, (SELECT p2 FROM params) AS n",
                &[
                    viewer::query::Param::from(*attack),
                    viewer::query::Param::Int(7),
                ],
                limits,
            )
            .unwrap();
        assert_eq!(
            echoed.rows,
            vec![vec![serde_json::json!(attack), serde_json::json!(7)]]
        );
    }
    let url = std::fs::read_to_string(&api_file).unwrap();
    let url: serde_json::Value = serde_json::from_str(&url).unwrap();
    let answer = viewer::http::request(
        "POST",
        &format!("{}/api/sql", url["url"].as_str().unwrap()),
        Some(br#"{"sql": "SELECT (SELECT p1 FROM params)", "params": [["a list"]]}"#),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    let output = eval(nats.url(), &["list", "--json", "--db", &db_arg]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(list["campaigns"][0]["campaign_id"], "sqltest");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(projector.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    projector.wait().unwrap();
    assert!(!api_file.exists(), "the API file is removed at exit");

    // A row limit by default, and what a user sees when there is no database yet.
    let output = eval(
        nats.url(),
        &["sql", "SELECT * FROM range(5000)", "--db", &db_arg],
    );
    assert!(output.status.success());
    assert_eq!(text(&output.stdout).lines().count(), 1002);
    assert!(text(&output.stderr).contains("more were left off"));
    let output = eval(nats.url(), &["list", "--db", "/nonexistent/eval.duckdb"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("evalctl project"),
        "{}",
        text(&output.stderr)
    );
}

/// Two fixture campaigns: `clear` (careful always repairs, hasty never does, on the same
/// seeds), `even` (alpha and beta both repair every other trial).
async fn comparison_fixtures(log: &EventLog) {
    let mut events = vec![published("clear"), published("even")];
    events.extend(support::comparison_campaign_trials(12));
    log.publish_all(events, 256, |_| {}).await.unwrap();
}

#[tokio::test]
async fn comparisons_name_a_winner_only_when_the_data_can_tell() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    comparison_fixtures(&log).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let db_arg = db.display().to_string();
    project_into(&log, &db).await;
    let run = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--db", &db_arg]);
        let output = eval(nats.url(), &args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };

    expect![[r#"
        etcd × node_kill: 2 variants, 24 scored trials
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          careful                  12       100% [76–100%]     1.6s [1.2–1.9s] (12)    9.4s [8.6–10.1s] (12)      1.6s / 9.4s    2.0         0/12         0/12
          hasty                    12           0% [0–24%]     1.6s [1.2–1.9s] (12)                    – (0)         1.6s / –    2.0        12/12         0/12

        against careful (the best success rate):
        careful vs hasty
          verdict (paired tests: the trials ran on the same seeds, α = 0.05):
            success rate: careful is better (p = 0.0005, McNemar's exact test, 12 pairs)
            time to detect: the data cannot tell (p = 1.0000, Wilcoxon signed-rank test, 12 pairs); no difference was observed
            time to recover: the data cannot tell (0 pairs; too few values for Wilcoxon signed-rank test)
    "#]]
    .assert_eq(&run(&["compare-variants", "etcd", "node_kill", "--variants", "careful,hasty"]));
    expect![[r#"
        etcd × node_kill: 2 variants, 24 scored trials
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          alpha                    12         50% [25–75%]     1.6s [1.2–1.9s] (12)     9.2s [8.2–10.2s] (6)      1.6s / 9.2s    2.0         6/12         0/12
          beta                     12         50% [25–75%]     1.6s [1.2–1.9s] (12)     9.5s [8.5–10.5s] (6)      1.6s / 9.5s    2.0         6/12         0/12

        against alpha (the best success rate):
        alpha vs beta
          verdict (paired tests: the trials ran on the same seeds, α = 0.05):
            success rate: the data cannot tell (p = 1.0000, McNemar's exact test, 12 pairs); no difference was observed
            time to detect: the data cannot tell (p = 1.0000, Wilcoxon signed-rank test, 12 pairs); no difference was observed
            time to recover: the data cannot tell (0 pairs; too few values for Wilcoxon signed-rank test)
    "#]]
    .assert_eq(&run(&["compare-variants", "etcd", "node_kill", "--variants", "alpha,beta"]));
    expect![[r#"
        campaign clear: the operator against doing nothing

        etcd × node_kill (baseline trials from this campaign)
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          operator                 24         50% [31–69%]     1.6s [1.3–1.8s] (24)    9.4s [8.6–10.1s] (12)      1.6s / 9.4s    2.0        12/24         0/24
          baseline                 12       100% [76–100%]                    – (0)  65.5s [62.5–68.5s] (12)        – / 65.5s    0.0         0/12         0/12
          verdict (independent samples, α = 0.05):
            success rate: baseline is better (p = 0.0025, Fisher's exact test, 24 vs 12)
            time to detect: the data cannot tell (24 vs 0; too few values for Mann-Whitney U test)
            time to recover: operator is better (p = 3.7e-5, Mann-Whitney U test, 12 vs 12)
    "#]].assert_eq(&run(&["compare-baseline", "clear"]));
    expect![[r#"
        campaign clear (quickstart): finished, 36/12 trials finished, 36 scored

        etcd × node_kill
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          (baseline)               12       100% [76–100%]                    – (0)  65.5s [62.5–68.5s] (12)        – / 65.5s    0.0         0/12         0/12
          careful                  12       100% [76–100%]     1.6s [1.2–1.9s] (12)    9.4s [8.6–10.1s] (12)      1.6s / 9.4s    2.0         0/12         0/12
          hasty                    12           0% [0–24%]     1.6s [1.2–1.9s] (12)                    – (0)         1.6s / –    2.0        12/12         0/12

        commands (most run first; categories by the built-in rules)
            CALLS  TRIALS  CATEGORY     RULE                     COMMAND
               24      24  diagnostic   etcdctl-read             etcdctl endpoint status --cluster
               12      12  destructive  etcdctl-member-remove    etcdctl member remove 1
               12      12  remediation  eval-lab-node-start      eval lab node start 2
    "#]].assert_eq(&run(&["analyze", "clear", "--include-commands"]));
    expect![[r#"
        VARIANT              SUBJECT  CHAOS               TRIALS  CAMPAIGNS      SUCCESS (n)
        alpha                etcd     node_kill               12          1       50% (n=12)
        beta                 etcd     node_kill               12          1       50% (n=12)
        careful              etcd     node_kill               12          1      100% (n=12)
        hasty                etcd     node_kill               12          1        0% (n=12)
    "#]]
    .assert_eq(&run(&["list-variants"]));
    expect![[r#"
        operator trials of campaign A (clear) vs campaign B (even)
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          A clear                  24         50% [31–69%]     1.6s [1.3–1.8s] (24)    9.4s [8.6–10.1s] (12)      1.6s / 9.4s    2.0        12/24         0/24
          B even                   24         50% [31–69%]     1.6s [1.3–1.8s] (24)    9.4s [8.6–10.1s] (12)      1.6s / 9.4s    2.0        12/24         0/24
          verdict (independent samples, α = 0.05):
            success rate: the data cannot tell (p = 1.0000, Fisher's exact test, 24 vs 24); no difference was observed
            time to detect: the data cannot tell (p = 1.0000, Mann-Whitney U test, 24 vs 24); no difference was observed
            time to recover: the data cannot tell (p = 1.0000, Mann-Whitney U test, 12 vs 12); no difference was observed
    "#]].assert_eq(&run(&["compare", "clear", "even"]));

    let json: serde_json::Value = serde_json::from_str(&run(&[
        "compare-variants",
        "etcd",
        "node_kill",
        "--variants",
        "careful,hasty",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["best"], "careful");
    assert_eq!(json["comparisons"][0]["verdicts"][0]["winner"], "careful");
    let json: serde_json::Value = serde_json::from_str(&run(&[
        "compare-variants",
        "etcd",
        "node_kill",
        "--variants",
        "alpha,beta",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        json["comparisons"][0]["verdicts"][0]["winner"],
        serde_json::Value::Null
    );

    // The timeline of one trial, and an unknown id.
    let trial = schemas::ids::trial_id("clear", 0);
    let timeline = run(&["show", "--trial", &trial[..8]]);
    assert!(
        timeline.contains("tool call    shell: etcdctl endpoint status --cluster  [diagnostic"),
        "{timeline}"
    );
    assert!(timeline.contains("v3: success"), "{timeline}");
    let output = eval(nats.url(), &["show", "nosuch", "--db", &db_arg]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("no campaign matches"),
        "{}",
        text(&output.stderr)
    );
}

/// A campaign `quiet` with control trials beside a fault: careful stays quiet, hasty raises a
/// false alarm and runs a destructive command every other repetition. Control trials are their
/// own rows, graded for false alarms, and never compared with a fault's baseline or trials.
#[tokio::test]
async fn control_trials_are_their_own_rows_and_never_compared_with_faults() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    let mut events = vec![published("quiet")];
    let mut index = 0;
    let mut next = || {
        index += 1;
        TrialFixture::control()
            .in_campaign("quiet")
            .with_trial_index(index - 1)
    };
    for repetition in 0..4 {
        events.extend(scored(&next().with_repetition(repetition)));
        let mut hasty = next().with_variant("hasty").with_repetition(repetition);
        if repetition % 2 == 0 {
            hasty = hasty
                .detected_after(3_000)
                .command_at(4_000, "etcdctl member remove 1");
        }
        events.extend(scored(&hasty));
    }
    events.extend(support::comparison_trial(
        "quiet",
        index,
        Some("careful"),
        0,
        true,
    ));
    events.extend(support::comparison_trial("quiet", index + 1, None, 0, true));
    log.publish_all(events, 256, |_| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let db_arg = db.display().to_string();
    project_into(&log, &db).await;
    let run = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--db", &db_arg]);
        let output = eval(nats.url(), &args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    expect![[r#"
        campaign quiet (quickstart): running, 10/12 trials finished, 10 scored

        etcd × node_kill
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          (baseline)                1       100% [21–100%]                    – (0)   60.0s [60.0–60.0s] (1)        – / 60.0s    0.0          0/1          0/1
          careful                   1       100% [21–100%]      1.0s [1.0–1.0s] (1)      8.0s [8.0–8.0s] (1)      1.0s / 8.0s    2.0          0/1          0/1

        etcd × none (control: nothing broken)
                                    n     success [95% CI]    false alarm  tickets   cmds  destructive  stayed healthy
          careful                   4       100% [51–100%]            0/4        0    0.0          0/4             4/4
          hasty                     4         50% [15–85%]            2/4        2    0.5          2/4             4/4
    "#]].assert_eq(&run(&["analyze", "quiet"]));
    expect![[r#"
        campaign quiet: the operator against doing nothing

        etcd × node_kill (baseline trials from this campaign)
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          operator                  1       100% [21–100%]      1.0s [1.0–1.0s] (1)      8.0s [8.0–8.0s] (1)      1.0s / 8.0s    2.0          0/1          0/1
          baseline                  1       100% [21–100%]                    – (0)   60.0s [60.0–60.0s] (1)        – / 60.0s    0.0          0/1          0/1
          verdict (paired tests: the trials ran on the same seeds, α = 0.05):
            success rate: the data cannot tell (p = 1.0000, McNemar's exact test, 1 pairs); no difference was observed
            time to detect: the data cannot tell (0 pairs; too few values for Wilcoxon signed-rank test)
            time to recover: the data cannot tell (p = 1.0000, Wilcoxon signed-rank test, 1 pairs); about 6 pairs per side would be needed to tell a difference this large
    "#]].assert_eq(&run(&["compare-baseline", "quiet"]));
    expect![[r#"
        etcd × none: 2 variants, 8 scored trials
                                    n     success [95% CI]    false alarm  tickets   cmds  destructive  stayed healthy
          careful                   4       100% [51–100%]            0/4        0    0.0          0/4             4/4
          hasty                     4         50% [15–85%]            2/4        2    0.5          2/4             4/4

        against careful (the best success rate):
        careful vs hasty
          verdict (paired tests: the trials ran on the same seeds, α = 0.05):
            success rate: the data cannot tell (p = 0.5000, McNemar's exact test, 4 pairs); about 15 pairs per side would be needed to tell a difference this large
    "#]].assert_eq(&run(&["compare-variants", "etcd", "none"]));
    expect![[r#"
        operator trials of campaign A (quiet) vs campaign B (quiet)
                                    n     success [95% CI]  median TTD [95% CI] (n)  median TTR [95% CI] (n)   mean TTD / TTR   cmds  destructive    thrashing
          A quiet                   1       100% [21–100%]      1.0s [1.0–1.0s] (1)      8.0s [8.0–8.0s] (1)      1.0s / 8.0s    2.0          0/1          0/1
          B quiet                   1       100% [21–100%]      1.0s [1.0–1.0s] (1)      8.0s [8.0–8.0s] (1)      1.0s / 8.0s    2.0          0/1          0/1
          verdict (paired tests: the trials ran on the same seeds, α = 0.05):
            success rate: the data cannot tell (p = 1.0000, McNemar's exact test, 1 pairs); no difference was observed
            time to detect: the data cannot tell (p = 1.0000, Wilcoxon signed-rank test, 1 pairs); no difference was observed
            time to recover: the data cannot tell (p = 1.0000, Wilcoxon signed-rank test, 1 pairs); no difference was observed
    "#]].assert_eq(&run(&["compare", "quiet", "quiet"]));
    expect![[r#"
        variant  chaos_type  control  score_outcome  score_n_false_alarms  score_stayed_healthy  n
        -------  ----------  -------  -------------  --------------------  --------------------  -
        careful  node_kill   false    success                                                    1
        careful  none        true     success        0                     true                  4
        hasty    none        true     failure        1                     true                  2
        hasty    none        true     success        0                     true                  2
                 node_kill   false    success                                                    1
    "#]].assert_eq(&run(&[
        "sql",
        "SELECT variant, chaos_type, control, score_outcome, score_n_false_alarms, score_stayed_healthy, count(*) AS n FROM trials GROUP BY ALL ORDER BY ALL",
    ]));
    let json: serde_json::Value =
        serde_json::from_str(&run(&["analyze", "quiet", "--json"])).unwrap();
    let control: Vec<&serde_json::Value> = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|group| group["chaos_type"] == "none")
        .collect();
    assert_eq!(control.len(), 2, "careful and hasty: {json}");
    assert!(control.iter().all(|group| group["control"] == true));
}

/// The standalone viewer keeps the file open read-only between requests (an open costs tens of
/// milliseconds and starts DuckDB's buffer pool cold), yet an owner started meanwhile still gets
/// the file: it claims it first, the viewer lets go, and the viewer then reads through the
/// owner's API; once the owner has gone, the viewer holds the file again.
#[tokio::test]
async fn a_standalone_viewer_holds_the_file_until_an_owner_claims_it() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    log.publish_all(vec![published("held")], 64, |_| {})
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let db_arg = db.display().to_string();
    project_into(&log, &db).await;

    let source = viewer::web::Source::file(db.clone());
    let app = viewer::web::app(source.clone(), viewer::web::Access::local());
    let campaigns = || async {
        let request = Request::get("/api/campaigns")
            .header("host", "127.0.0.1:8000")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let list: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        list["campaigns"][0]["campaign_id"].clone()
    };
    assert_eq!(campaigns().await, "held");
    assert!(source.holds_file(), "the viewer let go after its request");

    // An owner in another process: DuckDB's lock would refuse it while the viewer holds the file.
    let mut owner = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["project", "--db", &db_arg])
        .env("EVAL_NATS_URL", nats.url())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api_file = viewer::reader::api_file_path(&db);
    let started = Instant::now();
    while !api_file.exists() {
        if let Some(status) = owner.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut owner.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the owner exited ({status}) instead of taking the file: {stderr}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the owner never announced its API"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!source.holds_file(), "the viewer still holds an owned file");
    assert!(projector::owner::owner_file_path(&db).exists());
    // Through the owner's API now, and without holding the file.
    assert_eq!(campaigns().await, "held");
    assert!(!source.holds_file());

    owner.kill().unwrap();
    owner.wait().unwrap();
    assert_eq!(campaigns().await, "held");
    assert!(
        source.holds_file(),
        "the owner is gone: the viewer holds the file again"
    );
}

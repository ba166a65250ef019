//! The `eval` binary as a user runs it, against real nats-servers: `validate`, `publish`,
//! `events`, `up`, and the one-line answer when no server is there.

use std::process::{Command, Stdio};

mod support;

use expect_test::expect;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use schemas::log::EventLog;
use support::{MINUTE, Up, eval, free_port, process_exists, repo_root, text, wait_until};
use testkit::TemporaryNats;

#[test]
fn no_server_gives_one_line_naming_the_url() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    for args in [
        &["events"][..],
        &["publish", "campaigns/quickstart.yaml"][..],
    ] {
        let output = eval(&url, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&url), "{stderr}");
        assert!(stderr.contains("evalctl up"), "{stderr}");
    }
}

#[test]
fn validate_reports_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("variants")).unwrap();
    std::fs::write(dir.path().join("variants/hasty.yaml"), "name: hasty\n").unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "name: broken\nsubjects: [etcd]\nchaos_types:\n  - type: node_kil\nparallel: 11\nvariant: hsty\n",
    )
    .unwrap();
    let output = eval(
        "nats://127.0.0.1:1",
        &[
            "validate",
            "campaigns/quickstart.yaml",
            broken.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stdout),
        "campaigns/quickstart.yaml: ok (12 trials, 4 of them baseline)\n"
    );
    let stderr = text(&output.stderr).replace(&dir.path().display().to_string(), "DIR");
    expect![[r#"
        DIR/broken.yaml:4:11: chaos_types[0].type: unknown chaos type "node_kil" (did you mean "node_kill"?)
        DIR/broken.yaml:5:11: parallel: must be between 1 and 10, got 11
    "#]]
    .assert_eq(&stderr);

    let output = eval(
        "nats://127.0.0.1:1",
        &[
            "validate",
            "--json",
            "campaigns/quickstart.yaml",
            broken.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let reports: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(reports[0]["valid"], true);
    assert_eq!(reports[0]["trials"], 12);
    assert_eq!(reports[1]["valid"], false);
    assert_eq!(reports[1]["errors"][1]["path"], "parallel");
    assert_eq!(reports[1]["errors"][1]["line"], 5);

    // Once the file parses, variant names are resolved against the variant files.
    std::fs::write(
        &broken,
        "name: broken\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\nvariant: hsty\n",
    )
    .unwrap();
    let output = eval(
        "nats://127.0.0.1:1",
        &["validate", broken.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr).replace(&dir.path().display().to_string(), "DIR");
    expect![[r#"
        DIR/broken.yaml:5:10: variant: unknown variant "hsty" (did you mean "hasty"?)
    "#]]
    .assert_eq(&stderr);
}

#[test]
fn publish_dry_run_prints_the_matrix() {
    let output = eval(
        "nats://127.0.0.1:1",
        &[
            "publish",
            "campaigns/quickstart.yaml",
            "--dry-run",
            "--campaign-id",
            "quick",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    expect![[r#"
        campaign "quickstart" from campaigns/quickstart.yaml: 12 trials (4 baseline), seed 42
          subject  chaos          variant   trials
          etcd     node_kill      careful        2
          etcd     node_kill      hasty          2
          etcd     process_pause  careful        2
          etcd     process_pause  hasty          2
          etcd     node_kill      baseline       2
          etcd     process_pause  baseline       2
        dry run: nothing published
    "#]]
    .assert_eq(&text(&output.stdout));
}

/// `evalctl up` in the background, its stderr in a file.
#[test]
fn up_starts_its_own_server_and_stops_only_that_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let up = Up::start(&url, &dir.path().join("data"));
    let stderr = up.stderr();
    assert!(stderr.contains("starting nats-server -js"), "{stderr}");
    // Its server lets in the commands of its data dir (they hold its credential).
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().unwrap();
    let server_pid: i32 = stderr
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {stderr}"));
    assert!(process_exists(server_pid));
    assert!(dir.path().join("data/nats/jetstream").is_dir());

    // A whole publish → read round trip through the binary.
    let output = eval(
        &url,
        &[
            "--data-dir",
            data,
            "publish",
            "campaigns/quickstart.yaml",
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stored"], 13);
    let campaign_id = report["campaign_id"].as_str().unwrap().to_string();

    let output = eval(
        &url,
        &[
            "--data-dir",
            data,
            "events",
            "--campaign",
            &campaign_id[..8],
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines: Vec<String> = text(&output.stdout).lines().map(str::to_string).collect();
    // evalctl up's worker may already be running the first trial: its events follow.
    assert!(lines.len() >= 13, "{lines:?}");
    assert!(lines[0].contains("CampaignPublished"), "{}", lines[0]);
    assert!(
        lines[1].contains("TrialRequested") && lines[1].contains("#0 etcd node_kill careful rep 0"),
        "{}",
        lines[1]
    );

    let output = eval(
        &url,
        &[
            "--data-dir",
            data,
            "events",
            "--json",
            "--type",
            "TrialRequested",
        ],
    );
    let events: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 12);
    let trial_id = events[5]["trial_id"].as_str().unwrap().to_string();
    assert_eq!(events[5]["data"]["trial"]["trial_index"], 5);

    let output = eval(
        &url,
        &[
            "--data-dir",
            data,
            "events",
            "--trial",
            &trial_id[..6],
            "--type",
            "TrialRequested",
            "--json",
        ],
    );
    assert_eq!(
        text(&output.stdout).lines().count(),
        1,
        "{}",
        text(&output.stderr)
    );

    let output = eval(
        &url,
        &["--data-dir", data, "events", "--type", "TrialRequsted"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains(r#"unknown event type "TrialRequsted" (did you mean "TrialRequested"?)"#),
        "{}",
        text(&output.stderr)
    );
    let output = eval(&url, &["--data-dir", data, "events", "--campaign", "zzzz"]);
    assert!(text(&output.stderr).contains(r#"no campaign id starts with "zzzz""#));

    let status = up.stop();
    assert!(status.success(), "eval up exited with {status}");
    wait_until(MINUTE, "the server eval up started to exit", || {
        !process_exists(server_pid)
    });
}

#[test]
fn up_uses_a_running_server_and_leaves_it_running() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = runtime.block_on(TemporaryNats::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(nats.url(), &dir.path().join("data"));
    assert!(
        up.stderr().contains("using the NATS server at"),
        "{}",
        up.stderr()
    );
    wait_until(MINUTE, "eval up to name its stages", || {
        up.stderr()
            .contains("stages running: worker, capture, score")
    });
    assert!(up.stop().success());
    assert!(!dir.path().join("data/nats").exists());
    runtime.block_on(async {
        let log = EventLog::connect(nats.url())
            .await
            .expect("the server still answers");
        log.stream().await.expect("eval up created the stream");
    });
}

#[test]
fn events_follow_shows_new_events_until_interrupted() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = runtime.block_on(TemporaryNats::start()).unwrap();
    let output = eval(
        nats.url(),
        &[
            "publish",
            "campaigns/quickstart.yaml",
            "--campaign-id",
            "first",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));

    let dir = tempfile::tempdir().unwrap();
    let stdout_path = dir.path().join("follow.out");
    let mut follow = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args([
            "events",
            "--follow",
            "--type",
            "CampaignPublished",
            "--nats",
            nats.url(),
        ])
        .env("RUST_LOG", "off")
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = || {
        std::fs::read_to_string(&stdout_path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_until(MINUTE, "the stored event", || lines() == 1);

    let output = eval(
        nats.url(),
        &[
            "publish",
            "campaigns/quickstart.yaml",
            "--campaign-id",
            "second",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    wait_until(MINUTE, "the new event", || lines() == 2);
    let shown = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(shown.lines().nth(1).unwrap().contains("second"), "{shown}");

    kill(Pid::from_raw(follow.id() as i32), Signal::SIGINT).unwrap();
    assert!(follow.wait().unwrap().success());
}

#[test]
fn capture_catches_up_a_finished_trial_and_prints_it() {
    use agents::db::{LogEntry, OperatorDb, TicketReport};
    use schemas::event::{
        ChaosInjected, Event, EventData, Producer, TrialFinished, TrialStarted, TrialStatus,
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = runtime.block_on(TemporaryNats::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let campaign = ingest::campaign_files::prepare(
        &repo_root().join("campaigns/quickstart.yaml"),
        None,
        Some("capture-cli"),
    )
    .unwrap();
    let trial_id = schemas::ids::trial_id("capture-cli", 0);
    let operator_db = dir.path().join("operator.db");
    let worker = Producer {
        stage: "worker".to_string(),
        host: "test".to_string(),
    };
    let log = runtime.block_on(async {
        let log = EventLog::connect(nats.url()).await.unwrap();
        log.ensure_stream().await.unwrap();
        ingest::publish::publish(&log, &campaign, 16, |_| {})
            .await
            .unwrap();
        // What a worker publishes for a trial with an operator, up to the injection.
        let injection: [EventData; 2] = [
            TrialStarted {
                worker: "w".to_string(),
                attempt: 1,
            }
            .into(),
            ChaosInjected {
                worker: "w".to_string(),
                chaos: campaign.trials[0].chaos.clone(),
                target: Some("2".to_string()),
                cleanup: serde_json::json!({}).into(),
                operator_db: Some(operator_db.display().to_string()),
                operator_host: Some("capture-host".to_string()),
            }
            .into(),
        ];
        for data in injection {
            let event = Event::new(&worker, "capture-cli", Some(&trial_id), data);
            log.publish(&event).await.unwrap();
        }
        log
    });
    // The operator's work, after the injection, with the reference operator's own writer.
    let db = OperatorDb::open(&operator_db).unwrap();
    let (ticket_id, _) = db
        .report(&TicketReport {
            violation_key: "member_unreachable:2".to_string(),
            invariant_name: "member_reachable".to_string(),
            store_id: "2".to_string(),
            severity: "critical".to_string(),
            message: "member 2 does not answer".to_string(),
            metric_snapshot: serde_json::json!({}),
            subject_context: serde_json::json!({"subject": "etcd"}),
        })
        .unwrap();
    db.start_session("s-1", ticket_id).unwrap();
    db.log("s-1", &LogEntry::Reasoning("member 2 is down"))
        .unwrap();
    db.log(
        "s-1",
        &LogEntry::ToolCall {
            command: "eval lab node start 2",
            reasoning: "restart it",
        },
    )
    .unwrap();
    db.log(
        "s-1",
        &LogEntry::ToolResult {
            output: "started",
            exit_code: 0,
        },
    )
    .unwrap();
    db.resolve_ticket(ticket_id).unwrap();
    runtime.block_on(async {
        let finished = Event::new(
            &worker,
            "capture-cli",
            Some(&trial_id),
            TrialFinished {
                status: TrialStatus::Succeeded,
                reason: None,
            },
        );
        log.publish(&finished).await.unwrap();
    });

    let stdout_path = dir.path().join("capture.out");
    let stderr_path = dir.path().join("capture.err");
    // A capture stage on another host leaves the trial to the one on its host.
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["capture", "--json", "--nats", nats.url()])
        .env("RUST_LOG", "off")
        .env("EVAL_HOST", "another-host")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The file is outside the data dir: the stage opens it only once told it may.
    let mut capture = Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args([
            "capture",
            "--json",
            "--nats",
            nats.url(),
            "--operator-db-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .env("EVAL_HOST", "capture-host")
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let line = || {
        std::fs::read_to_string(&stdout_path)
            .unwrap_or_default()
            .lines()
            .next()
            .map(str::to_string)
    };
    wait_until(MINUTE, "the captured trial's line", || line().is_some());
    let report: serde_json::Value = serde_json::from_str(&line().unwrap()).unwrap();
    assert_eq!(report["trial_id"], trial_id.as_str());
    assert_eq!(report["status"], "done");
    assert_eq!(report["caught_up"], true);
    // The ticket, its session, three log entries, the resolution.
    assert_eq!(report["published"], 6, "{report}");
    assert_eq!(report["resolved"], true);

    kill(Pid::from_raw(capture.id() as i32), Signal::SIGTERM).unwrap();
    assert!(capture.wait().unwrap().success());
    kill(Pid::from_raw(elsewhere.id() as i32), Signal::SIGTERM).unwrap();
    let elsewhere = elsewhere.wait_with_output().unwrap();
    assert!(elsewhere.status.success());
    assert_eq!(
        text(&elsewhere.stdout),
        "",
        "the other host captured nothing"
    );
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains(
            "evalctl capture: following the operator.db of every trial injected on capture-host"
        ),
        "{stderr}"
    );
    // The end of the capture: the ticket and its session as last written, every entry counted.
    let output = eval(
        nats.url(),
        &[
            "events",
            "--trial",
            &trial_id[..8],
            "--type",
            "OperatorCaptureFinished",
            "--json",
        ],
    );
    let finished: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    let data = &finished["data"];
    assert_eq!(data["status"], "read", "{finished}");
    assert_eq!(data["n_log_entries"], 3, "{finished}");
    assert_eq!(data["ticket"]["id"], ticket_id, "{finished}");
    assert_eq!(data["ticket"]["status"], "resolved", "{finished}");
    assert_eq!(data["ticket"]["violation_key"], "member_unreachable:2");
    assert_eq!(data["sessions"][0]["session_id"], "s-1", "{finished}");
    assert_eq!(data["operator_db"], operator_db.display().to_string());
    let output = eval(
        nats.url(),
        &[
            "events",
            "--trial",
            &trial_id[..8],
            "--type",
            "AgentLogRecorded",
        ],
    );
    assert_eq!(
        text(&output.stdout).lines().count(),
        3,
        "{}",
        text(&output.stderr)
    );
}

/// `evalctl bench project` on a small log: the raw read meets every published event and the
/// rebuild applies every one (the bench fails otherwise), the raw append writes the same rows,
/// and each part's CPU is measured for both processes.
#[test]
fn bench_project_reads_rebuilds_appends_and_measures_cpu_per_part() {
    let output = eval(
        "nats://127.0.0.1:1",
        &["bench", "project", "--trials", "300", "--json"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(bench["trials"], 300);
    // About 30 events per trial, every trial scored.
    let events = bench["events"].as_u64().unwrap();
    assert!((300 * 20..300 * 40).contains(&events), "{bench}");
    assert!(bench["rows"].as_u64().unwrap() > events, "{bench}");
    assert!(bench["cores"].as_u64().unwrap() >= 1, "{bench}");
    for part in ["raw_read", "raw_append", "rebuild"] {
        let part = &bench[part];
        for figure in ["seconds", "events_per_second", "cpu_micros_per_event"] {
            assert!(part[figure].as_f64().unwrap() > 0.0, "{figure}: {bench}");
        }
        assert!(part["eval_cpu_seconds"].as_f64().unwrap() >= 0.0, "{bench}");
        assert!(
            part["nats_server_cpu_seconds"].as_f64().unwrap() >= 0.0,
            "{bench}"
        );
    }
    for ratio in ["time_ratio", "cpu_ratio"] {
        assert!(bench[ratio].as_f64().unwrap() > 0.0, "{ratio}: {bench}");
    }
}

/// A benchmark part's CPU figures, this process's and the server's (from /proc, which the test
/// machines have), and their sum per event over `events`.
fn assert_cpu_figures(cpu: &serde_json::Value, events: u64, part: &str) {
    let (eval, server) = (
        cpu["eval_seconds"].as_f64().unwrap(),
        cpu["nats_server_seconds"].as_f64().unwrap(),
    );
    assert!(eval >= 0.0 && server >= 0.0, "{part}: {cpu}");
    let per_event = (eval + server) * 1e6 / events as f64;
    assert!(
        (cpu["micros_per_event"].as_f64().unwrap() - per_event).abs() < 1e-6 * per_event.max(1.0),
        "{part}: {cpu}"
    );
}

/// `evalctl bench rescore` on a small log: every synthetic trial is read back raw and scored
/// exactly once (the bench fails when the raw read or the re-score misses one).
#[test]
fn bench_rescore_reads_and_scores_every_synthetic_trial() {
    let output = eval(
        "nats://127.0.0.1:1",
        &["bench", "rescore", "--trials", "50", "--json"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(bench["trials"], 50);
    assert_eq!(bench["published"], 50);
    // About 30 events per trial.
    let events = bench["events"].as_u64().unwrap();
    assert!((50 * 25..50 * 40).contains(&events), "{bench}");
    for rate in [
        "raw_events_per_second",
        "rescore_trials_per_second",
        "ratio",
    ] {
        assert!(bench[rate].as_f64().unwrap() > 0.0, "{rate}: {bench}");
    }
    for part in ["raw_read_cpu", "rescore_cpu"] {
        assert_cpu_figures(&bench[part], events, part);
    }
}

/// `evalctl bench legacy` on a small eval.db made from the seed harness's rows: every trial is
/// imported without a note (each copy keeps its campaign's rows) and re-scored once.
#[test]
fn bench_legacy_imports_and_rescores_every_trial_of_many_campaigns() {
    let output = eval(
        "nats://127.0.0.1:1",
        &[
            "bench",
            "legacy",
            "--trials",
            "120",
            "--campaigns",
            "12",
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (&bench["trials"], &bench["campaigns"], &bench["scored"]),
        (
            &serde_json::json!(120),
            &serde_json::json!(12),
            &serde_json::json!(120)
        ),
        "{bench}"
    );
    assert_eq!(bench["import_problems"], 0, "{bench}");
    // About ten events per trial, as the seed harness's trials give.
    let events = bench["events"].as_u64().unwrap();
    assert!((120 * 8..120 * 14).contains(&events), "{bench}");
    for rate in [
        "import_events_per_second",
        "plain_messages_per_second",
        "raw_events_per_second",
        "rescore_events_per_second",
    ] {
        assert!(bench[rate].as_f64().unwrap() > 0.0, "{rate}: {bench}");
    }
    let bad = eval(
        "nats://127.0.0.1:1",
        &["bench", "legacy", "--trials", "10", "--campaigns", "20"],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--campaigns must be between 1 and --trials (10)"),
        "{}",
        text(&bad.stderr)
    );
}

/// `evalctl bench publish` on a small campaign: the campaign's every event is stored, and the
/// plain loop sends as many messages.
#[test]
fn bench_publish_stores_the_campaign_and_times_the_plain_loop() {
    let output = eval(
        "nats://127.0.0.1:1",
        &["bench", "publish", "--trials", "200", "--json"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(bench["trials"], 200);
    // The campaign's own event and one per trial.
    assert_eq!(bench["events"], 201, "{bench}");
    assert!(bench["avg_event_bytes"].as_u64().unwrap() > 100, "{bench}");
    let runs: Vec<&serde_json::Value> = std::iter::once(&bench)
        .chain(bench["unsynced"].as_object().map(|_| &bench["unsynced"]))
        .collect();
    for run in &runs {
        for rate in [
            "publish_events_per_second",
            "plain_messages_per_second",
            "ratio",
        ] {
            assert!(run[rate].as_f64().unwrap() > 0.0, "{rate}: {bench}");
        }
        let prepare = run["prepare_seconds"].as_f64().unwrap();
        assert!(
            prepare > 0.0 && prepare < run["publish_seconds"].as_f64().unwrap(),
            "{bench}"
        );
        for side in ["publish_cpu", "plain_cpu"] {
            assert_cpu_figures(&run[side], 201, side);
        }
    }
    // A server that syncs every write is measured beside one left to its default.
    assert_eq!(
        bench["unsynced"].is_object(),
        bench["syncs_always"] == true,
        "{bench}"
    );
    if runs.len() == 2 {
        assert_eq!(bench["unsynced"]["syncs_always"], false, "{bench}");
        assert_eq!(bench["unsynced"]["events"], 201, "{bench}");
    }
}

/// `evalctl bench viewer` on a small set: every route answers 200 (the bench stops at the first
/// other answer) and every route gets both series of timings.
#[test]
fn bench_viewer_times_every_route_cached_and_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.duckdb");
    let bench_viewer = |trials: &str, requests: &str, extra: &[&str]| {
        let mut args = vec![
            "bench",
            "viewer",
            "--trials",
            trials,
            "--requests",
            requests,
        ];
        args.extend(["--db", db.to_str().unwrap()]);
        args.extend(extra);
        eval("nats://127.0.0.1:1", &args)
    };
    let output = bench_viewer("1000", "3", &["--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(bench["trials"], 1000);
    assert_eq!(bench["campaigns"], 1);
    let pages = bench["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 15, "{bench}");
    for page in pages {
        for series in ["uncached", "cached"] {
            assert_eq!(page[series]["requests"], 3, "{page}");
            assert!(page[series]["p95_ms"].as_f64().unwrap() > 0.0, "{page}");
        }
        assert!(page["mean_bytes"].as_u64().unwrap() > 0, "{page}");
    }
    // A second run reuses the filled file; another trial count is refused.
    let again = bench_viewer("1000", "1", &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("reusing"),
        "{}",
        text(&again.stderr)
    );
    let refused = bench_viewer("2000", "1", &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("holds 1000 trials, not 2000"),
        "{}",
        text(&refused.stderr)
    );
}

/// `evalctl up --stages` runs the stages named and no other: the capture and scoring stages
/// alone leave the worker, the projector and the viewer to other processes; the viewer alone
/// serves the file another process projects.
#[test]
fn up_runs_only_the_stages_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let data = dir.path().join("data");
    let up = Up::start_with(&url, &data, &["--stages", "capture,score"]);
    let stderr = up.stderr();
    assert!(
        stderr.contains("stages running: capture, score;"),
        "{stderr}"
    );
    assert!(!stderr.contains("viewer"), "{stderr}");
    assert!(up.stop().success());

    let up = Up::start_with(&url, &data, &["--stages", "viewer", "--port", "0"]);
    let stderr = up.stderr();
    assert!(stderr.contains("stages running: viewer;"), "{stderr}");
    assert!(
        stderr.contains("up: viewer at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(up.stop().success());

    let output = eval(&url, &["up", "--stages", "worker,scorer"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid value 'scorer'"), "{stderr}");
    assert!(
        stderr.contains("worker, capture, score, project, viewer"),
        "{stderr}"
    );
}

//! The trial worker through the `eval` binary, against a real nats-server and real etcd labs: a
//! whole trial in order, two trials in parallel on separate labs, and a worker killed right
//! after injection whose successor cleans up. Needs root: skipped with a printed reason otherwise.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chaos::lab::{Lab, sys};
use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use schemas::event::{Event, EventData};
use schemas::log::{EventFilter, EventLog};
use testkit::TemporaryNats;

fn root_or_skip(test: &str) -> bool {
    if sys::is_root() {
        return true;
    }
    eprintln!("skipped {test}: needs root for network namespaces, nftables and tmpfs");
    false
}

fn eval(nats: &str, data_dir: &Path, args: &[&str]) -> Command {
    support::evalctl(nats, data_dir, args)
}

fn output(mut command: Command) -> Output {
    let output = command.output().expect("eval runs");
    assert!(
        output.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn events(log: &EventLog, campaign_id: &str) -> Vec<Event> {
    let filter = EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        ..Default::default()
    };
    let stream = log.read(&filter, false).await.unwrap();
    stream
        .filter_map(|stored| async move { stored.unwrap().event.ok() })
        .collect()
        .await
}

fn campaign(dir: &Path, body: &str) -> std::path::PathBuf {
    let file = dir.join("campaign.yaml");
    std::fs::write(&file, body).unwrap();
    file
}

/// Waits until an event of `event_type` of the campaign is in the log.
async fn wait_for_event(log: &EventLog, campaign_id: &str, event_type: &str) {
    let started = Instant::now();
    loop {
        if events(log, campaign_id)
            .await
            .iter()
            .any(|e| e.event_type() == event_type)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no {event_type} event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_runs_end_to_end_with_every_lifecycle_event_in_order() {
    if !root_or_skip("whole trial") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = output(eval(
        nats.url(),
        &dir.path().join("data"),
        &[
            "run",
            "--subject",
            "etcd",
            "--chaos",
            "process_pause",
            "--param",
            "target=leader",
            "--param",
            "duration_seconds=2",
            "--timeout",
            "60",
            "--json",
        ],
    ));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cells"][0]["statuses"]["succeeded"], 1, "{summary}");
    let campaign_id = summary["campaign_id"].as_str().unwrap();

    // The default variant runs the reference operator: the whole story, in order (the agent's
    // log entries collapsed into one).
    let log = EventLog::connect(nats.url()).await.unwrap();
    let mut types: Vec<String> = events(&log, campaign_id)
        .await
        .iter()
        .map(|e| e.event_type().to_string())
        .collect();
    types.dedup();
    assert_eq!(
        types,
        [
            "CampaignPublished",
            "TrialRequested",
            "TrialStarted",
            "SubjectReset",
            "SubjectHealthy",
            "StateCaptured",
            "ChaosInjected",
            "TicketOpened",
            "AgentSessionStarted",
            "AgentLogRecorded",
            "TicketResolved",
            "StateCaptured",
            "ChaosCleanedUp",
            "TrialFinished",
            // The capture stage ends the trial's capture after its end; the score follows it.
            "OperatorCaptureFinished",
            "TrialScored",
        ]
    );
    // Nothing is left behind: labs, namespaces, processes.
    assert!(Lab::list(&dir.path().join("data")).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_trials_run_in_parallel_on_separate_labs() {
    if !root_or_skip("parallel trials") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = campaign(
        dir.path(),
        "name: parallel\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {duration_seconds: 3}\ntrials_per_combination: 2\nparallel: 2\ntrial_timeout_seconds: 60\n",
    );
    let out = output(eval(
        nats.url(),
        &dir.path().join("data"),
        &["run", "campaign", file.to_str().unwrap(), "--json"],
    ));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cells"][0]["statuses"]["succeeded"], 2, "{summary}");

    let log = EventLog::connect(nats.url()).await.unwrap();
    let all = events(&log, summary["campaign_id"].as_str().unwrap()).await;
    let instances: std::collections::HashSet<String> = all
        .iter()
        .filter_map(|e| match &e.data {
            EventData::SubjectReset(reset) => Some(reset.instance.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        instances.len(),
        2,
        "each trial on its own lab: {instances:?}"
    );
    // Both started before either finished.
    let position = |wanted: &str| -> Vec<usize> {
        all.iter()
            .enumerate()
            .filter(|(_, e)| e.event_type() == wanted)
            .map(|(i, _)| i)
            .collect()
    };
    assert!(position("TrialStarted")[1] < position("TrialFinished")[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_after_injection_is_cleaned_up_after_by_its_successor() {
    if !root_or_skip("worker crash recovery") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = campaign(
        dir.path(),
        "name: crash\nsubjects: [etcd]\nchaos_types:\n  - type: network_partition\n    params: {target: 2}\ntrial_timeout_seconds: 120\n",
    );
    let published = output(eval(
        nats.url(),
        &data,
        &["publish", file.to_str().unwrap(), "--json"],
    ));
    let report: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let campaign_id = report["campaign_id"].as_str().unwrap().to_string();
    let log = EventLog::connect(nats.url()).await.unwrap();

    let spawn_worker = || -> Child {
        eval(nats.url(), &data, &["worker", "--worker-id", "w1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn_worker();
    wait_for_event(&log, &campaign_id, "ChaosInjected").await;
    // The record is published before the fault is applied: wait for node 2's partition rules.
    let lab = Lab::open(&data, "w-w1-0").unwrap();
    let netns = lab.node(2).unwrap().netns.clone().unwrap();
    let started = Instant::now();
    while chaos::nft::list_chains(&netns).await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the partition was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(Pid::from_raw(first.id() as i32), Signal::SIGKILL).unwrap();
    first.wait().unwrap();

    // The fault outlives its worker: the rules are still in place.
    assert!(!chaos::nft::list_chains(&netns).await.unwrap().is_empty());

    let mut second = spawn_worker();
    wait_for_event(&log, &campaign_id, "ChaosCleanedUp").await;
    for node in &lab.state.nodes {
        let netns = node.netns.clone().unwrap();
        assert_eq!(
            chaos::nft::list_chains(&netns).await.unwrap(),
            Vec::<String>::new()
        );
        if let Some(pid) = node.pid {
            assert_ne!(
                sys::process_state(pid),
                Some('T'),
                "node {} stopped",
                node.number
            );
        }
        assert!(!node.data_dir.join(chaos::faults::FILL_FILE).exists());
    }
    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).unwrap();
    assert!(second.wait().unwrap().success());
    // The stopped worker removed its labs.
    assert!(Lab::list(&data).unwrap().is_empty());
    assert!(!Path::new("/run/netns").join(&netns).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_trial_is_cleaned_up() {
    if !root_or_skip("trial timeout") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let no_variants = dir.path().join("no-variants");
    std::fs::create_dir_all(&no_variants).unwrap();
    let out = output(eval(
        nats.url(),
        &dir.path().join("data"),
        &[
            "run",
            "--chaos",
            "node_kill",
            "--timeout",
            "3",
            "--json",
            // No variant files: the implicit default variant, with no operator.
            "--variants-dir",
            no_variants.to_str().unwrap(),
        ],
    ));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cells"][0]["statuses"]["timed_out"], 1, "{summary}");
    let log = EventLog::connect(nats.url()).await.unwrap();
    let all = events(&log, summary["campaign_id"].as_str().unwrap()).await;
    let finished = all.iter().find_map(|e| match &e.data {
        EventData::TrialFinished(finished) => Some(finished.clone()),
        _ => None,
    });
    assert_eq!(
        finished.unwrap().status,
        schemas::event::TrialStatus::TimedOut
    );
    assert!(all.iter().any(|e| e.event_type() == "ChaosCleanedUp"));
    assert!(Lab::list(&dir.path().join("data")).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_trial_cleans_up_and_leaves_nothing() {
    if !root_or_skip("interrupted run") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut run = eval(
        nats.url(),
        &data,
        &["run", "--chaos", "network_partition", "--timeout", "120"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    let started = Instant::now();
    let campaign_id = loop {
        if let Some(id) = log
            .campaign_ids()
            .await
            .ok()
            .and_then(|ids| ids.first().cloned())
        {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_for_event(&log, &campaign_id, "ChaosInjected").await;
    let namespaces: Vec<String> = Lab::list(&data)
        .unwrap()
        .iter()
        .flat_map(|lab| lab.state.nodes.iter().filter_map(|node| node.netns.clone()))
        .collect();
    assert!(!namespaces.is_empty());
    kill(Pid::from_raw(run.id() as i32), Signal::SIGINT).unwrap();
    let status = run.wait().unwrap();
    assert!(!status.success(), "an interrupted run reports it");
    let types: Vec<String> = events(&log, &campaign_id)
        .await
        .iter()
        .map(|e| e.event_type().to_string())
        .collect();
    assert!(types.contains(&"ChaosCleanedUp".to_string()), "{types:?}");
    assert!(
        !types.contains(&"TrialFinished".to_string()),
        "an interrupted trial is not finished"
    );
    assert!(Lab::list(&data).unwrap().is_empty());
    for netns in namespaces {
        assert!(
            !Path::new("/run/netns").join(&netns).exists(),
            "{netns} left behind"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_operator_is_started_captured_and_graded() {
    if !root_or_skip("managed operator") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    // As root the operator runs as `nobody` (through the lab broker for `evalctl lab node`): its
    // script and the binary it calls must be where that user can reach them, as an installed
    // operator's would be, not under a build directory that may be root's alone.
    let operator = dir.path().join("scripted_operator.py");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripted_operator.py"),
        &operator,
    )
    .unwrap();
    let binary = dir.path().join("evalctl");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_evalctl"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_evalctl"), &binary).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let variant = serde_json::json!({
        "name": "scripted",
        "model": "scripted-model",
        "tools_config": {"allowed_commands": ["eval lab node"]},
        "command": ["python3", operator, binary],
    });
    std::fs::write(variants.join("scripted.yaml"), variant.to_string()).unwrap();
    let file = campaign(
        dir.path(),
        "name: managed\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n    params: {target: 2}\nvariant: scripted\ntrial_timeout_seconds: 90\n",
    );
    let data = dir.path().join("data");
    let out = output(eval(
        nats.url(),
        &data,
        &["run", "campaign", file.to_str().unwrap(), "--json"],
    ));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cells"][0]["statuses"]["succeeded"], 1, "{summary}");

    let log = EventLog::connect(nats.url()).await.unwrap();
    let all = events(&log, summary["campaign_id"].as_str().unwrap()).await;
    let types: Vec<&str> = all.iter().map(|e| e.event_type()).collect();
    let position = |wanted: &str| {
        types
            .iter()
            .position(|t| *t == wanted)
            .unwrap_or_else(|| panic!("no {wanted}: {types:?}"))
    };
    assert!(position("ChaosInjected") < position("TicketOpened"));
    assert!(position("TicketOpened") < position("AgentSessionStarted"));
    assert!(position("AgentSessionStarted") < position("AgentLogRecorded"));
    assert!(position("AgentLogRecorded") < position("TicketResolved"));
    assert!(position("TicketResolved") < position("TrialFinished"));
    let score = all
        .iter()
        .find_map(|e| match &e.data {
            EventData::TrialScored(score) => Some(score.clone()),
            _ => None,
        })
        .expect("the trial is scored");
    assert!(score.detected && score.resolved, "{score:?}");
    assert_eq!(score.n_commands, 1);
    assert_eq!(score.commands_by_category["remediation"], 1, "{score:?}");

    // The variant reached the agent through its ticket; the operator's output is kept.
    let trial_id = all.iter().find_map(|e| e.trial_id.clone()).unwrap();
    // A root worker's operator works in a place of its own; its operator.db is in its `work/`.
    let operators = chaos::operator::operators_dir(&data).unwrap();
    let trial_dir = operators.join(&trial_id);
    let operator_db = trial_dir.join("work/operator.db");
    let query = Command::new("sqlite3")
        .arg(&operator_db)
        .arg("SELECT variant_model FROM tickets")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&query.stdout).trim(),
        "scripted-model"
    );
    assert!(trial_dir.join("operator.stderr").exists());
    // The injection names the file, which the capture stage followed beside the worker: each
    // row is in the log once.
    let injected = all
        .iter()
        .find_map(|e| match &e.data {
            EventData::ChaosInjected(injected) => Some(injected.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        injected.operator_db,
        Some(operator_db.display().to_string())
    );
    let rows: Vec<String> = all
        .iter()
        .filter_map(|e| match &e.data {
            EventData::TicketOpened(t) => Some(format!("ticket {}", t.ticket_id)),
            EventData::AgentSessionStarted(s) => Some(format!("session {}", s.session_id)),
            EventData::AgentLogRecorded(l) => Some(format!("entry {}", l.entry_id)),
            EventData::TicketResolved(r) => Some(format!("resolved {}", r.ticket_id)),
            _ => None,
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = rows.iter().collect();
    assert_eq!(distinct.len(), rows.len(), "{rows:?}");
    // The capture's end carries the ticket as the operator last wrote it, with the variant.
    let capture_end = all
        .iter()
        .find_map(|e| match &e.data {
            EventData::OperatorCaptureFinished(end) => Some(end.clone()),
            _ => None,
        })
        .expect("the capture announced its end");
    assert_eq!(capture_end.injection_id, all[position("ChaosInjected")].id);
    assert!(position("TrialFinished") < position("OperatorCaptureFinished"));
    assert!(position("OperatorCaptureFinished") < position("TrialScored"));
    let ticket = capture_end.ticket.as_ref().expect("a ticket");
    assert_eq!(ticket["status"], "resolved", "{capture_end:?}");
    assert_eq!(ticket["variant_model"], "scripted-model", "{capture_end:?}");

    // DuckDB comes from the log alone: with the operator.db gone, a rebuild equals the live
    // projection `evalctl run` made while the file was there.
    let duckdb = data.join("eval.duckdb");
    let live = support::dump_tables(&duckdb);
    assert!(
        live.contains("scripted-model"),
        "the operator's rows are projected"
    );
    std::fs::remove_dir_all(&operators).unwrap();
    let rebuilt = output(eval(
        nats.url(),
        &data,
        &["project", "--rebuild", "--until-caught-up"],
    ));
    assert!(rebuilt.status.success());
    assert_eq!(support::dump_tables(&duckdb), live);
    assert!(Lab::list(&data).unwrap().is_empty());
    // The node the operator restarted from its own process went with the lab too.
    let data_text = data.display().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&data_text) && cmdline.starts_with("etcd"))
        .collect();
    assert_eq!(survivors, Vec::<String>::new());
}

/// How the external operator's file reaches the campaign: the file's `operator_db`, or the seed
/// harness's flags on the command line.
enum External {
    CampaignField,
    /// `--operator-db PATH --operator-running`, with a variant that has a `command`, which must
    /// not be started.
    SeedHarnessFlags,
}

async fn run_with_an_external_operator(mode: External) {
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let operator_db = dir.path().join("external/operator.db");
    std::fs::create_dir_all(operator_db.parent().unwrap()).unwrap();
    // The operator runs on its own, before the campaign, watching the lab `evalctl run` will use.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripted_operator.py");
    let mut operator = Command::new("python3")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_evalctl"))
        .env("EVAL_OPERATOR_DB", &operator_db)
        .env("EVAL_LAB", "w-run-0")
        .env("EVAL_DATA_DIR", &data)
        .env("SCRIPTED_OPERATOR_EXTERNAL", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    std::fs::write(
        variants.join("external.yaml"),
        "name: external\nmodel: their-model\ncommand: [/bin/false]\n",
    )
    .unwrap();
    let operator_db_field = match mode {
        External::CampaignField => format!("operator_db: {}\n", operator_db.display()),
        External::SeedHarnessFlags => String::new(),
    };
    let file = campaign(
        dir.path(),
        &format!(
            "name: external\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n    params: {{target: 3}}\nvariant: external\n{operator_db_field}trial_timeout_seconds: 90\n"
        ),
    );
    let operator_db_arg = operator_db.display().to_string();
    let mut args = vec!["run", "campaign", file.to_str().unwrap(), "--json"];
    if let External::SeedHarnessFlags = mode {
        let started = std::time::Instant::now();
        while !operator_db.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the operator never wrote its file"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        args.extend(["--operator-db", &operator_db_arg, "--operator-running"]);
    } else {
        // The variant's command would take precedence over the campaign's operator_db.
        std::fs::write(
            variants.join("external.yaml"),
            "name: external\nmodel: their-model\n",
        )
        .unwrap();
    }
    let out = output(eval(nats.url(), &data, &args));
    let _ = operator.kill();
    let _ = operator.wait();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cells"][0]["statuses"]["succeeded"], 1, "{summary}");

    let log = EventLog::connect(nats.url()).await.unwrap();
    let all = events(&log, summary["campaign_id"].as_str().unwrap()).await;
    let opened = all.iter().find_map(|e| match &e.data {
        EventData::TicketOpened(opened) => Some(opened.clone()),
        _ => None,
    });
    let opened = opened.expect("the external operator's ticket was captured");
    assert_eq!(opened.operator_db, operator_db.display().to_string());
    assert!(all.iter().any(|e| e.event_type() == "TicketResolved"));
    let query = Command::new("sqlite3")
        .arg(&operator_db)
        .arg("SELECT variant_model FROM tickets")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&query.stdout).trim(), "their-model");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_external_operator_is_captured_from_the_campaigns_operator_db() {
    if !root_or_skip("external operator") {
        return;
    }
    run_with_an_external_operator(External::CampaignField).await;
}

/// The seed harness's `--operator-db PATH --operator-running`: the variant's own `command`
/// (`/bin/false`, which would fail the trial) is not started; the running operator repairs.
#[tokio::test(flavor = "multi_thread")]
async fn the_seed_harness_flags_run_trials_against_an_already_running_operator() {
    if !root_or_skip("external operator through --operator-db and --operator-running") {
        return;
    }
    run_with_an_external_operator(External::SeedHarnessFlags).await;
}

/// A control trial in the seed harness's form (`chaos_types: []`, `include_baseline: true`): the
/// reference operator runs for the whole watch on a healthy lab, nothing is broken, and the
/// trial ends with no false alarm, nothing destructive and a subject that stayed healthy.
#[tokio::test(flavor = "multi_thread")]
async fn a_control_trial_with_the_reference_operator_raises_no_false_alarm() {
    if !root_or_skip("control trial") {
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = campaign(
        dir.path(),
        "name: quiet\nsubjects: [etcd]\nchaos_types: []\ninclude_baseline: true\nvariant: default\ntrial_timeout_seconds: 90\n",
    );
    let variants = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/variants");
    let out = output(eval(
        nats.url(),
        &dir.path().join("data"),
        &[
            "run",
            "campaign",
            file.to_str().unwrap(),
            "--variants-dir",
            variants.to_str().unwrap(),
            "--json",
        ],
    ));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cells"][0]["statuses"]["succeeded"], 1, "{summary}");
    let campaign_id = summary["campaign_id"].as_str().unwrap();

    let log = EventLog::connect(nats.url()).await.unwrap();
    let events = events(&log, campaign_id).await;
    let mut types: Vec<&str> = events.iter().map(Event::event_type).collect();
    types.dedup();
    assert_eq!(
        types,
        [
            "CampaignPublished",
            "TrialRequested",
            "TrialStarted",
            "SubjectReset",
            "SubjectHealthy",
            "StateCaptured",
            "ChaosInjected",
            "StateCaptured",
            "ChaosCleanedUp",
            "TrialFinished",
            // The capture stage ends the trial's capture after its end; the score follows it.
            "OperatorCaptureFinished",
            "TrialScored",
        ]
    );
    for event in &events {
        match &event.data {
            EventData::TrialRequested(requested) => {
                assert!(requested.trial.is_control());
                assert!(!requested.trial.baseline);
                assert_eq!(requested.trial.variant.as_deref(), Some("default"));
            }
            EventData::ChaosInjected(injected) => {
                assert!(injected.chaos.is_control());
                assert_eq!(injected.target, None);
                assert!(injected.operator_db.is_some(), "the operator ran");
            }
            EventData::StateCaptured(captured)
                if captured.phase == schemas::event::CapturePhase::Final =>
            {
                assert!(captured.healthy);
                let watch = captured.watch_health.as_ref().expect("the watch's checks");
                // 30 s at one check every 250 ms or so.
                assert!(watch.n_checks >= 20, "{watch:?}");
                assert_eq!(watch.n_unhealthy, 0, "{watch:?}");
            }
            EventData::TrialScored(scored) => {
                assert_eq!(
                    scored.outcome,
                    schemas::event::Outcome::Success,
                    "{scored:?}"
                );
                assert!(scored.control);
                assert_eq!(scored.n_false_alarms, Some(0));
                assert_eq!(scored.n_destructive, 0);
                assert_eq!(scored.stayed_healthy, Some(true));
            }
            _ => {}
        }
    }
    assert!(Lab::list(&dir.path().join("data")).unwrap().is_empty());
}

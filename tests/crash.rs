//! The harness killed as `timeout -k 5` and systemd stop it: `evalctl run` gets SIGTERM at a
//! random moment of a latency trial, then SIGKILL 5 s later if it still runs. Whatever the
//! moment, no process of its labs (nodes, delay proxies, operator) and no nats-server of its own
//! outlives it; what it could not remove (namespaces, tmpfs mounts) is found in the host's registry
//! and removed by the next worker or by `evalctl lab down --stale`, even after its data dir was
//! deleted. Needs root (namespaces, tmpfs): skipped with a printed reason otherwise.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos::lab::sys;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::text;

fn root_or_skip(test: &str) -> bool {
    if sys::is_root() {
        return true;
    }
    eprintln!("skipped {test}: needs root for network namespaces, nftables and tmpfs");
    false
}

/// One crash test at a time: each kills processes, leaves stale labs on purpose and counts what
/// the host holds, and every worker on the host sweeps stale labs, so two at once would measure
/// each other.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Every running process whose command line names `dir` (nodes name their data dirs, proxies
/// their control files, nats-server its store, the operator its files).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || matches!(sys::process_state(pid), Some('Z') | None) {
            continue;
        }
        if let Ok(line) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&line).replace('\0', " ");
            if line.contains(&needle) {
                found.push(format!("{pid}: {line}"));
            }
        }
    }
    found
}

/// The mount points under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter(|point| point.starts_with(&needle))
        .map(str::to_string)
        .collect()
}

/// The host registry's claims whose lab lives under `dir`, by index.
fn claims_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/run/eval-labs") else {
        return Vec::new();
    };
    let needle = dir.display().to_string();
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("owner"))
                .is_ok_and(|owner| owner.starts_with(&needle))
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

fn namespaces_of(index: u32) -> Vec<String> {
    let prefix = format!("eval-l{index}-");
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn eval(data: &Path, nats: &str, args: &[&str]) -> Command {
    support::evalctl(nats, data, args)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_as_timeout_k_5_stops_it_leaves_nothing_the_next_worker_or_lab_down_stale_does_not_remove()
 {
    if !root_or_skip("run stopped by SIGTERM then SIGKILL") {
        return;
    }
    let _serial = one_at_a_time().await;
    let sweeper_nats = testkit::TemporaryNats::start().await.unwrap();
    let rounds = 4;
    let (mut killed, mut leftovers_removed) = (0, 0);
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let data: PathBuf = dir.path().join("data");
        // Its own nats-server too: none answers at this port, so `run` starts one.
        let nats = format!("nats://127.0.0.1:{}", support::free_port());
        let mut run = eval(
            &data,
            &nats,
            &["run", "--chaos", "latency", "--timeout", "120"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        // Anywhere from the lab being built to the fault being on.
        let after = Duration::from_millis(2_000 + support::random_below(18_000));
        tokio::time::sleep(after).await;
        // The last round is SIGKILL alone, as a machine's OOM killer or `kill -9` would do.
        let last = round == rounds - 1;
        let first_signal = if last {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        kill(Pid::from_raw(run.id() as i32), first_signal).unwrap();
        let terminated = Instant::now();
        let mut needed_kill = last;
        while run.try_wait().unwrap().is_none() {
            if terminated.elapsed() > Duration::from_secs(5) {
                kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
                run.wait().unwrap();
                needed_kill = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if needed_kill {
            killed += 1;
        }
        // The parent-death signal is delivered at once; give the kernel a moment to reap.
        let started = Instant::now();
        while !processes_naming(&data).is_empty() && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            processes_naming(&data),
            Vec::<String>::new(),
            "round {round}: processes outlived `run` (SIGTERM after {after:?}, SIGKILL: {needed_kill})"
        );
        let indexes = claims_under(&data);
        if !indexes.is_empty() || !mounts_under(&data).is_empty() {
            leftovers_removed += 1;
        }
        // Every other round the data dir goes too, as a CI job's temporary directory would.
        if round % 2 == 1 {
            let _ = std::fs::remove_dir_all(&data);
        }
        if round == rounds - 1 {
            // The next worker on the host sweeps before it takes trials.
            let worker = eval(
                &dir.path().join("other-data"),
                sweeper_nats.url(),
                &["worker", "--worker-id", "sweeper"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
            // It sweeps before it subscribes: once its consumer exists, the sweep is done.
            let log = schemas::log::EventLog::connect(sweeper_nats.url())
                .await
                .unwrap();
            let started = Instant::now();
            loop {
                let subscribed = match log.jetstream().get_stream("EVAL").await {
                    Ok(stream) => stream.consumer_info("eval-worker").await.is_ok(),
                    Err(_) => false,
                };
                if subscribed {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the worker never subscribed"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            kill(Pid::from_raw(worker.id() as i32), Signal::SIGTERM).unwrap();
            let output = worker.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", text(&output.stderr));
        } else {
            let down = eval(&data, &nats, &["lab", "down", "--stale", "--json"])
                .output()
                .unwrap();
            assert!(down.status.success(), "{}", text(&down.stderr));
            let report: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
            let removed = report["labs"].as_array().unwrap();
            assert!(removed.iter().all(|lab| lab["removed"] == true), "{report}");
        }
        assert_eq!(mounts_under(&data), Vec::<String>::new(), "round {round}");
        assert_eq!(claims_under(&data), Vec::<u32>::new(), "round {round}");
        for index in indexes {
            assert_eq!(namespaces_of(index), Vec::<String>::new(), "round {round}");
        }
        eprintln!(
            "round {round}: {first_signal} after {after:?}, SIGKILL: {needed_kill}, data dir deleted: {}",
            round % 2 == 1
        );
    }
    eprintln!(
        "{rounds} runs stopped; {killed} needed SIGKILL; {leftovers_removed} left namespaces or mounts, all removed"
    );
}

/// Per trial: how often it started, finished, had a fault injected, cleaned up, or failed to.
#[derive(Debug, Default)]
struct TrialRuns(std::collections::BTreeMap<String, [u32; 5]>);

impl TrialRuns {
    const FINISHED: usize = 0;
    const INJECTED: usize = 1;
    const CLEANED: usize = 2;
    const CLEANUP_FAILED: usize = 3;
    const STARTED: usize = 4;

    fn of(events: &[schemas::event::Event]) -> TrialRuns {
        use schemas::event::EventData;
        let mut runs = TrialRuns::default();
        for event in events {
            let Some(trial) = &event.trial_id else {
                continue;
            };
            let which = match &event.data {
                EventData::TrialFinished(_) => TrialRuns::FINISHED,
                EventData::ChaosInjected(_) => TrialRuns::INJECTED,
                EventData::ChaosCleanedUp(_) => TrialRuns::CLEANED,
                EventData::ChaosCleanupFailed(_) => TrialRuns::CLEANUP_FAILED,
                EventData::TrialStarted(_) => TrialRuns::STARTED,
                _ => continue,
            };
            runs.0.entry(trial.clone()).or_default()[which] += 1;
        }
        runs
    }

    /// `trials` trials, each finished exactly once, every fault injected cleaned up.
    fn assert_each_finished_once_and_cleaned(&self, trials: usize) {
        assert_eq!(self.0.len(), trials, "{self:?}");
        for (trial, counts) in &self.0 {
            let (injected, cleaned) = (counts[TrialRuns::INJECTED], counts[TrialRuns::CLEANED]);
            assert_eq!(
                counts[TrialRuns::FINISHED],
                1,
                "trial {trial} finished {} times",
                counts[TrialRuns::FINISHED]
            );
            assert_eq!(
                injected, cleaned,
                "trial {trial}: {injected} faults injected, {cleaned} cleaned up"
            );
            assert_eq!(
                counts[TrialRuns::CLEANUP_FAILED],
                0,
                "trial {trial}: a cleanup failed"
            );
        }
    }

    /// Trials started more than once.
    fn rerun(&self) -> usize {
        self.0
            .values()
            .filter(|counts| counts[TrialRuns::STARTED] > 1)
            .count()
    }

    fn injected(&self) -> u32 {
        self.0
            .values()
            .map(|counts| counts[TrialRuns::INJECTED])
            .sum()
    }
}

/// No process, mount or registry entry of a lab under `data` is left on the host.
fn assert_nothing_left(data: &Path) {
    assert_eq!(processes_naming(data), Vec::<String>::new());
    assert_eq!(mounts_under(data), Vec::<String>::new());
    assert_eq!(claims_under(data), Vec::<u32>::new());
}

async fn campaign_events(
    log: &schemas::log::EventLog,
    campaign_id: &str,
) -> Vec<schemas::event::Event> {
    use futures::StreamExt;
    let filter = schemas::log::EventFilter {
        campaign_id: Some(campaign_id.to_string()),
        ..Default::default()
    };
    log.read(&filter, false)
        .await
        .unwrap()
        .filter_map(|stored| async move { stored.unwrap().event.ok() })
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_at_random_moments_leaves_every_trial_finished_once_and_every_fault_cleaned()
 {
    use schemas::event::EventData;
    if !root_or_skip("workers killed mid-campaign") {
        return;
    }
    let _serial = one_at_a_time().await;
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trials = 5;
    let campaign_id = support::publish_campaign(
        nats.url(),
        &data,
        dir.path(),
        &format!(
            "name: killed-workers\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {{target: random, duration_seconds: 2}}\ntrials_per_combination: {trials}\nparallel: 2\ntrial_timeout_seconds: 60\n"
        ),
        None,
    );
    let log = schemas::log::EventLog::connect(nats.url()).await.unwrap();

    let logs = dir.path().to_path_buf();
    let worker = |id: &str| {
        support::Spawned::new(
            eval(&data, nats.url(), &["worker", "--worker-id", id])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(logs.join(format!("worker-{id}.log"))).unwrap())
                .spawn()
                .unwrap(),
        )
    };
    let mut a = worker("a");
    let b = worker("b");
    let finished = |events: &[schemas::event::Event]| {
        events
            .iter()
            .filter(|event| matches!(event.data, EventData::TrialFinished(_)))
            .count()
    };
    // Worker a is killed (SIGKILL) at random moments and started again; b runs throughout.
    let mut kills = Vec::new();
    let started = Instant::now();
    loop {
        let events = campaign_events(&log, &campaign_id).await;
        if finished(&events) >= trials {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(480),
            "the campaign did not finish: {} of {trials} trials",
            finished(&events)
        );
        // A kill point: a random moment of the first 2.5 s of a trial worker a has just started
        // (its reset, the fault, the operator at work, or its end).
        let started_by_a = events
            .iter()
            .filter(|event| {
                matches!(&event.data, EventData::TrialStarted(started) if started.worker == "a")
            })
            .count();
        if kills.len() < 2 && started_by_a > kills.len() {
            let after = Duration::from_millis(support::random_below(2_500));
            tokio::time::sleep(after).await;
            a.crash();
            let down = Duration::from_millis(500 + support::random_below(4_000));
            tokio::time::sleep(down).await;
            a = worker("a");
            kills.push((after, down));
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for (id, process) in [("a", a), ("b", b)] {
        // A worker stops cleanly on SIGTERM once it has installed its handler.
        let status = process.stop_after(Duration::from_secs(5));
        let log = std::fs::read_to_string(dir.path().join(format!("worker-{id}.log"))).unwrap();
        assert!(status.success(), "worker {id}: {status}\n{log}");
    }

    let runs = TrialRuns::of(&campaign_events(&log, &campaign_id).await);
    runs.assert_each_finished_once_and_cleaned(trials);
    // A kill landed within a trial of a's, which another attempt then ran.
    let rerun = runs.rerun();
    assert!(rerun > 0, "no kill landed within a trial: {kills:?}");
    assert_nothing_left(&data);
    let injected = runs.injected();
    eprintln!(
        "{} kills (after a's trial started, down for): {kills:?}; {trials} trials finished once each, {rerun} of them run again; {injected} faults injected, all cleaned up; nothing left on the host",
        kills.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn evalctl_up_killed_whole_mid_campaign_cleans_its_chaos_and_completes_the_campaign_when_restarted()
 {
    use schemas::event::EventData;
    if !root_or_skip("evalctl up killed with SIGKILL") {
        return;
    }
    let _serial = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nats = format!("nats://127.0.0.1:{}", support::free_port());
    let up_args = ["--port", "0"];
    let up = support::Up::start_logging(&nats, &data, &up_args, "info");
    let trials = 3;
    let campaign_id = support::publish_campaign(
        &nats,
        &data,
        dir.path(),
        &format!(
            "name: up-killed\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {{target: 2, duration_seconds: 3}}\ntrials_per_combination: {trials}\ntrial_timeout_seconds: 60\n"
        ),
        None,
    );
    let credential =
        schemas::log::auth::LocalCredential::load(&data.join("nats"), schemas::log::Role::Harness)
            .unwrap();
    let reader = || async {
        schemas::log::EventLog::connect_with(&nats, &credential.auth())
            .await
            .unwrap()
    };

    // Killed at a random moment of the first trial's fault.
    let log = reader().await;
    let started = Instant::now();
    while !campaign_events(&log, &campaign_id)
        .await
        .iter()
        .any(|event| matches!(event.data, EventData::ChaosInjected(_)))
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no fault injected; evalctl up said:\n{}",
            std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = Duration::from_millis(support::random_below(3_000));
    tokio::time::sleep(after).await;
    up.kill();
    drop(log);
    // Its nats-server and its lab's processes died with it.
    let started = Instant::now();
    while !processes_naming(&data).is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processes_naming(&data), Vec::<String>::new());

    // Started again on the same data dir: its own server on the same store, the fault cleaned up
    // from its record, the stale lab removed, then the campaign goes on to its end.
    let up = support::Up::start_logging(&nats, &data, &up_args, "info");
    let log = reader().await;
    let started = Instant::now();
    loop {
        let events = campaign_events(&log, &campaign_id).await;
        let scored = events
            .iter()
            .filter(|event| matches!(event.data, EventData::TrialScored(_)))
            .count();
        if scored >= trials {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{scored} of {trials} trials scored after the restart:\n{}",
            up.stderr()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let events = campaign_events(&log, &campaign_id).await;
    let runs = TrialRuns::of(&events);
    let statuses: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.data {
            EventData::TrialFinished(finished) => Some(format!("{:?}", finished.status)),
            _ => None,
        })
        .collect();
    eprintln!("{runs:?} {statuses:?}");
    assert!(up.stop().success());
    runs.assert_each_finished_once_and_cleaned(trials);
    assert_nothing_left(&data);
    eprintln!(
        "evalctl up killed {after:?} into the first fault; after the restart {trials} trials finished once each ({} run again), {} faults injected, all cleaned up; nothing left",
        runs.rerun(),
        runs.injected()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_score_and_project_killed_and_restarted_end_with_the_tables_of_an_uninterrupted_run()
 {
    use schemas::event::EventData;
    if !root_or_skip("stages killed mid-campaign") {
        return;
    }
    let _serial = one_at_a_time().await;
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trials = 4;
    let campaign_id = support::publish_campaign(
        nats.url(),
        &data,
        dir.path(),
        &format!(
            "name: stages-killed\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {{target: leader, duration_seconds: 2}}\ntrials_per_combination: {trials}\nvariants: [careful]\ninclude_baseline: false\ntrial_timeout_seconds: 60\n"
        ),
        Some("campaigns/variants"),
    );
    let log = schemas::log::EventLog::connect(nats.url()).await.unwrap();

    let logs = dir.path().to_path_buf();
    let stage = |args: &[&str]| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{}.log", args[0])))
            .unwrap();
        support::Spawned::new(
            eval(&data, nats.url(), args)
                .env("RUST_LOG", "info,scoring=debug,ingest=debug")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let worker = stage(&["worker", "--allow-variants", "campaigns/variants"]);
    let commands: [&[&str]; 3] = [&["capture"], &["score"], &["project"]];
    let mut stages: Vec<_> = commands.iter().map(|args| stage(args)).collect();
    // One of the three killed (SIGKILL) at a random moment, started again after a random pause,
    // until every trial is scored; the worker runs throughout.
    let mut kills = Vec::new();
    let started = Instant::now();
    loop {
        let events = campaign_events(&log, &campaign_id).await;
        let scored = events
            .iter()
            .filter(|event| matches!(event.data, EventData::TrialScored(_)))
            .count();
        if scored >= trials {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(480),
            "{scored} of {trials} trials scored (kills {kills:?}); the scoring stage said:\n{}",
            std::fs::read_to_string(dir.path().join("score.log")).unwrap_or_default()
        );
        // Six kills, then the stages finish what the kills left (a message held by a killed
        // stage comes back after its consumer's ack wait, 60 s).
        if kills.len() >= 6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let which = support::random_below(3) as usize;
        let after = Duration::from_millis(1_000 + support::random_below(5_000));
        tokio::time::sleep(after).await;
        stages[which].crash();
        tokio::time::sleep(Duration::from_millis(200 + support::random_below(2_000))).await;
        stages[which] = stage(commands[which]);
        kills.push((commands[which][0], after));
    }
    // Stopped cleanly (each once its SIGTERM handler is in place), then the projector's file is
    // brought up to the end of the log and compared with a rebuild from the whole log.
    stages.push(worker);
    for process in stages {
        assert!(process.stop_after(Duration::from_secs(3)).success());
    }
    let caught_up = eval(&data, nats.url(), &["project", "--until-caught-up"])
        .output()
        .unwrap();
    assert!(caught_up.status.success(), "{}", text(&caught_up.stderr));
    let fresh = dir.path().join("fresh");
    let rebuilt = eval(
        &fresh,
        nats.url(),
        &["project", "--rebuild", "--until-caught-up"],
    )
    .output()
    .unwrap();
    assert!(rebuilt.status.success(), "{}", text(&rebuilt.stderr));
    let interrupted = support::dump_tables(&data.join("eval.duckdb"));
    assert_eq!(
        interrupted,
        support::dump_tables(&fresh.join("eval.duckdb")),
        "kills: {kills:?}"
    );

    // Nothing doubled by the stages that were killed: one score per trial, one end of capture
    // per trial, every event id once.
    let events = campaign_events(&log, &campaign_id).await;
    let mut ids = std::collections::BTreeSet::new();
    for event in &events {
        assert!(ids.insert(event.id), "event {} stored twice", event.id);
    }
    // What the capture published, each entry once (the same row captured twice would be the
    // same type, trial and data).
    let mut captured = std::collections::BTreeSet::new();
    for event in &events {
        if matches!(
            event.event_type(),
            "TicketOpened" | "AgentSessionStarted" | "AgentLogRecorded" | "TicketResolved"
        ) {
            let key = (
                event.event_type().to_string(),
                event.trial_id.clone(),
                serde_json::to_string(&event.data).unwrap(),
            );
            assert!(captured.insert(key), "captured twice: {event:?}");
        }
    }
    for event_type in ["TrialScored", "OperatorCaptureFinished"] {
        let mut per_trial = std::collections::BTreeMap::<&str, u32>::new();
        for event in events
            .iter()
            .filter(|event| event.event_type() == event_type)
        {
            *per_trial
                .entry(event.trial_id.as_deref().unwrap())
                .or_default() += 1;
        }
        let ends: Vec<String> = events
            .iter()
            .filter_map(|event| match &event.data {
                EventData::TrialFinished(finished) => {
                    Some(format!("{:?} {:?}", finished.status, finished.reason))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            per_trial.len(),
            trials,
            "{event_type}: {per_trial:?}; the trials ended {ends:?}; the worker said:\n{}",
            std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default()
        );
        assert!(
            per_trial.values().all(|n| *n == 1),
            "{event_type} doubled: {per_trial:?} (kills: {kills:?})"
        );
    }
    TrialRuns::of(&events).assert_each_finished_once_and_cleaned(trials);
    eprintln!(
        "{} kills {kills:?}; {trials} trials scored once each; the projected tables equal a rebuild's",
        kills.len()
    );
}

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

/// A number from the clock, for kill points that differ from run to run.
fn random_below(bound: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos.wrapping_mul(6364136223846793005).rotate_left(17) % bound.max(1)
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_evalctl"));
    command
        .args(args)
        .arg("--nats")
        .arg(nats)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .current_dir(support::repo_root());
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_as_timeout_k_5_stops_it_leaves_nothing_the_next_worker_or_lab_down_stale_does_not_remove()
 {
    if !root_or_skip("run stopped by SIGTERM then SIGKILL") {
        return;
    }
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
        let after = Duration::from_millis(2_000 + random_below(18_000));
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
    use std::collections::BTreeMap;
    if !root_or_skip("workers killed mid-campaign") {
        return;
    }
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("campaign.yaml");
    let trials = 5;
    std::fs::write(
        &file,
        format!("name: killed-workers\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {{target: random, duration_seconds: 2}}\ntrials_per_combination: {trials}\nparallel: 2\ntrial_timeout_seconds: 60\n"),
    )
    .unwrap();
    let published = eval(
        &data,
        nats.url(),
        &["publish", file.to_str().unwrap(), "--json"],
    )
    .output()
    .unwrap();
    assert!(published.status.success(), "{}", text(&published.stderr));
    let report: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let campaign_id = report["campaign_id"].as_str().unwrap().to_string();
    let log = schemas::log::EventLog::connect(nats.url()).await.unwrap();

    let logs = dir.path().to_path_buf();
    let worker = |id: &str| {
        let process = eval(&data, nats.url(), &["worker", "--worker-id", id])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(logs.join(format!("worker-{id}.log"))).unwrap())
            .spawn()
            .unwrap();
        (process, Instant::now())
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
            let after = Duration::from_millis(random_below(2_500));
            tokio::time::sleep(after).await;
            kill(Pid::from_raw(a.0.id() as i32), Signal::SIGKILL).unwrap();
            a.0.wait().unwrap();
            let down = Duration::from_millis(500 + random_below(4_000));
            tokio::time::sleep(down).await;
            a = worker("a");
            kills.push((after, down));
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for (id, (mut process, started)) in [("a", a), ("b", b)] {
        // A worker stops cleanly on SIGTERM once it has installed its handler.
        if let Some(rest) = Duration::from_secs(5).checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        kill(Pid::from_raw(process.id() as i32), Signal::SIGTERM).unwrap();
        let status = process.wait().unwrap();
        let log = std::fs::read_to_string(dir.path().join(format!("worker-{id}.log"))).unwrap();
        assert!(status.success(), "worker {id}: {status}\n{log}");
    }

    let events = campaign_events(&log, &campaign_id).await;
    let mut per_trial = BTreeMap::<String, [u32; 5]>::new();
    for event in &events {
        let Some(trial) = &event.trial_id else {
            continue;
        };
        let counts = per_trial.entry(trial.clone()).or_default();
        match &event.data {
            EventData::TrialFinished(_) => counts[0] += 1,
            EventData::ChaosInjected(_) => counts[1] += 1,
            EventData::ChaosCleanedUp(_) => counts[2] += 1,
            EventData::ChaosCleanupFailed(_) => counts[3] += 1,
            EventData::TrialStarted(_) => counts[4] += 1,
            _ => {}
        }
    }
    assert_eq!(per_trial.len(), trials);
    for (trial, [finished, injected, cleaned, failed, _]) in &per_trial {
        assert_eq!(*finished, 1, "trial {trial} finished {finished} times");
        assert_eq!(
            injected, cleaned,
            "trial {trial}: {injected} faults injected, {cleaned} cleaned up"
        );
        assert_eq!(*failed, 0, "trial {trial}: a cleanup failed");
    }
    let rerun = per_trial.values().filter(|counts| counts[1] > 1).count();
    assert!(rerun > 0, "no kill landed while a fault was on: {kills:?}");
    assert_eq!(processes_naming(&data), Vec::<String>::new());
    assert_eq!(mounts_under(&data), Vec::<String>::new());
    assert_eq!(claims_under(&data), Vec::<u32>::new());
    let injected: u32 = per_trial.values().map(|counts| counts[1]).sum();
    eprintln!(
        "{} kills (after a's trial started, down for): {kills:?}; {trials} trials finished once each, {rerun} of them run again; {injected} faults injected, all cleaned up; nothing left on the host",
        kills.len()
    );
}

//! What the harness refuses to act on, as an attacker would try it with real processes: cleanup
//! records forged into the log (`evalctl chaos cleanup --all`) and crafted or tampered `lab.json`
//! files (`evalctl lab down`). Each test checks the refusal and that nothing outside the lab
//! changed: the victim files are still there, a foreign process still runs (or is still stopped).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use schemas::campaign::{ChaosSpec, DiskPressureParams, LatencyParams, ProcessPauseParams, Target};
use schemas::cleanup::{CleanupRecord, DelaySettings};
use schemas::event::{ChaosInjected, Event, EventData, Producer};
use schemas::log::{EventFilter, EventLog};
use testkit::TemporaryNats;

fn eval(data_dir: &Path, nats: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--nats", nats])
        .env("RUST_LOG", "off")
        .output()
        .expect("evalctl runs")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn both(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A process that is not the harness's: `sleep`, which the test stops itself.
struct Foreign(Child);

impl Foreign {
    fn start() -> Foreign {
        Foreign(Command::new("sleep").arg("600").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn state(&self) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        stat.rsplit_once(')')
            .unwrap()
            .1
            .trim_start()
            .chars()
            .next()
            .unwrap()
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// A file outside every lab that an attack would remove.
fn victim(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "not the harness's").unwrap();
    path
}

fn injected(trial: &str, chaos: ChaosSpec, record: CleanupRecord) -> Event {
    Event::new(
        &Producer::here("attacker"),
        "forged",
        Some(trial),
        EventData::ChaosInjected(ChaosInjected {
            worker: "local".to_string(),
            chaos,
            target: Some("n1".to_string()),
            cleanup: record.into(),
            operator_db: None,
            operator_host: None,
        }),
    )
}

/// Cleanup records forged into the log, each naming something outside the lab through a real
/// lab's directory (or a `..` path that only looks like one), are refused by `evalctl chaos
/// cleanup --all`: each is published as a failed cleanup, and the files and the stopped process
/// they name are as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cleanup_records_are_refused_and_change_nothing() {
    if !chaos::lab::sys::is_root() {
        eprintln!("skipped forged_cleanup_records_are_refused_and_change_nothing: needs root");
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    ok(eval(
        data.path(),
        nats.url(),
        &["lab", "up", "--nodes", "1", "--name", "t1"],
    ));
    let lab_dir = data.path().join("labs/t1").canonicalize().unwrap();
    let fill = victim(outside.path(), "fill");
    let control = victim(outside.path(), "control");
    let stopped = Foreign::start();
    kill(Pid::from_raw(stopped.pid() as i32), Signal::SIGSTOP).unwrap();
    support::wait_until(std::time::Duration::from_secs(5), "sleep to stop", || {
        stopped.state() == 'T'
    });

    let disk = || ChaosSpec::DiskPressure(DiskPressureParams::default());
    let dotdot = data
        .path()
        .join("labs/t1/../../..")
        .join(outside.path().strip_prefix("/").unwrap());
    let forged = [
        injected(
            "dotdot",
            disk(),
            CleanupRecord::DiskPressure {
                lab_dir: dotdot,
                node: 1,
                fill_file: fill.clone(),
                bytes: 1,
            },
        ),
        injected(
            "fill",
            disk(),
            CleanupRecord::DiskPressure {
                lab_dir: lab_dir.clone(),
                node: 1,
                fill_file: fill.clone(),
                bytes: 1,
            },
        ),
        injected(
            "control",
            ChaosSpec::Latency(LatencyParams::default()),
            CleanupRecord::Latency {
                lab_dir: lab_dir.clone(),
                node: 1,
                control: control.clone(),
                settings: DelaySettings {
                    min_ms: 1,
                    max_ms: 1,
                    seed: 1,
                },
            },
        ),
        injected(
            "pause",
            ChaosSpec::ProcessPause(ProcessPauseParams {
                target: Target::Node(1),
                duration_seconds: None,
            }),
            CleanupRecord::ProcessPause {
                lab_dir: lab_dir.clone(),
                node: 1,
                pid: stopped.pid(),
            },
        ),
    ];
    // A record that would pass every check, but from an injection on another host: its lab is
    // that host's, whatever the path says. Its delay control is on here; left alone, it stays.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab_dir.join("lab.json")).unwrap()).unwrap();
    let delay_control = PathBuf::from(state["nodes"][0]["delay_control"].as_str().unwrap());
    let settings = DelaySettings {
        min_ms: 1,
        max_ms: 1,
        seed: 1,
    };
    std::fs::write(&delay_control, serde_json::to_string(&settings).unwrap()).unwrap();
    let mut elsewhere = injected(
        "elsewhere",
        ChaosSpec::Latency(LatencyParams::default()),
        CleanupRecord::Latency {
            lab_dir: lab_dir.clone(),
            node: 1,
            control: delay_control.clone(),
            settings,
        },
    );
    elsewhere.producer.host = "another-host".to_string();

    let log = EventLog::connect(nats.url()).await.unwrap();
    log.ensure_stream().await.unwrap();
    for event in forged.iter().chain([&elsewhere]) {
        log.publish(event).await.unwrap();
    }

    let output = eval(data.path(), nats.url(), &["chaos", "cleanup", "--all"]);
    let printed = both(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("refused 4 cleanup record(s)"), "{printed}");
    assert!(printed.contains("cleaned up 0 fault(s)"), "{printed}");
    assert!(!printed.contains("elsewhere"), "{printed}");
    assert!(delay_control.exists(), "another host's record was acted on");
    std::fs::remove_file(&delay_control).unwrap();
    for (trial, names) in [
        ("dotdot", "is not a lab directory of"),
        ("fill", "not node 1's fill file"),
        ("control", "not node 1's delay control"),
        ("pause", "which is not node 1's process"),
    ] {
        assert!(
            printed
                .lines()
                .any(|line| line.starts_with(&format!("trial {trial}:")) && line.contains(names)),
            "{trial}: {printed}"
        );
    }
    assert!(
        fill.exists() && control.exists(),
        "a victim file was removed"
    );
    assert_eq!(stopped.state(), 'T', "the foreign process was continued");

    // Every refusal is in the log as the cleanup's failure.
    let filter = EventFilter {
        event_type: Some("ChaosCleanupFailed".to_string()),
        ..EventFilter::default()
    };
    let failures: Vec<_> = log.read(&filter, false).await.unwrap().collect().await;
    assert_eq!(failures.len(), 4);

    // The lab itself is untouched and still works.
    let status = ok(eval(data.path(), nats.url(), &["lab", "status", "--json"]));
    let labs: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(labs[0]["health"]["healthy"], true, "{labs}");
    ok(eval(data.path(), nats.url(), &["lab", "down"]));
}

/// `evalctl lab down` on a lab file that names a directory or process the lab did not make: a
/// crafted lab beside a real one is refused before anything is removed; a real lab whose file
/// was tampered with to name a foreign pid is removed without that pid being signalled; a lab
/// file others may write is refused.
#[test]
fn crafted_and_tampered_lab_files_remove_and_kill_nothing_outside() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let precious = victim(outside.path(), "precious");
    let nats = "nats://127.0.0.1:1";
    ok(eval(
        data.path(),
        nats,
        &["lab", "up", "--nodes", "1", "--name", "t1", "--loopback"],
    ));
    let real_dir = data.path().join("labs/t1");
    let real: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(real_dir.join("lab.json")).unwrap()).unwrap();
    let foreign = Foreign::start();

    // A crafted lab: a copy of the real one's state, its directory pointed outside.
    let evil_dir = data.path().join("labs/evil");
    std::fs::create_dir(&evil_dir).unwrap();
    let craft = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut state = real.clone();
        state["name"] = "evil".into();
        edit(&mut state);
        std::fs::write(evil_dir.join("lab.json"), state.to_string()).unwrap();
    };
    craft(&|state| state["dir"] = outside.path().display().to_string().into());
    let output = eval(data.path(), nats, &["lab", "down", "--all"]);
    assert!(!output.status.success(), "{}", both(&output));
    assert!(
        both(&output).contains("names the directory"),
        "{}",
        both(&output)
    );
    let evil_dir_canonical = evil_dir.canonicalize().unwrap();
    craft(&|state| {
        state["dir"] = evil_dir_canonical.display().to_string().into();
        state["nodes"][0]["data_dir"] = outside.path().display().to_string().into();
        state["nodes"][0]["pid"] = foreign.pid().into();
    });
    let output = eval(data.path(), nats, &["lab", "down", "--all"]);
    assert!(!output.status.success(), "{}", both(&output));
    assert!(
        both(&output).contains("is not laid out as the lab lays out node 1"),
        "{}",
        both(&output)
    );
    assert!(precious.exists() && outside.path().exists());
    assert!(real_dir.join("lab.json").exists(), "the real lab went too");
    assert_eq!(foreign.state(), 'S', "the foreign process was signalled");
    std::fs::remove_dir_all(&evil_dir).unwrap();

    // A file others may write is refused whatever it says.
    let file = real_dir.join("lab.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = eval(data.path(), nats, &["lab", "status"]);
    assert!(!output.status.success(), "{}", both(&output));
    assert!(
        both(&output).contains("writable by its group or by others"),
        "{}",
        both(&output)
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    // The real lab, tampered with: its node's pid is now a foreign process's.
    let mut tampered = real.clone();
    tampered["nodes"][0]["pid"] = foreign.pid().into();
    tampered["nodes"][0]
        .as_object_mut()
        .unwrap()
        .remove("pid_started");
    std::fs::write(&file, tampered.to_string()).unwrap();
    let node_pid = real["nodes"][0]["pid"].as_u64().unwrap() as i32;
    ok(eval(data.path(), nats, &["lab", "down", "--all"]));
    assert!(!real_dir.exists(), "the real lab was not removed");
    assert_eq!(foreign.state(), 'S', "the foreign process was signalled");
    // The real node the file no longer names is the lab's to stop, not ours: stop it here.
    let _ = kill(Pid::from_raw(node_pid), Signal::SIGKILL);
}

/// A campaign in the log whose variant names a command this host does not allow: the worker
/// ends the trial `errored` with the reason, and the command never runs. With a directory of
/// allowed variants the same name with another command is refused too; without one, every
/// managed operator is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_only_the_operator_commands_its_host_allows() {
    if !chaos::lab::sys::is_root() {
        eprintln!("skipped a_worker_runs_only_the_operator_commands_its_host_allows: needs root");
        return;
    }
    let nats = TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let marker = dir.path().join("pwned");
    // The campaign as an attacker publishes it: variant `careful` runs a command of theirs.
    let published = dir.path().join("published");
    std::fs::create_dir_all(published.join("variants")).unwrap();
    std::fs::write(
        published.join("variants/careful.yaml"),
        format!(
            "name: careful\nmodel: m\ncommand: [touch, {}]\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        published.join("campaign.yaml"),
        "name: forged\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n    params: {target: 3}\nvariant: careful\ntrial_timeout_seconds: 30\n",
    )
    .unwrap();
    // What this host allows: `careful` with its real command.
    let allowed = dir.path().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(
        allowed.join("careful.yaml"),
        "name: careful\nmodel: m\ncommand: [eval, operator, run]\n",
    )
    .unwrap();

    let log = EventLog::connect(nats.url()).await.unwrap();
    let campaign = published.join("campaign.yaml");
    for (allow, says) in [
        (Some(&allowed), "differs from the one this host allows"),
        (None, "this worker allows no operator commands"),
    ] {
        let output = eval(
            &data,
            nats.url(),
            &["publish", campaign.to_str().unwrap(), "--json"],
        );
        let report: serde_json::Value =
            serde_json::from_str(&ok(output)).expect("publish prints JSON");
        let campaign_id = report["campaign_id"].as_str().unwrap().to_string();
        let mut worker = Command::new(env!("CARGO_BIN_EXE_evalctl"));
        worker
            .args([
                "worker",
                "--worker-id",
                "w",
                "--nats",
                nats.url(),
                "--data-dir",
            ])
            .arg(&data)
            .env("RUST_LOG", "off")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(allowed) = allow {
            worker.arg("--allow-variants").arg(allowed);
        }
        let mut worker = worker.spawn().unwrap();
        let filter = EventFilter {
            campaign_id: Some(campaign_id.clone()),
            event_type: Some("TrialFinished".to_string()),
            ..EventFilter::default()
        };
        let started = std::time::Instant::now();
        let finished = loop {
            let found: Vec<_> = log.read(&filter, false).await.unwrap().collect().await;
            if let Some(found) = found.into_iter().next() {
                break found.unwrap().event.unwrap();
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "no TrialFinished"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        kill(Pid::from_raw(worker.id() as i32), Signal::SIGTERM).unwrap();
        worker.wait().unwrap();
        let EventData::TrialFinished(end) = finished.data else {
            panic!("{finished:?}")
        };
        assert_eq!(end.status, schemas::event::TrialStatus::Errored);
        let reason = end.reason.unwrap_or_default();
        assert!(reason.contains(says), "{reason}");
        assert!(!marker.exists(), "the forged command ran");
    }
}

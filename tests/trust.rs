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

/// A root worker runs a managed operator as `nobody`, in a directory of its own under
/// /var/lib/eval/operators (whatever the data dir's parents allow), with the lab broker and none
/// of the harness's NATS settings: it cannot read a file of root's or write into the data dir.
#[test]
fn a_root_worker_runs_its_operator_as_nobody_with_nothing_of_root_s() {
    if !chaos::lab::sys::is_root() {
        eprintln!(
            "skipped a_root_worker_runs_its_operator_as_nobody_with_nothing_of_root_s: needs root"
        );
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = runtime.block_on(TemporaryNats::start()).unwrap();
    // A directory of root's alone (0700, as /root is): the operator could not reach a data dir
    // here.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "root's").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!(
        "id -u > \"$HOME/uid\"; env > \"$HOME/env\"; cat {secret} > /dev/null 2>&1; echo $? > \"$HOME/secret.rc\"; touch {data}/planted 2> /dev/null; echo $? > \"$HOME/plant.rc\"; echo done > \"$HOME/done\"; sleep 30",
        secret = secret.display(),
        data = data.display(),
    );
    std::fs::create_dir_all(dir.path().join("variants")).unwrap();
    std::fs::write(
        dir.path().join("variants/probe.yaml"),
        format!("name: probe\nmodel: m\ncommand: [sh, -c, '{script}']\n"),
    )
    .unwrap();
    let campaign = dir.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: unprivileged\nsubjects: [etcd]\nchaos_types:\n  - type: none\n    params: {duration_seconds: 3}\nvariant: probe\ninclude_baseline: false\ntrial_timeout_seconds: 20\n",
    )
    .unwrap();
    let output = eval(
        &data,
        nats.url(),
        &["run", "campaign", campaign.to_str().unwrap(), "--json"],
    );
    assert!(output.status.code() != Some(2), "{}", both(&output));

    let operators = chaos::operator::operators_dir(&data).unwrap();
    let trials: Vec<PathBuf> = std::fs::read_dir(&operators)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(trials.len(), 1, "{trials:?}");
    let work = trials[0].join("work");
    let read = |name: &str| {
        std::fs::read_to_string(work.join(name))
            .unwrap_or_else(|error| panic!("{name}: {error}; {}", both(&output)))
    };
    assert_eq!(read("done").trim(), "done");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    assert_eq!(read("uid").trim(), nobody.uid.to_string());
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&work).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (nobody.uid.as_raw(), 0o700)
    );
    // Root's directories stayed closed to it.
    assert_ne!(
        read("secret.rc").trim(),
        "0",
        "it read a file inside root's directory"
    );
    assert_ne!(read("plant.rc").trim(), "0", "it wrote into the data dir");
    assert!(!data.join("planted").exists());
    let env = read("env");
    assert!(!env.contains("NATS"), "{env}");
    assert!(env.contains(&format!("HOME={}", work.display())), "{env}");
    assert!(
        env.contains(&format!(
            "EVAL_LAB_BROKER={}",
            trials[0].join("lab.sock").display()
        )),
        "{env}"
    );
    assert!(
        !trials[0].join("lab.sock").exists(),
        "the broker outlived its trial"
    );
    // The trial's operator.db is where the capture looked for it.
    let events = ok(eval(
        &data,
        nats.url(),
        &["events", "--json", "--type", "ChaosInjected"],
    ));
    assert!(
        events.contains(&work.join("operator.db").display().to_string()),
        "{events}"
    );
    std::fs::remove_dir_all(&operators).unwrap();
}

/// The lab broker answers its trial's operator alone, and only about the trial's lab: `evalctl
/// lab status` and `lab node` run as `nobody` reach that lab through it, another lab's name is
/// refused, and so is any other user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_broker_answers_its_operator_only_and_only_about_its_lab() {
    use std::os::unix::process::CommandExt;
    if !chaos::lab::sys::is_root() {
        eprintln!(
            "skipped the_lab_broker_answers_its_operator_only_and_only_about_its_lab: needs root"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(eval(
        &data,
        "nats://127.0.0.1:1",
        &["lab", "up", "--name", "brokered", "--nodes", "1"],
    ));
    // A failing assertion still removes the lab (a node it paused included).
    struct LabDown<'a>(&'a Path);
    impl Drop for LabDown<'_> {
        fn drop(&mut self) {
            let _ = eval(self.0, "nats://127.0.0.1:1", &["lab", "down", "--all"]);
        }
    }
    let _lab_down = LabDown(&data);
    // The operator's side: evalctl where nobody can run it, and the socket in a directory it can
    // enter.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = open.path().join("evalctl");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_evalctl"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_evalctl"), &binary).unwrap();
    }
    let socket = open.path().join("lab.sock");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let broker = chaos::broker::Broker::start(&socket, &data, "brokered", uid, gid).unwrap();
    // The broker serves on this runtime while the command, run here, waits for its answer.
    let as_user = |uid: u32, args: &[&str]| {
        tokio::task::block_in_place(|| {
            Command::new(&binary)
                .args(args)
                .uid(uid)
                .gid(gid)
                .current_dir(open.path())
                .env("EVAL_LAB_BROKER", &socket)
                .env("RUST_LOG", "off")
                .output()
                .unwrap()
        })
    };

    let status: serde_json::Value =
        serde_json::from_str(&ok(as_user(uid, &["lab", "status", "--json"]))).unwrap();
    assert_eq!(status[0]["lab"]["name"], "brokered", "{status}");
    assert_eq!(status[0]["nodes"][0]["process"], "running", "{status}");
    // The node's state as the lab reads it from /proc (a stop signal takes a moment).
    let node_state = |wanted: &str| {
        let started = std::time::Instant::now();
        loop {
            let status: serde_json::Value =
                serde_json::from_str(&ok(as_user(uid, &["lab", "status", "--json"]))).unwrap();
            let state = status[0]["nodes"][0]["process"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if state == wanted || started.elapsed() > std::time::Duration::from_secs(5) {
                return state;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let paused = ok(as_user(uid, &["lab", "node", "pause", "1"]));
    assert!(paused.starts_with("node 1 of lab brokered: "), "{paused}");
    assert_eq!(node_state("paused"), "paused");
    let resumed = ok(as_user(
        uid,
        &["lab", "node", "resume", "1", "--name", "brokered"],
    ));
    assert!(resumed.starts_with("node 1 of lab brokered: "), "{resumed}");
    assert_eq!(node_state("running"), "running");

    // Another lab, by name: refused, and nothing is done.
    let other = as_user(uid, &["lab", "node", "stop", "1", "--name", "other"]);
    assert!(!other.status.success());
    assert!(
        both(&other).contains("may not touch another lab"),
        "{}",
        both(&other)
    );
    // Another user: the socket is not theirs; let in by its mode, the broker still refuses them.
    let stranger = as_user(uid - 1, &["lab", "status", "--json"]);
    assert!(!stranger.status.success(), "{}", both(&stranger));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let stranger = as_user(uid - 1, &["lab", "node", "stop", "1"]);
    assert!(
        both(&stranger).contains("is not this trial's operator"),
        "{}",
        both(&stranger)
    );
    assert_eq!(node_state("running"), "running");

    drop(broker);
    assert!(!socket.exists(), "the broker's socket outlived it");
    ok(eval(&data, "nats://127.0.0.1:1", &["lab", "down", "--all"]));
    assert!(chaos::lab::Lab::list(&data).unwrap().is_empty());
}

//! Whole TiKV trials through the `evalctl` program: the TiKV quickstart on the real programs
//! where this host has them (skipped with the reason where it has not, as on this project's
//! machines), and a worker on a host without them, which ends such a trial before starting
//! anything.

mod support;

use std::time::Duration;

use chaos::tikv::binaries::SearchPlaces;

/// The real programs, where this host has them: the TiKV quickstart runs real trials on a real
/// TiKV lab (as root: its faults need namespaces) and every one of them finishes.
#[tokio::test]
async fn a_real_tikv_cluster_runs_the_tikv_quickstart() {
    if let Err(missing) = SearchPlaces::here(None).binaries() {
        eprintln!("skipped a_real_tikv_cluster_runs_the_tikv_quickstart: {missing}");
        return;
    }
    if !chaos::lab::sys::is_root() {
        eprintln!(
            "skipped a_real_tikv_cluster_runs_the_tikv_quickstart: needs root for the lab's namespaces"
        );
        return;
    }
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let output = support::eval(
        nats.url(),
        &[
            "run",
            "campaign",
            "campaigns/tikv-quickstart.yaml",
            "--json",
            "--data-dir",
            &data_dir,
        ],
    );
    let stdout = support::text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        support::text(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let cells = report["cells"].as_array().unwrap();
    assert!(!cells.is_empty(), "{stdout}");
    for cell in cells {
        assert_eq!(cell["statuses"].get("errored"), None, "{stdout}");
    }
}

/// A TiKV trial published for workers elsewhere (`publish --no-preflight`) and taken by a worker
/// on a host without the binaries ends `errored` with the reason, before any lab is made.
#[tokio::test]
async fn a_worker_without_the_binaries_ends_a_tikv_trial_before_starting_anything() {
    use futures::StreamExt;
    use schemas::event::EventData;
    use schemas::log::{EventFilter, EventLog};
    let nats = testkit::TemporaryNats::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-binaries");
    std::fs::create_dir(&empty).unwrap();
    let campaign = dir.path().join("tikv.yaml");
    std::fs::write(
        &campaign,
        "name: for a host with TiKV\nsubjects: [tikv]\nchaos_types: [{type: node_kill}]\n",
    )
    .unwrap();
    let output = support::eval(
        nats.url(),
        &[
            "publish",
            &campaign.display().to_string(),
            "--no-preflight",
            "--campaign-id",
            "tikv-elsewhere",
            "--data-dir",
            &dir.path().display().to_string(),
        ],
    );
    assert!(output.status.success(), "{}", support::text(&output.stderr));
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_evalctl"))
        .args(["worker", "--nats", nats.url(), "--data-dir"])
        .arg(dir.path())
        // Nowhere to find them: no directory named, an empty PATH entry, a home without TiUP.
        .env("EVAL_TIKV_BIN_DIR", &empty)
        .env("PATH", format!("{}:/usr/bin:/bin", empty.display()))
        .env("HOME", &empty)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    let filter = EventFilter {
        campaign_id: Some("tikv-elsewhere".to_string()),
        ..EventFilter::default()
    };
    let started = std::time::Instant::now();
    let events = loop {
        let events: Vec<_> = log.read(&filter, false).await.unwrap().collect().await;
        let events: Vec<schemas::event::Event> = events
            .into_iter()
            .map(|read| read.unwrap().event.unwrap())
            .collect();
        if events
            .iter()
            .any(|event| event.event_type() == "TrialFinished")
        {
            break events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no TrialFinished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    worker.wait().unwrap();
    let types: Vec<&str> = events.iter().map(|event| event.event_type()).collect();
    assert_eq!(
        types,
        [
            "CampaignPublished",
            "TrialRequested",
            "TrialStarted",
            "TrialFinished"
        ]
    );
    let EventData::TrialFinished(end) = &events[3].data else {
        panic!("{:?}", events[3])
    };
    assert_eq!(end.status, schemas::event::TrialStatus::Errored);
    let reason = end.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("tikv on the lab runtime on this worker's host: pd-server and tikv-server not found; looked in subject_settings.tikv.binaries (not set), EVAL_TIKV_BIN_DIR ("),
        "{reason}"
    );
    assert!(
        !dir.path().join("labs").exists()
            || std::fs::read_dir(dir.path().join("labs"))
                .unwrap()
                .next()
                .is_none()
    );
}

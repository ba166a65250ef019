//! The harness on a three-member JetStream cluster of real nats-servers (`testkit::TemporaryCluster`):
//! the stream's replicas as `--replicas` asks and checked after, and a campaign that completes,
//! with no event lost or doubled, while members are killed with SIGKILL and restarted under it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemas::event::EventData;
use schemas::log::{EventFilter, EventLog, PUBLISHED_LOG, STREAM_NAME};
use support::text;
use testkit::{TemporaryCluster, TemporaryNats};

fn eval(nats: &str, data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_evalctl"));
    command
        .args(args)
        .env("EVAL_NATS_URL", nats)
        .env("EVAL_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .current_dir(support::repo_root());
    command
}

const CAMPAIGN: &str = "name: cluster\nsubjects: [etcd]\nchaos_types:\n  - type: process_pause\n    params: {target: 2, duration_seconds: 1}\ntrials_per_combination: 4\ntrial_timeout_seconds: 60\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_keeps_the_replicas_asked_and_another_count_is_refused() {
    let cluster = TemporaryCluster::start(3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("campaign.yaml");
    std::fs::write(&file, CAMPAIGN).unwrap();
    let published = eval(
        &cluster.urls(),
        &data,
        &["publish", file.to_str().unwrap(), "--replicas", "3"],
    )
    .output()
    .unwrap();
    assert!(published.status.success(), "{}", text(&published.stderr));

    let log = EventLog::connect(&cluster.urls()).await.unwrap();
    let mut stream = log.jetstream().get_stream(STREAM_NAME).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let placed = info
        .cluster
        .clone()
        .expect("a clustered stream says where it is");
    assert_eq!(
        placed.replicas.len(),
        2,
        "a leader and two replicas: {placed:?}"
    );

    // Another count is refused, naming both counts and the fix; without --replicas the stream is
    // used as it is.
    let refused = eval(
        &cluster.urls(),
        &data,
        &["project", "--until-caught-up", "--replicas", "1"],
    )
    .output()
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let said = text(&refused.stderr);
    assert!(
        said.contains("it keeps 3 replicas, --replicas asks 1")
            && said.contains("nats stream edit EVAL --replicas 1"),
        "{said}"
    );
    let used = eval(&cluster.urls(), &data, &["project", "--until-caught-up"])
        .output()
        .unwrap();
    assert!(used.status.success(), "{}", text(&used.stderr));

    // One server cannot keep three copies: the error says what replicas need.
    let single = TemporaryNats::start().await.unwrap();
    let lonely = eval(
        single.url(),
        &dir.path().join("single"),
        &["publish", file.to_str().unwrap(), "--replicas", "3"],
    )
    .output()
    .unwrap();
    assert_eq!(lonely.status.code(), Some(1));
    assert!(
        text(&lonely.stderr).contains("replicas need a JetStream cluster of at least 3 servers"),
        "{}",
        text(&lonely.stderr)
    );
}

/// Every `id=` of the process's `eval_published` lines.
fn reported_ids(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|line| line.contains(PUBLISHED_LOG))
        .filter_map(|line| {
            let start = line.find(" id=")? + 4;
            let id = &line[start..];
            Some(id[..id.find(' ').unwrap_or(id.len())].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_completes_with_nothing_lost_or_doubled_while_cluster_members_are_killed() {
    let mut cluster = TemporaryCluster::start(3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("campaign.yaml");
    std::fs::write(&file, CAMPAIGN).unwrap();
    let stderr_file = dir.path().join("run.stderr");
    let mut run = eval(
        &cluster.urls(),
        &data,
        &[
            "run",
            "campaign",
            file.to_str().unwrap(),
            "--replicas",
            "3",
            "--json",
        ],
    )
    .env("RUST_LOG", format!("warn,{PUBLISHED_LOG}=debug"))
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&stderr_file).unwrap())
    .spawn()
    .unwrap();

    // Kill a random member at random moments while the campaign runs, one at a time, and start
    // it again on its store; a majority stays up throughout.
    let mut kills = Vec::new();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the campaign did not finish"
        );
        let member = support::random_below(3) as usize;
        let before = Duration::from_millis(2_000 + support::random_below(6_000));
        let down = Duration::from_millis(500 + support::random_below(4_000));
        tokio::time::sleep(before).await;
        if run.try_wait().unwrap().is_some() {
            continue;
        }
        cluster.cluster.kill(member);
        tokio::time::sleep(down).await;
        cluster.cluster.restart(member).await.unwrap();
        kills.push((member, before, down));
    };
    let mut stdout = String::new();
    run.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    eprintln!("kills (member, after, down for): {kills:?}");
    assert!(status.success(), "run failed ({status}): {stderr}");
    assert!(!kills.is_empty(), "the campaign ended before any kill");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let campaign_id = summary["campaign_id"].as_str().unwrap();

    // The stream against what the process reported: every acknowledged event is stored once,
    // and nothing else is.
    let log = EventLog::connect(&cluster.urls()).await.unwrap();
    let messages = log
        .read_messages_from(&EventFilter::default(), 1, false)
        .await
        .unwrap();
    let stored: Vec<_> = messages.map(|message| message.unwrap()).collect().await;
    let mut stored_ids = BTreeMap::<String, u32>::new();
    for message in &stored {
        *stored_ids
            .entry(message.msg_id.clone().expect("every event has its id"))
            .or_default() += 1;
    }
    let doubled: Vec<_> = stored_ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "events stored twice: {doubled:?}");
    let reported: BTreeSet<String> = reported_ids(&stderr).into_iter().collect();
    let stored_set: BTreeSet<String> = stored_ids.keys().cloned().collect();
    let lost: Vec<_> = reported.difference(&stored_set).collect();
    let unreported: Vec<_> = stored_set.difference(&reported).collect();
    assert!(lost.is_empty(), "acknowledged, then lost: {lost:?}");
    assert!(
        unreported.is_empty(),
        "stored but never reported: {unreported:?}"
    );

    // Every trial ran to its end exactly once, and was scored.
    let mut finished = BTreeMap::<String, u32>::new();
    let mut scored = BTreeSet::new();
    for message in stored {
        let event = message.into_event().event.unwrap();
        assert_eq!(event.campaign_id, campaign_id);
        match event.data {
            EventData::TrialFinished(_) => {
                *finished.entry(event.trial_id.unwrap()).or_default() += 1;
            }
            EventData::TrialScored(_) => {
                scored.insert(event.trial_id.unwrap());
            }
            _ => {}
        }
    }
    let run_said: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.contains(PUBLISHED_LOG))
        .collect();
    assert_eq!(
        finished.len(),
        4,
        "{finished:?}\nrun printed:\n{}\nstdout: {stdout}",
        run_said.join("\n")
    );
    assert!(finished.values().all(|n| *n == 1), "{finished:?}");
    assert_eq!(scored.len(), 4);
    eprintln!(
        "{} kills; {} trials finished once each; {} events stored, 0 lost, 0 doubled",
        kills.len(),
        finished.len(),
        stored_set.len()
    );
}

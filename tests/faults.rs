//! Every fault on a real 3-node etcd lab, verified real: the process is gone or stopped, round
//! trips grow, packets are lost, peers are cut off, the disk fills; and every cleanup puts the
//! lab back with nothing left behind. Needs root (namespaces, nftables, tmpfs): skipped with a
//! printed reason otherwise.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chaos::etcd::{EtcdLab, EtcdSubject};
use chaos::faults::{self, CleanupRecord};
use chaos::lab::{Isolation, sys};
use schemas::campaign::{
    ChaosSpec, DiskPressureParams, LatencyParams, NetworkPartitionParams, NodeKillParams,
    PacketLossParams, ProcessPauseParams, Target, TargetChoice,
};

fn root_or_skip(test: &str) -> bool {
    if sys::is_root() {
        return true;
    }
    eprintln!("skipped {test}: needs root for network namespaces, nftables and tmpfs");
    false
}

/// A healthy 3-node lab in a temporary data dir, removed (and checked gone) by `finish`, or by
/// `evalctl lab down` when a failing test drops it, so that no lab outlives its test.
struct TestLab {
    subject: EtcdLab,
    dir: tempfile::TempDir,
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if self.subject.lab.state.dir.join("lab.json").exists() {
            let _ = std::process::Command::new(env!("CARGO_BIN_EXE_evalctl"))
                .args(["lab", "down", "--all", "--data-dir"])
                .arg(self.dir.path())
                .status();
        }
    }
}

impl TestLab {
    async fn start() -> TestLab {
        // The lab runs `evalctl lab proxy` from the binary under test.
        chaos::lab::set_eval_binary(env!("CARGO_BIN_EXE_evalctl"));
        let dir = tempfile::tempdir().unwrap();
        let mut subject = EtcdLab::create(dir.path(), None, 3, Isolation::Namespaces)
            .await
            .unwrap();
        subject.reset().await.unwrap();
        subject.wait_healthy(Duration::from_secs(30)).await.unwrap();
        TestLab { subject, dir }
    }

    async fn inject(&mut self, chaos: ChaosSpec) -> CleanupRecord {
        let record = faults::plan(&EtcdSubject, &self.subject.lab, &chaos, 7)
            .await
            .unwrap();
        faults::apply(&EtcdSubject, &self.subject.lab, &record)
            .await
            .unwrap();
        record
    }

    /// Cleans up, checks nothing is left and the cluster is healthy, removes the lab and checks
    /// its namespaces are gone.
    async fn finish(mut self, record: &CleanupRecord) {
        faults::cleanup(&EtcdSubject, &mut self.subject.lab, record)
            .await
            .unwrap();
        assert_eq!(
            faults::leftovers(&EtcdSubject, &self.subject.lab, record)
                .await
                .unwrap(),
            Vec::<String>::new()
        );
        if let Err(error) = self.subject.wait_healthy(Duration::from_secs(30)).await {
            let logs: Vec<String> = self
                .subject
                .lab
                .state
                .nodes
                .iter()
                .map(|node| {
                    let log = std::fs::read_to_string(node.log_file()).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    format!("{}: {}", node.name, tail.join("\n"))
                })
                .collect();
            panic!("not healthy after cleanup: {error}\n{}", logs.join("\n"));
        }
        let namespaces: Vec<String> = self
            .subject
            .lab
            .state
            .nodes
            .iter()
            .filter_map(|node| node.netns.clone())
            .collect();
        self.subject.lab.clone().destroy().await.unwrap();
        for netns in namespaces {
            assert!(
                !std::path::Path::new("/run/netns").join(&netns).exists(),
                "{netns} left behind"
            );
        }
    }

    fn ip(&self, node: u32) -> IpAddr {
        self.subject.lab.node(node).unwrap().client_addr.ip()
    }
}

async fn median_round_trip(subject: &EtcdLab, node: u32) -> Duration {
    let node = subject.lab.node(node).unwrap().clone();
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        subject.member_status(&node).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    samples[2]
}

/// Round-trip loss in percent of `count` pings from `netns` (or the host) to `to`.
async fn ping_loss(netns: Option<&str>, to: IpAddr, count: u32) -> f64 {
    let mut args: Vec<String> = Vec::new();
    if let Some(netns) = netns {
        args.extend(["netns", "exec", netns, "ping"].map(String::from));
    }
    args.extend([
        "-q".into(),
        "-n".into(),
        "-c".into(),
        count.to_string(),
        "-i".into(),
        "0.005".into(),
        "-W".into(),
        "1".into(),
        to.to_string(),
    ]);
    let program = if netns.is_some() { "ip" } else { "ping" };
    let output = tokio::process::Command::new(program)
        .args(&args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let loss = text
        .split(',')
        .find(|part| part.contains("packet loss"))
        .and_then(|part| part.trim().split('%').next())
        .and_then(|number| number.trim().parse::<f64>().ok());
    loss.unwrap_or_else(|| panic!("no loss figure in ping output: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn node_kill_kills_the_process_and_cleanup_restarts_it() {
    if !root_or_skip("node_kill") {
        return;
    }
    let mut lab = TestLab::start().await;
    let record = lab
        .inject(ChaosSpec::NodeKill(NodeKillParams {
            target: Target::Node(2),
        }))
        .await;
    let CleanupRecord::NodeKill { pid, node: 2, .. } = record else {
        panic!("{record:?}")
    };
    assert!(!sys::process_alive(pid), "pid {pid} still runs");
    let health = lab.subject.health().await;
    assert!(!health.healthy);
    assert!(health.reason.unwrap().contains("n2"));
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn process_pause_stops_the_process_and_requests_time_out() {
    if !root_or_skip("process_pause") {
        return;
    }
    let mut lab = TestLab::start().await;
    let record = lab
        .inject(ChaosSpec::ProcessPause(ProcessPauseParams {
            target: Target::Choice(TargetChoice::Leader),
            duration_seconds: None,
        }))
        .await;
    let CleanupRecord::ProcessPause { pid, node, .. } = record.clone() else {
        panic!("{record:?}")
    };
    assert_eq!(sys::process_state(pid), Some('T'));
    let paused = lab.subject.lab.node(node).unwrap().clone();
    let error = lab.subject.member_status(&paused).await.unwrap_err();
    assert!(error.to_string().contains("timed out"), "{error}");
    lab.finish(&record).await;
    assert_ne!(sys::process_state(pid), Some('T'));
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_grows_round_trips_by_at_least_the_delay() {
    if !root_or_skip("latency") {
        return;
    }
    let mut lab = TestLab::start().await;
    let before = median_round_trip(&lab.subject, 1).await;
    let record = lab
        .inject(ChaosSpec::Latency(LatencyParams {
            target: Target::Node(1),
            min_ms: 100,
            max_ms: 150,
            duration_seconds: None,
        }))
        .await;
    // Let the proxy notice its control file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = median_round_trip(&lab.subject, 1).await;
    assert!(
        during >= before + Duration::from_millis(100),
        "round trip {before:?} before, {during:?} during a 100–150 ms delay"
    );
    let health = lab.subject.health().await;
    assert!(
        health.reason.as_deref().unwrap_or("").contains("slow"),
        "{health:?}"
    );
    let other = median_round_trip(&lab.subject, 2).await;
    assert!(
        other < Duration::from_millis(100),
        "node 2 is not delayed: {other:?}"
    );
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn packet_loss_drops_the_given_share() {
    if !root_or_skip("packet_loss") {
        return;
    }
    let mut lab = TestLab::start().await;
    let target = lab.ip(2);
    assert_eq!(ping_loss(None, target, 50).await, 0.0);
    let record = lab
        .inject(ChaosSpec::PacketLoss(PacketLossParams {
            target: Target::Node(2),
            percent: 30,
            duration_seconds: None,
        }))
        .await;
    // Each direction drops 30%, so an echo and its reply both pass with 0.7² = 49%.
    let loss = ping_loss(None, target, 400).await;
    assert!(
        (39.0..=63.0).contains(&loss),
        "round-trip loss {loss}% for 30% per direction"
    );
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_partition_isolates_a_node_and_the_rest_keep_a_leader() {
    if !root_or_skip("network_partition") {
        return;
    }
    let mut lab = TestLab::start().await;
    let record = lab
        .inject(ChaosSpec::NetworkPartition(NetworkPartitionParams {
            target: Target::Node(1),
            groups: None,
            asymmetric: false,
            duration_seconds: None,
        }))
        .await;
    let isolated_ns = lab.subject.lab.node(1).unwrap().netns.clone().unwrap();
    for peer in [2, 3] {
        assert_eq!(ping_loss(Some(&isolated_ns), lab.ip(peer), 5).await, 100.0);
    }
    // Nodes 2 and 3 agree on a leader among themselves.
    let started = Instant::now();
    loop {
        let statuses = lab.subject.statuses().await;
        let leaders: Vec<String> = statuses[1..]
            .iter()
            .filter_map(|(_, status)| status.as_ref().ok().map(|(s, _)| s.leader.clone()))
            .collect();
        let ids: Vec<String> = statuses[1..]
            .iter()
            .filter_map(|(_, status)| status.as_ref().ok().map(|(s, _)| s.member_id.clone()))
            .collect();
        if leaders.len() == 2 && leaders[0] == leaders[1] && ids.contains(&leaders[0]) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no leader among 2 and 3: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn asymmetric_partition_drops_one_direction_only() {
    if !root_or_skip("asymmetric network_partition") {
        return;
    }
    let mut lab = TestLab::start().await;
    let record = lab
        .inject(ChaosSpec::NetworkPartition(NetworkPartitionParams {
            target: Target::Choice(TargetChoice::Random),
            groups: Some(vec![vec![3], vec![1, 2]]),
            asymmetric: true,
            duration_seconds: None,
        }))
        .await;
    let chains = |node: u32| lab.subject.lab.node(node).unwrap().netns.clone().unwrap();
    assert_eq!(
        chaos::nft::list_chains(&chains(3)).await.unwrap(),
        vec!["partition_out"]
    );
    assert!(
        chaos::nft::list_chains(&chains(1))
            .await
            .unwrap()
            .is_empty()
    );
    // Node 3 cannot send to 1 (its echo requests are dropped on the way out)…
    assert_eq!(ping_loss(Some(&chains(3)), lab.ip(1), 3).await, 100.0);
    // …while the host, outside the groups, still reaches it.
    assert_eq!(ping_loss(None, lab.ip(3), 3).await, 0.0);
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_pressure_fills_the_nodes_own_filesystem() {
    if !root_or_skip("disk_pressure") {
        return;
    }
    let mut lab = TestLab::start().await;
    let record = lab
        .inject(ChaosSpec::DiskPressure(DiskPressureParams {
            target: Target::Node(3),
            fill_percent: 90,
            duration_seconds: None,
        }))
        .await;
    let (total, used) = lab.subject.lab.disk_usage(3).unwrap();
    let percent = used as f64 * 100.0 / total as f64;
    assert!(
        (89.0..=92.0).contains(&percent),
        "node 3's filesystem is {percent:.1}% full"
    );
    let (total_1, used_1) = lab.subject.lab.disk_usage(1).unwrap();
    assert!(
        (used_1 as f64) < total_1 as f64 * 0.8,
        "node 1 was filled too"
    );
    let CleanupRecord::DiskPressure { fill_file, .. } = &record else {
        panic!()
    };
    assert!(fill_file.starts_with(&lab.subject.lab.node(3).unwrap().data_dir));
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_takes_the_member_down_and_cleanup_brings_it_back() {
    if !root_or_skip("disk_pressure at 100%") {
        return;
    }
    let mut lab = TestLab::start().await;
    let record = lab
        .inject(ChaosSpec::DiskPressure(DiskPressureParams {
            target: Target::Node(2),
            fill_percent: 100,
            duration_seconds: None,
        }))
        .await;
    // Writes reach node 2 through raft; etcd 3.4 exits when its backend meets ENOSPC.
    let endpoint = lab.subject.lab.node(1).unwrap().client_addr;
    let started = Instant::now();
    let mut key = 0u32;
    while lab.subject.lab.node(2).unwrap().running() {
        let value = "A".repeat(4096);
        let body = serde_json::json!({"key": format!("{:x}", key), "value": value});
        let _ = chaos::http::post_json(endpoint, "/v3/kv/put", &body, Duration::from_secs(2)).await;
        key += 1;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node 2 survived a full disk"
        );
    }
    let log = std::fs::read_to_string(lab.subject.lab.node(2).unwrap().log_file()).unwrap();
    assert!(
        log.contains("no space left on device"),
        "node 2's log: {log}"
    );
    lab.finish(&record).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_labs_run_side_by_side_without_sharing() {
    if !root_or_skip("parallel labs") {
        return;
    }
    let (a, b) = tokio::join!(TestLab::start(), TestLab::start());
    let state = (&a.subject.lab.state, &b.subject.lab.state);
    assert_ne!(state.0.index, state.1.index);
    assert_ne!(state.0.nodes[0].netns, state.1.nodes[0].netns);
    assert_ne!(state.0.nodes[0].client_addr, state.1.nodes[0].client_addr);
    // A fault in one does not touch the other.
    let mut a = a;
    let record = a
        .inject(ChaosSpec::NodeKill(NodeKillParams {
            target: Target::Node(1),
        }))
        .await;
    assert!(!a.subject.health().await.healthy);
    assert!(b.subject.health().await.healthy);
    a.finish(&record).await;
    b.subject.lab.clone().destroy().await.unwrap();
}

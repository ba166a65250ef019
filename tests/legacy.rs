//! The seed harness's real `eval.db` end to end: imported into a real nats-server, re-scored,
//! projected into DuckDB, and read by `analyze`, `compare`, `compare-baseline` and
//! `compare-variants` (the JSON their `--json` prints), whose counts, win rates, mean times and
//! command figures must be the ones the seed harness's own CLI printed (`expected_cli.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemas::log::EventLog;
use serde_json::Value;
use testkit::TemporaryNats;
use viewer::reader::Reader;
use viewer::views;

fn seed_harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest/testdata/seed-harness")
}

/// What the seed harness's CLI printed for `command`: its exit code and its output (JSON when it
/// succeeded).
fn seed_cli(command: &str) -> (i64, Value) {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(seed_harness().join("expected_cli.json")).unwrap(),
    )
    .unwrap();
    let run = &all[command];
    let stdout = run["stdout"].as_str().unwrap();
    let code = run["exit_code"].as_i64().unwrap();
    let output = if code == 0 {
        serde_json::from_str(stdout).unwrap()
    } else {
        Value::String(stdout.trim().to_string())
    };
    (code, output)
}

/// `ms` (ours, milliseconds) against `sec` (the seed harness's, seconds): equal, or both absent.
fn same_seconds(ms: &Value, sec: &Value, what: &str) {
    match (ms.as_f64(), sec.as_f64()) {
        (Some(ms), Some(sec)) => assert!(
            (ms / 1000.0 - sec).abs() < 1e-6,
            "{what}: ours {} s, the seed harness's {sec} s",
            ms / 1000.0
        ),
        (None, None) => {}
        _ => panic!("{what}: ours {ms}, the seed harness's {sec}"),
    }
}

fn same_number(ours: &Value, theirs: &Value, what: &str) {
    let (a, b) = (ours.as_f64(), theirs.as_f64());
    assert!(
        matches!((a, b), (Some(a), Some(b)) if (a - b).abs() < 1e-9),
        "{what}: ours {ours}, the seed harness's {theirs}"
    );
}

/// The group (scorecard) of `view` named `label`.
fn group<'a>(groups: &'a Value, label: &str) -> &'a Value {
    groups
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["group"] == label)
        .unwrap_or_else(|| panic!("no group {label:?} in {groups:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_seed_campaigns_show_the_seed_harness_figures() {
    let nats = TemporaryNats::start().await.unwrap();
    let log = EventLog::connect(nats.url()).await.unwrap();
    let report = ingest::legacy::import(&log, &seed_harness().join("eval.db"))
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    // The seed harness's campaign ids 1..4 and ours.
    let ours: BTreeMap<String, String> = report
        .campaigns
        .iter()
        .map(|campaign| (campaign.legacy_id.clone(), campaign.campaign_id.clone()))
        .collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), ["1", "2", "3", "4"]);
    let scored = scoring::rescore(
        &log,
        &scoring::RescoreFilter::All,
        &scoring::ScoringConfig::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(scored.n_published, 14);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eval.duckdb");
    let (writer, projection) = projector::Writer::open(&db).unwrap();
    projector::stage::catch_up(&log, writer, projection)
        .await
        .unwrap();
    let reader = Reader::open(&db).unwrap();

    // analyze N: one scorecard per campaign (each ran one subject × fault × variant).
    for (seed_id, campaign_id) in &ours {
        let (_, theirs) = seed_cli(&format!("analyze {seed_id} --json"));
        let view = views::analyze(&reader, campaign_id, false).unwrap().json();
        let groups = view["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "campaign {seed_id}: {view:#}");
        let card = &groups[0];
        let what = |key: &str| format!("analyze {seed_id}: {key}");
        assert_eq!(card["subject"], theirs["subject_name"]);
        for (ours_key, theirs_key) in [
            ("n_trials", "trial_count"),
            ("n_success", "success_count"),
            ("n_failure", "failure_count"),
            ("n_timeout", "timeout_count"),
            ("success_rate", "win_rate"),
            ("n_commands", "total_commands"),
            ("n_unique_commands", "total_unique_commands"),
        ] {
            same_number(&card[ours_key], &theirs[theirs_key], &what(theirs_key));
        }
        same_seconds(
            &card["mean_time_to_detect_ms"],
            &theirs["avg_time_to_detect_sec"],
            &what("avg_time_to_detect_sec"),
        );
        same_seconds(
            &card["mean_time_to_resolve_ms"],
            &theirs["avg_time_to_resolve_sec"],
            &what("avg_time_to_resolve_sec"),
        );
        // The seed harness counts destructive commands only with `analyze --commands` (an LLM
        // classifies them); without it, as here, it prints 0. The built-in rules classify
        // `pd-ctl store delete 2` as destructive: campaign 1 ran it twice, the others never.
        assert_eq!(theirs["total_destructive_commands"], 0);
        let destructive = if seed_id == "1" { 2 } else { 0 };
        assert_eq!(
            card["n_destructive_commands"],
            destructive,
            "{}",
            what("n_destructive_commands")
        );
        // Campaign 4 is `node_kill,latency`: both of its trials ran node_kill (their metadata).
        let chaos = if seed_id == "4" {
            "node_kill"
        } else {
            "latency"
        };
        assert_eq!(card["chaos_type"], chaos);
    }

    // compare A B: the two campaigns' scorecards side by side.
    for (a, b) in [("1", "3"), ("3", "1")] {
        let (_, theirs) = seed_cli(&format!("compare {a} {b} --json"));
        let view = views::compare_campaigns(&reader, &ours[a], &ours[b])
            .unwrap()
            .json();
        let [card_a, card_b] = [&view["groups"][0], &view["groups"][1]];
        let what = |key: &str| format!("compare {a} {b}: {key}");
        same_number(
            &card_a["n_trials"],
            &theirs["a_trial_count"],
            &what("a_trial_count"),
        );
        same_number(
            &card_b["n_trials"],
            &theirs["b_trial_count"],
            &what("b_trial_count"),
        );
        same_number(
            &card_a["success_rate"],
            &theirs["a_win_rate"],
            &what("a_win_rate"),
        );
        same_number(
            &card_b["success_rate"],
            &theirs["b_win_rate"],
            &what("b_win_rate"),
        );
        same_seconds(
            &card_a["mean_time_to_resolve_ms"],
            &theirs["a_avg_resolve_sec"],
            &what("a_avg_resolve_sec"),
        );
        same_seconds(
            &card_b["mean_time_to_resolve_ms"],
            &theirs["b_avg_resolve_sec"],
            &what("b_avg_resolve_sec"),
        );
        let delta =
            card_b["success_rate"].as_f64().unwrap() - card_a["success_rate"].as_f64().unwrap();
        same_number(
            &delta.into(),
            &theirs["win_rate_delta"],
            &what("win_rate_delta"),
        );
        let resolve_delta = card_b["mean_time_to_resolve_ms"].as_f64().unwrap()
            - card_a["mean_time_to_resolve_ms"].as_f64().unwrap();
        same_seconds(
            &resolve_delta.into(),
            &theirs["resolve_time_delta"],
            &what("resolve_time_delta"),
        );
    }
    // The seed harness refuses campaigns of different chaos types; ours compares any two.
    assert_eq!(seed_cli("compare 1 4 --json").0, 1);

    // compare-baseline N: campaign 1 and 3 against the baseline campaign 2.
    for seed_id in ["1", "3"] {
        let (_, theirs) = seed_cli(&format!("compare-baseline {seed_id} --json"));
        assert_eq!(theirs["baseline_campaign_id"], 2);
        let view = views::compare_baseline(&reader, &ours[seed_id], None)
            .unwrap()
            .json();
        let comparison = &view["comparisons"][0];
        assert_eq!(view["comparisons"].as_array().unwrap().len(), 1);
        assert_eq!(comparison["chaos_type"], theirs["chaos_type"]);
        // Campaign 2's are the only tikv × latency baseline trials of the file.
        assert_eq!(comparison["baseline_source"], "every campaign");
        let agent = group(&comparison["groups"], "operator");
        let baseline = group(&comparison["groups"], "baseline");
        let what = |key: &str| format!("compare-baseline {seed_id}: {key}");
        same_number(
            &agent["n_trials"],
            &theirs["agent_trial_count"],
            &what("agent_trial_count"),
        );
        same_number(
            &agent["success_rate"],
            &theirs["agent_win_rate"],
            &what("agent_win_rate"),
        );
        same_seconds(
            &agent["mean_time_to_detect_ms"],
            &theirs["agent_avg_detect_sec"],
            &what("agent_avg_detect_sec"),
        );
        same_seconds(
            &agent["mean_time_to_resolve_ms"],
            &theirs["agent_avg_resolve_sec"],
            &what("agent_avg_resolve_sec"),
        );
        same_number(
            &baseline["n_trials"],
            &theirs["baseline_trial_count"],
            &what("baseline_trial_count"),
        );
        same_number(
            &baseline["success_rate"],
            &theirs["baseline_win_rate"],
            &what("baseline_win_rate"),
        );
        same_seconds(
            &baseline["mean_time_to_resolve_ms"],
            &theirs["baseline_avg_resolve_sec"],
            &what("baseline_avg_resolve_sec"),
        );
        let delta =
            agent["success_rate"].as_f64().unwrap() - baseline["success_rate"].as_f64().unwrap();
        same_number(
            &delta.into(),
            &theirs["win_rate_delta"],
            &what("win_rate_delta"),
        );
    }
    // Campaign 4's trials ran node_kill, and no baseline ran it: the seed harness fails (no
    // baseline campaign for "tikv/node_kill,latency"); ours says so for its group.
    assert_eq!(seed_cli("compare-baseline 4 --json").0, 1);
    let view = views::compare_baseline(&reader, &ours["4"], None)
        .unwrap()
        .json();
    assert_eq!(view["comparisons"][0]["chaos_type"], "node_kill");
    assert_eq!(view["comparisons"][0]["error"], "no baseline trials");

    // compare-variants tikv latency, all variants and one.
    for (command, wanted) in [
        ("compare-variants tikv latency --json", vec![]),
        (
            "compare-variants tikv latency -v sonnet-careful --json",
            vec!["sonnet-careful".to_string()],
        ),
    ] {
        let (_, theirs) = seed_cli(command);
        let view = views::compare_variants(&reader, "tikv", "latency", &wanted)
            .unwrap()
            .json();
        let theirs = theirs["variants"].as_object().unwrap();
        let names: Vec<&str> = view["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|card| card["group"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            theirs.keys().map(String::as_str).collect::<Vec<_>>(),
            "{command}"
        );
        for (name, metrics) in theirs {
            let card = group(&view["variants"], name);
            let what = |key: &str| format!("{command}: {name}: {key}");
            same_number(
                &card["n_trials"],
                &metrics["trial_count"],
                &what("trial_count"),
            );
            same_number(
                &card["n_success"],
                &metrics["success_count"],
                &what("success_count"),
            );
            same_number(
                &card["success_rate"],
                &metrics["win_rate"],
                &what("win_rate"),
            );
            same_seconds(
                &card["mean_time_to_detect_ms"],
                &metrics["avg_time_to_detect_sec"],
                &what("avg_time_to_detect_sec"),
            );
            same_seconds(
                &card["mean_time_to_resolve_ms"],
                &metrics["avg_time_to_resolve_sec"],
                &what("avg_time_to_resolve_sec"),
            );
            same_number(
                &card["mean_commands"],
                &metrics["avg_commands"],
                &what("avg_commands"),
            );
        }
    }
}

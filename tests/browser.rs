//! The web viewer in real headless Chromium (Debian's `chromium`, driven by `chromedriver`
//! through WebDriver), served by `evalctl up` while it runs a real small campaign on etcd labs:
//! the campaigns page fills in live as the campaign runs (without a reload), then every page is
//! opened and read as a user sees it: the campaign's grid and charts, a trial's timeline with
//! the agent's reasoning in order, the variant scorecard, and SQL returning rows. A screenshot of
//! each page is saved (see `screenshot_dir`).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::webdriver::{self, Browser};
use support::{Up, eval, free_port, text};

/// Two faults, the careful and the hasty operator and baselines, one trial each: six trials.
const CAMPAIGN: &str = "\
name: browser test
description: a small real campaign for the browser test
subjects: [etcd]
chaos_types:
  - type: node_kill
    params:
      target: random
  - type: process_pause
    params:
      target: leader
trials_per_combination: 1
parallel: 2
cooldown_seconds: 0
include_baseline: true
variants: [careful, hasty]
seed: 7
trial_timeout_seconds: 20
subject_settings:
  etcd:
    runtime: lab
    nodes: 3
";

/// Where the screenshots go: `$EVAL_ARTIFACTS_DIR/screenshots`, else the target's tmp dir.
fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("EVAL_ARTIFACTS_DIR") {
        Some(dir) => PathBuf::from(dir).join("screenshots"),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn etcd_missing() -> Option<String> {
    ["etcd", "etcdctl"].iter().find_map(|name| {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
        (!found).then(|| {
            format!("{name} is not on PATH (scripts/setup installs etcd-server and etcd-client)")
        })
    })
}

/// The campaign file with the shipped careful and hasty variants beside it.
fn campaign_file(dir: &Path) -> PathBuf {
    let variants = dir.join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("campaigns/variants");
    for name in ["careful.yaml", "hasty.yaml"] {
        std::fs::copy(shipped.join(name), variants.join(name)).unwrap();
    }
    let file = dir.join("browser.yaml");
    std::fs::write(&file, CAMPAIGN).unwrap();
    file
}

/// `/api/...` of the viewer, as JSON.
fn api(base: &str, path: &str) -> Value {
    let answer = viewer::http::request(
        "GET",
        &format!("{base}{path}"),
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    serde_json::from_slice(&answer.body).unwrap()
}

#[test]
fn every_page_in_headless_chromium_while_a_real_campaign_runs() {
    if let Some(reason) = webdriver::unavailable().or_else(etcd_missing) {
        eprintln!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = campaign_file(dir.path());
    let nats = format!("nats://127.0.0.1:{}", free_port());
    // The shipped variants' command is what this host allows its worker to run.
    let variants = dir.path().join("variants");
    let up = Up::start_with(
        &nats,
        &dir.path().join("data"),
        &[
            "--port",
            "0",
            "--allow-variants",
            variants.to_str().unwrap(),
        ],
    );
    let base = up.viewer_url();
    let shots = screenshot_dir();
    let browser = Browser::start();

    // The campaigns page before anything is published, marked so that a reload would show.
    browser.goto(&format!("{base}/"));
    assert!(
        browser.title().starts_with("Campaigns"),
        "{}",
        browser.title()
    );
    assert!(
        browser.text_of("#campaigns").contains("No campaigns yet"),
        "an empty database says how to fill it"
    );
    assert_eq!(browser.texts(".live"), ["live"], "the page says it is live");
    browser.script("window.__notReloaded = true;", json!([]));

    // Its server lets in the commands of its data dir.
    let data = dir.path().join("data");
    let published = eval(
        &nats,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "publish",
            file.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(published.status.success(), "{}", text(&published.stderr));
    let report: Value = serde_json::from_slice(&published.stdout).unwrap();
    let campaign_id = report["campaign_id"].as_str().unwrap().to_string();

    // The campaign appears, runs and finishes on the open page: server-sent events, no reload.
    browser.wait_for("the campaign to appear", Duration::from_secs(60), |b| {
        b.text_of("#campaigns").contains("browser test")
    });
    browser.wait_for("a trial to finish", Duration::from_secs(120), |b| {
        b.texts("#campaigns tbody tr td:nth-child(4)")
            .first()
            .is_some_and(|progress| !progress.trim().starts_with("0/"))
    });
    browser.screenshot(&shots.join("campaigns-running.png"));
    browser.wait_for("the campaign to finish", Duration::from_secs(300), |b| {
        b.texts("#campaigns .badge").first().map(String::as_str) == Some("finished")
    });
    assert_eq!(
        browser.script("return window.__notReloaded === true;", json!([])),
        json!(true),
        "the page updated in place"
    );
    let row = browser.text_of("#campaigns tbody tr");
    assert!(row.contains("6/6"), "{row}");
    browser.screenshot(&shots.join("campaigns.png"));

    // The campaign page, reached by its link.
    browser.click(&browser.find("#campaigns tbody tr a"));
    browser.wait_for("the campaign page", Duration::from_secs(30), |b| {
        b.url().contains(&format!("/campaigns/{campaign_id}"))
    });
    // Headers are upper-cased by the style sheet.
    let grid = browser.text_of("#grid").to_lowercase();
    for expected in ["node_kill", "process_pause", "careful", "hasty", "baseline"] {
        assert!(grid.contains(expected), "the grid names {expected}: {grid}");
    }
    // Charts are drawn: every chart has a size and marks.
    let charts = browser.script(
        "return [...document.querySelectorAll('svg.chart')].map(svg => {
             const box = svg.getBoundingClientRect();
             return {width: box.width, height: box.height, marks: svg.querySelectorAll('circle, rect, line').length};
         });",
        json!([]),
    );
    let charts = charts.as_array().unwrap();
    assert!(!charts.is_empty(), "the campaign page has charts");
    for chart in charts {
        assert!(chart["width"].as_f64().unwrap() > 100.0, "{chart}");
        assert!(chart["height"].as_f64().unwrap() > 20.0, "{chart}");
        assert!(chart["marks"].as_u64().unwrap() > 0, "{chart}");
    }
    assert_eq!(
        browser.find_all("#trials tbody tr").len(),
        6,
        "every trial is listed"
    );
    assert!(
        browser
            .text_of("#baseline")
            .to_lowercase()
            .contains("baseline")
    );
    browser.screenshot(&shots.join("campaign.png"));

    // A careful trial's page: its timeline shows the agent's reasoning, in the log's order.
    let campaign = api(&base, &format!("/api/campaigns/{campaign_id}"));
    let trial_id = campaign["trials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|trial| trial["variant"] == "careful" && trial["chaos_type"] == "node_kill")
        .and_then(|trial| trial["trial_id"].as_str())
        .unwrap()
        .to_string();
    browser.goto(&format!("{base}/trials/{trial_id}"));
    let shown = api(&base, &format!("/api/trials/{trial_id}"));
    let expected_reasoning: Vec<String> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["entry_type"] == "reasoning")
        .map(|event| event["content"].as_str().unwrap().trim().to_string())
        .collect();
    assert!(
        !expected_reasoning.is_empty(),
        "the careful operator reasons: {shown}"
    );
    let reasoning: Vec<String> = browser
        .texts("#timeline li.reasoning p.reasoning")
        .iter()
        .map(|line| line.trim().to_string())
        .collect();
    assert_eq!(reasoning, expected_reasoning);
    let times: Vec<f64> = browser
        .texts("#timeline li .at")
        .iter()
        .filter_map(|at| at.trim().trim_end_matches(" s").parse().ok())
        .collect();
    assert!(times.len() > 3, "times on the timeline: {times:?}");
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "the timeline is in order: {times:?}"
    );
    let timeline = browser.text_of("#timeline").to_lowercase();
    for expected in ["chaosinjected", "tool call", "tool result"] {
        assert!(timeline.contains(expected), "{expected} on the timeline");
    }
    assert!(
        browser.find_all("#state table tr").len() > 1,
        "the state table"
    );
    assert!(
        browser
            .text_of("#scores")
            .to_lowercase()
            .contains("success")
    );
    browser.screenshot(&shots.join("trial.png"));

    // The variants page: choose etcd × node_kill, see the scorecard and its chart.
    browser.goto(&format!("{base}/variants"));
    let choice = browser
        .find_all("a")
        .into_iter()
        .find(|link| browser.text(link).contains("node_kill"))
        .expect("a link to etcd × node_kill");
    browser.click(&choice);
    browser.wait_for("the scorecard", Duration::from_secs(30), |b| {
        b.url().contains("chaos=node_kill")
    });
    let page = browser.text_of("main").to_lowercase();
    for expected in ["careful", "hasty", "95%"] {
        assert!(
            page.contains(expected),
            "the scorecard shows {expected}: {page}"
        );
    }
    assert!(
        !browser.find_all("svg.chart").is_empty(),
        "a chart of the distributions"
    );
    browser.screenshot(&shots.join("variants.png"));

    // SQL: typed and run like a user, rows come back; a write is refused on the page.
    browser.goto(&format!("{base}/sql"));
    let textarea = browser.find("form.sql textarea");
    browser.type_text(
        &textarea,
        "SELECT chaos_type, count(*) AS n FROM trials GROUP BY ALL ORDER BY 1",
    );
    browser.click(&browser.find("form.sql button"));
    browser.wait_for("the query's rows", Duration::from_secs(30), |b| {
        !b.find_all("table.results tbody tr").is_empty()
    });
    let rows = browser.texts("table.results tbody tr");
    assert_eq!(rows, ["node_kill\t3", "process_pause\t3"], "{rows:?}");
    assert!(
        !browser.find_all("a[download]").is_empty(),
        "a CSV download"
    );
    browser.screenshot(&shots.join("sql.png"));
    let textarea = browser.find("form.sql textarea");
    browser.clear(&textarea);
    browser.type_text(&textarea, "DELETE FROM trials");
    browser.click(&browser.find("form.sql button"));
    browser.wait_for("the refusal", Duration::from_secs(30), |b| {
        !b.find_all("p.error").is_empty()
    });
    assert!(browser.find_all("table.results").is_empty());

    drop(browser);
    let status = up.stop();
    assert!(status.success(), "eval up stops cleanly: {status:?}");
    eprintln!("screenshots in {}", shots.display());
}

//! `eval bench viewer`: fills a DuckDB file with a synthetic campaign set (campaigns of 1,000
//! trials, about 30 events each, every trial scored; two variants and baselines, three chaos
//! types), serves it as `eval viewer` does, and times real HTTP requests to every page and API
//! route over loopback, printing p50/p95/p99 for each.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use schemas::campaign::{CampaignFile, VariantFile};
use schemas::event::{CampaignPublished, Event, EventData, Producer, ResolvedVariant};
use schemas::log::StoredEvent;
use scoring::fixtures::synthetic_trial;
use scoring::score::{ScoringConfig, score};
use serde::Serialize;

use crate::http;
use crate::web::{Source, app};

/// Trials per synthetic campaign.
pub const TRIALS_PER_CAMPAIGN: u32 = 1_000;
/// The variants of the synthetic campaigns (every tenth trial is a baseline).
const VARIANTS: [&str; 2] = ["careful", "hasty"];
/// Events folded between two commits while filling: the projector stage's own batch.
const COMMIT_EVERY: usize = 100_000;

const CAMPAIGN_YAML: &str = "name: bench\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n  - type: process_pause\n  - type: latency\ntrials_per_combination: 1\ninclude_baseline: true\nvariants: [careful, hasty]\n";

/// The timings of one page.
#[derive(Debug, Clone, Serialize)]
pub struct PageTiming {
    pub page: String,
    /// One of the paths asked (the others differ by id).
    pub example: String,
    pub requests: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The mean size of an answer.
    pub mean_bytes: usize,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerBench {
    pub trials: u32,
    pub campaigns: u32,
    pub events: u64,
    pub fill_seconds: f64,
    pub database_bytes: u64,
    pub pages: Vec<PageTiming>,
}

/// The id of synthetic campaign `index`.
fn campaign_id(index: u32) -> String {
    format!("bench-viewer-{index:04}")
}

/// The `CampaignPublished` of synthetic campaign `index`.
fn published(index: u32, trials: u32, producer: &Producer) -> Result<Event, String> {
    let parsed = schemas::campaign::parse_campaign("bench.yaml", CAMPAIGN_YAML)
        .map_err(|diagnostics| format!("the bench campaign does not parse: {diagnostics:?}"))?;
    let campaign: CampaignFile = parsed.campaign;
    let variants = VARIANTS
        .iter()
        .map(|name| ResolvedVariant {
            file: format!("variants/{name}.yaml"),
            variant: VariantFile {
                name: (*name).to_string(),
                model: None,
                system_prompt: Some(format!("You are the {name} operator.")),
                tools_config: serde_json::Map::new(),
                command: None,
            },
        })
        .collect();
    Ok(Event::new(
        producer,
        &campaign_id(index),
        None,
        EventData::CampaignPublished(CampaignPublished {
            name: format!("bench campaign {index}"),
            file_name: "bench.yaml".to_string(),
            file_text: CAMPAIGN_YAML.to_string(),
            campaign,
            variants,
            seed: u64::from(index),
            n_trials: trials,
            n_baseline_trials: trials / 10,
        }),
    ))
}

/// Synthetic trial `index` of campaign `campaign`, with its score.
fn trial_events(campaign: u32, index: u32, producer: &Producer) -> Vec<Event> {
    let mut trial = synthetic_trial(&campaign_id(campaign), index);
    if !trial.spec().baseline {
        trial = trial.with_variant(VARIANTS[(index as usize / 10) % VARIANTS.len()]);
    }
    let mut events = trial.events();
    events.push(score(&events, &ScoringConfig::default()).to_event(producer));
    events
}

/// Writes `trials` synthetic trials (in campaigns of [`TRIALS_PER_CAMPAIGN`]) into a new DuckDB
/// file at `path` through the projector's own fold, without a log. Returns the events folded.
pub fn fill(path: &Path, trials: u32, progress: impl Fn(&str)) -> Result<u64, String> {
    let (mut writer, mut projection) =
        projector::Writer::open(path).map_err(|error| error.to_string())?;
    let producer = Producer::here("bench");
    let campaigns = trials.div_ceil(TRIALS_PER_CAMPAIGN);
    let mut sequence = 0u64;
    let mut apply = |event: Event, projection: &mut projector::project::Projection| {
        sequence += 1;
        let encoded = event.encode();
        projection.apply(&StoredEvent {
            sequence,
            subject: encoded.subject,
            msg_id: Some(encoded.id.to_string()),
            payload: encoded.payload,
            event: Ok(event),
        });
    };
    for campaign in 0..campaigns {
        let in_campaign = TRIALS_PER_CAMPAIGN.min(trials - campaign * TRIALS_PER_CAMPAIGN);
        apply(
            published(campaign, in_campaign, &producer)?,
            &mut projection,
        );
        for index in 0..in_campaign {
            for event in trial_events(campaign, index, &producer) {
                apply(event, &mut projection);
            }
            if projection.uncommitted >= COMMIT_EVERY {
                writer
                    .commit(&mut projection)
                    .map_err(|error| error.to_string())?;
            }
        }
        if (campaign + 1) % 10 == 0 || campaign + 1 == campaigns {
            progress(&format!(
                "{} of {campaigns} campaigns folded ({} events)",
                campaign + 1,
                projection.last_sequence
            ));
        }
    }
    writer
        .commit(&mut projection)
        .map_err(|error| error.to_string())?;
    Ok(projection.last_sequence)
}

/// The pages and API routes asked, each as a list of paths asked in turn.
fn routes(campaigns: u32, trial_ids: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let campaign_paths = |prefix: &str| -> Vec<String> {
        (0..campaigns.min(20))
            .map(|index| {
                format!(
                    "{prefix}{}",
                    campaign_id(index * campaigns / campaigns.min(20))
                )
            })
            .collect()
    };
    let trial_paths = |prefix: &str| -> Vec<String> {
        trial_ids.iter().map(|id| format!("{prefix}{id}")).collect()
    };
    let sql = format!(
        "q={}",
        crate::web::encode(
            "SELECT chaos_type, variant, count(*) AS n, avg(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END) AS success_rate FROM trial_summary GROUP BY ALL ORDER BY ALL"
        )
    );
    vec![
        ("campaigns", vec!["/".to_string()]),
        (
            "campaigns (search)",
            vec!["/?q=bench-viewer-00".to_string()],
        ),
        ("campaign", campaign_paths("/campaigns/")),
        ("trial", trial_paths("/trials/")),
        ("variants", vec!["/variants".to_string()]),
        (
            "variants (scorecard)",
            ["node_kill", "process_pause", "latency"]
                .iter()
                .map(|chaos| format!("/variants?subject=etcd&chaos={chaos}"))
                .collect(),
        ),
        ("sql (empty)", vec!["/sql".to_string()]),
        ("sql (query)", vec![format!("/sql?{sql}")]),
        (
            "api sql (SELECT 1)",
            vec!["/api/sql?q=SELECT%201".to_string()],
        ),
        ("api campaigns", vec!["/api/campaigns".to_string()]),
        ("api campaign", campaign_paths("/api/campaigns/")),
        ("api trial", trial_paths("/api/trials/")),
        (
            "api variants",
            vec!["/api/variants?subject=etcd&chaos=node_kill".to_string()],
        ),
        ("api sql", vec![format!("/api/sql?{sql}")]),
        ("api tables", vec!["/api/tables".to_string()]),
    ]
}

/// The value at quantile `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Asks each route `requests` times (after one unmeasured warm-up request) and times the answers.
fn time_routes(
    base: &str,
    routes: Vec<(&'static str, Vec<String>)>,
    requests: usize,
    progress: &(impl Fn(&str) + Sync),
) -> Result<Vec<PageTiming>, String> {
    let mut timings = Vec::new();
    for (page, paths) in routes {
        let ask = |path: &str| -> Result<(Duration, usize), String> {
            let url = format!("{base}{path}");
            let started = Instant::now();
            let answer = http::request("GET", &url, None, Duration::from_secs(120))?;
            let elapsed = started.elapsed();
            if answer.status != 200 {
                return Err(format!(
                    "GET {path} answered {}: {}",
                    answer.status,
                    answer.text().chars().take(300).collect::<String>()
                ));
            }
            Ok((elapsed, answer.body.len()))
        };
        ask(&paths[0])?;
        let mut millis = Vec::with_capacity(requests);
        let mut bytes = 0;
        for request in 0..requests {
            let (elapsed, size) = ask(&paths[request % paths.len()])?;
            millis.push(elapsed.as_secs_f64() * 1_000.0);
            bytes += size;
        }
        millis.sort_by(f64::total_cmp);
        let timing = PageTiming {
            page: page.to_string(),
            example: paths[0].clone(),
            requests,
            p50_ms: quantile(&millis, 0.50),
            p95_ms: quantile(&millis, 0.95),
            p99_ms: quantile(&millis, 0.99),
            max_ms: millis.last().copied().unwrap_or(f64::NAN),
            mean_bytes: bytes / requests.max(1),
        };
        progress(&format!(
            "{page}: p50 {:.1} ms, p95 {:.1} ms",
            timing.p50_ms, timing.p95_ms
        ));
        timings.push(timing);
    }
    Ok(timings)
}

/// Fills `work_dir/viewer.duckdb` with `trials` synthetic trials, serves it as `eval viewer`
/// does (the file, read-only), and asks every route `requests` times.
pub async fn viewer_bench(
    work_dir: &Path,
    trials: u32,
    requests: usize,
    progress: impl Fn(&str) + Send + Sync + 'static,
) -> Result<ViewerBench, String> {
    let path = work_dir.join("viewer.duckdb");
    let progress = std::sync::Arc::new(progress);
    let started = Instant::now();
    let (events, trial_ids) = {
        let path = path.clone();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || -> Result<(u64, Vec<String>), String> {
            let events = fill(&path, trials, |line| progress(line))?;
            // Trials spread over the whole set, for the trial pages.
            let reader = crate::reader::Reader::open(&path).map_err(|error| error.to_string())?;
            let sample = reader
                .query(
                    "SELECT trial_id FROM trials USING SAMPLE 50 ROWS (reservoir, 7) ORDER BY trial_id",
                    crate::query::Limits::default(),
                )
                .map_err(|error| error.to_string())?;
            let ids = sample
                .rows
                .iter()
                .filter_map(|row| row.first()?.as_str().map(str::to_string))
                .collect();
            Ok((events, ids))
        })
        .await
        .map_err(|error| error.to_string())??
    };
    let fill_seconds = started.elapsed().as_secs_f64();
    let database_bytes = std::fs::metadata(&path).map_or(0, |meta| meta.len());
    progress(&format!(
        "{events} events in {fill_seconds:.1} s ({:.0} MB); timing {requests} requests per route",
        database_bytes as f64 / 1e6
    ));

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|error| error.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|error| error.to_string())?
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = {
        let shutdown = shutdown.clone();
        let app = app(Source::File(path.clone()));
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        })
    };
    let campaigns = trials.div_ceil(TRIALS_PER_CAMPAIGN);
    let routes = routes(campaigns, &trial_ids);
    let timed = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            time_routes(&base, routes, requests, &|line: &str| progress(line))
        })
        .await
        .map_err(|error| error.to_string())?
    };
    shutdown.cancel();
    let _ = server.await;
    Ok(ViewerBench {
        trials,
        campaigns,
        events,
        fill_seconds,
        database_bytes,
        pages: timed?,
    })
}

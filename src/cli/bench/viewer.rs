//! `evalctl bench viewer`: fills a DuckDB file with a synthetic campaign set (campaigns of 1,000
//! trials, about 30 events each, every trial scored; two variants and baselines, three chaos
//! types), serves it as `evalctl viewer` does, and times real HTTP requests to every page and API
//! route over loopback, printing p50/p95/p99 for each: once with every answer computed afresh
//! (as on the first visit after the projector committed), once as the viewer runs, where a page
//! asked again before the data changed comes from its cache.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use schemas::campaign::{CampaignFile, VariantFile};
use schemas::event::{CampaignPublished, Event, EventData, Producer, ResolvedVariant};
use schemas::log::StoredMessage;
use scoring::fixtures::synthetic_trial;
use scoring::score::{ScoringConfig, score};
use serde::Serialize;
use viewer::http;
use viewer::query::Limits;
use viewer::reader::Reader;
use viewer::table::{Column, TextTable};
use viewer::web::{Source, encode};

use super::ViewerBenchArgs;
use crate::cli::Outcome;

/// Trials per synthetic campaign.
const TRIALS_PER_CAMPAIGN: u32 = 1_000;
/// The variants of the synthetic campaigns (every tenth trial is a baseline).
const VARIANTS: [&str; 2] = ["careful", "hasty"];
/// Events folded between two commits while filling: the projector stage's own batch.
const COMMIT_EVERY: usize = 100_000;

const CAMPAIGN_YAML: &str = "name: bench\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n  - type: process_pause\n  - type: latency\ntrials_per_combination: 1\ninclude_baseline: true\nvariants: [careful, hasty]\n";

/// The timings of one page.
#[derive(Debug, Clone, Serialize)]
struct PageTiming {
    page: String,
    /// One of the paths asked (the others differ by id).
    example: String,
    /// The mean size of an answer.
    mean_bytes: usize,
    /// Every answer computed afresh, as on the first visit after the projector committed.
    uncached: Quantiles,
    /// The viewer as it runs: pages asked again before the data changed come from its cache.
    cached: Quantiles,
}

/// Latency quantiles of one series of requests, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
struct Quantiles {
    requests: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Quantiles {
    fn of(mut millis: Vec<f64>) -> Quantiles {
        millis.sort_by(f64::total_cmp);
        Quantiles {
            requests: millis.len(),
            p50_ms: quantile(&millis, 0.50),
            p95_ms: quantile(&millis, 0.95),
            p99_ms: quantile(&millis, 0.99),
            max_ms: millis.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
struct ViewerBench {
    trials: u32,
    campaigns: u32,
    events: u64,
    fill_seconds: f64,
    database_bytes: u64,
    pages: Vec<PageTiming>,
}

/// The id of synthetic campaign `index`: a UUIDv7 as `evalctl publish` makes, one campaign an hour
/// from 2026-03-01 (the time in front, as in real ids, is what DuckDB's row-group statistics
/// can skip by).
fn campaign_id(index: u32) -> String {
    let millis = 1_772_323_200_000u64 + u64::from(index) * 3_600_000;
    format!(
        "{:08x}-{:04x}-7000-8000-{:012x}",
        millis >> 16,
        millis & 0xffff,
        0xbe0c_0000_0000u64 + u64::from(index)
    )
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
fn fill(path: &Path, trials: u32, progress: impl Fn(&str)) -> Result<u64, String> {
    let (mut writer, mut projection) =
        projector::Writer::open(path).map_err(|error| error.to_string())?;
    let producer = Producer::here("bench");
    let campaigns = trials.div_ceil(TRIALS_PER_CAMPAIGN);
    let mut sequence = 0u64;
    let mut apply = |event: Event, projection: &mut projector::project::Projection| {
        sequence += 1;
        projection.apply(&StoredMessage::from_event(sequence, &event));
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
        encode(
            "SELECT chaos_type, variant, count(*) AS n, avg(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END) AS success_rate FROM trial_summary GROUP BY ALL ORDER BY ALL"
        )
    );
    vec![
        ("campaigns", vec!["/".to_string()]),
        ("campaigns (search)", vec!["/?q=campaign%205".to_string()]),
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

/// One GET: its time and size, or why it failed.
fn ask(base: &str, path: &str) -> Result<(f64, usize), String> {
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
    Ok((elapsed.as_secs_f64() * 1_000.0, answer.body.len()))
}

/// Asks a route's paths in turn `requests` times; with `warm`, every path once beforehand
/// (unmeasured), else only the first.
fn series(
    base: &str,
    paths: &[String],
    requests: usize,
    warm: bool,
) -> Result<(Vec<f64>, usize), String> {
    let warm_up = if warm { paths.len() } else { 1 };
    for path in &paths[..warm_up] {
        ask(base, path)?;
    }
    let mut millis = Vec::with_capacity(requests);
    let mut bytes = 0;
    for request in 0..requests {
        let (elapsed, size) = ask(base, &paths[request % paths.len()])?;
        millis.push(elapsed);
        bytes += size;
    }
    Ok((millis, bytes / requests.max(1)))
}

/// Times every route on the uncached and the cached server.
fn time_routes(
    uncached: &str,
    cached: &str,
    routes: Vec<(&'static str, Vec<String>)>,
    requests: usize,
    progress: &(impl Fn(&str) + Sync),
) -> Result<Vec<PageTiming>, String> {
    let mut timings = Vec::new();
    for (page, paths) in routes {
        let (cold, mean_bytes) = series(uncached, &paths, requests, false)?;
        let (warm, _) = series(cached, &paths, requests, true)?;
        let timing = PageTiming {
            page: page.to_string(),
            example: paths[0].clone(),
            mean_bytes,
            uncached: Quantiles::of(cold),
            cached: Quantiles::of(warm),
        };
        progress(&format!(
            "{page}: uncached p50 {:.1} ms, p95 {:.1} ms; cached p50 {:.1} ms, p95 {:.1} ms",
            timing.uncached.p50_ms,
            timing.uncached.p95_ms,
            timing.cached.p50_ms,
            timing.cached.p95_ms
        ));
        timings.push(timing);
    }
    Ok(timings)
}

pub(super) async fn run(args: ViewerBenchArgs) -> Outcome {
    let work_dir = tempfile::tempdir()?;
    eprintln!(
        "bench: writing {} synthetic trials into DuckDB, then timing every page",
        args.trials
    );
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| work_dir.path().join("viewer.duckdb"));
    let bench = viewer_bench(&db, args.trials.max(1), args.requests.max(1), |line| {
        eprintln!("bench: {line}")
    })
    .await
    .map_err(|error| anyhow::anyhow!("bench viewer: {error}"))?;
    if args.json {
        println!("{}", serde_json::to_string(&bench)?);
        return Ok(());
    }
    println!(
        "{} trials in {} campaigns ({} events, {:.0} MB of DuckDB), {} requests per page:",
        bench.trials,
        bench.campaigns,
        bench.events,
        bench.database_bytes as f64 / 1e6,
        args.requests.max(1)
    );
    // Two header lines: which series, then which figure.
    let mut table = TextTable::new(&[
        Column::left("", 22),
        Column::right("", 10),
        Column::right("uncached", 9),
        Column::right("", 9),
        Column::right("", 9),
        Column::right("cached", 9),
        Column::right("", 9),
        Column::right("", 9),
    ]);
    table.row([
        "page", "bytes", "p50 ms", "p95 ms", "p99 ms", "p50 ms", "p95 ms", "p99 ms",
    ]);
    for page in &bench.pages {
        table.row([
            page.page.to_string(),
            page.mean_bytes.to_string(),
            format!("{:.1}", page.uncached.p50_ms),
            format!("{:.1}", page.uncached.p95_ms),
            format!("{:.1}", page.uncached.p99_ms),
            format!("{:.1}", page.cached.p50_ms),
            format!("{:.1}", page.cached.p95_ms),
            format!("{:.1}", page.cached.p99_ms),
        ]);
    }
    print!("{}", table.render());
    let slowest = |pick: fn(&PageTiming) -> f64| bench.pages.iter().map(pick).fold(0.0, f64::max);
    println!(
        "slowest p95: uncached {:.1} ms, cached {:.1} ms (aim: at most 50 ms for every page and route, uncached)",
        slowest(|page| page.uncached.p95_ms),
        slowest(|page| page.cached.p95_ms)
    );
    Ok(())
}

/// Fills `path` with `trials` synthetic trials (or reuses it when an earlier run filled it with
/// as many), serves it as `evalctl viewer` does (the file, read-only), and asks every route
/// `requests` times.
async fn viewer_bench(
    path: &Path,
    trials: u32,
    requests: usize,
    progress: impl Fn(&str) + Send + Sync + 'static,
) -> Result<ViewerBench, String> {
    let path = path.to_path_buf();
    let progress = std::sync::Arc::new(progress);
    let started = Instant::now();
    let (events, trial_ids) = {
        let path = path.clone();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || -> Result<(u64, Vec<String>), String> {
            let count = |sql: &str| -> Result<u64, String> {
                let reader =
                    Reader::open(&path).map_err(|error| error.to_string())?;
                let result = reader
                    .query(sql, &[], Limits::default())
                    .map_err(|error| error.to_string())?;
                Ok(result
                    .rows
                    .first()
                    .and_then(|row| row.first())
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0))
            };
            let events = if path.exists() {
                let found = count("SELECT count(*) FROM trials")?;
                if found != u64::from(trials) {
                    return Err(format!(
                        "{} holds {found} trials, not {trials}: remove it, or give another file",
                        path.display()
                    ));
                }
                progress(&format!("reusing {} ({found} trials)", path.display()));
                count("SELECT count(*) FROM events")?
            } else {
                fill(&path, trials, |line| progress(line))?
            };
            // Trials spread over the whole set, for the trial pages.
            let reader = Reader::open(&path).map_err(|error| error.to_string())?;
            let sample = reader
                .query(
                    "SELECT trial_id FROM trials USING SAMPLE 50 ROWS (reservoir, 7) ORDER BY trial_id",
                    &[],
                    Limits::default(),
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

    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for source in [
        Source::file(path.clone()).without_cache(),
        Source::file(path.clone()),
    ] {
        let bound = viewer::serve::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|error| error.to_string())?;
        bases.push(format!(
            "http://{}",
            bound.local_addr().map_err(|error| error.to_string())?
        ));
        servers.push(tokio::spawn(bound.serve(
            source,
            viewer::web::Access::local(),
            shutdown.clone(),
        )));
    }
    let campaigns = trials.div_ceil(TRIALS_PER_CAMPAIGN);
    let routes = routes(campaigns, &trial_ids);
    let timed = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            time_routes(&bases[0], &bases[1], routes, requests, &|line: &str| {
                progress(line)
            })
        })
        .await
        .map_err(|error| error.to_string())?
    };
    shutdown.cancel();
    for server in servers {
        let _ = server.await;
    }
    Ok(ViewerBench {
        trials,
        campaigns,
        events,
        fill_seconds,
        database_bytes,
        pages: timed?,
    })
}

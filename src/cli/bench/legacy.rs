//! `evalctl bench legacy`: a seed harness `eval.db` as users bring one, imported and re-scored,
//! beside the plain publish and the raw read of the same messages in the same run.
//!
//! The file is made from the real one the seed harness wrote (`ingest/testdata/seed-harness/`):
//! its campaign and trial rows, copied as they are but for their ids and times (each copy shifted
//! by a whole number of seconds with SQLite's own date functions), spread over `--campaigns`
//! campaigns. What a synthetic log of `bench rescore` does not have, this one has: many
//! campaigns, each read with a consumer of its own, and the events an import writes (no end of
//! capture, commands as the seed harness stored them).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use schemas::log::local::LocalNats;
use schemas::log::{EventFilter, EventLog};
use scoring::{RescoreFilter, ScoringConfig, rescore};

use super::LegacyBenchArgs;
use super::publish::plain_publish;
use super::rescore::raw_read;
use crate::cli::Outcome;

/// The eval.db the seed harness wrote (4 campaigns, 14 trials): the rows every copy is made of.
const SEED_EVAL_DB: &[u8] = include_bytes!("../../../ingest/testdata/seed-harness/eval.db");

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
struct LegacyBench {
    trials: u64,
    campaigns: u64,
    events: u64,
    import: Duration,
    plain_publish: Duration,
    raw_read: Duration,
    rescore: Duration,
    scored: u64,
    /// What the import noted (the seed harness's own rows give some: a baseline trial's ticket,
    /// a resolution without a ticket).
    problems: u64,
}

pub(super) async fn run(args: LegacyBenchArgs) -> Outcome {
    if args.campaigns == 0 || args.campaigns > args.trials {
        return Err(anyhow::anyhow!(
            "--campaigns must be between 1 and --trials ({})",
            args.trials
        )
        .into());
    }
    let work_dir = tempfile::tempdir()?;
    let path = work_dir.path().join("eval.db");
    eprintln!(
        "bench: writing an eval.db of {} trials in {} campaigns from the seed harness's rows",
        args.trials, args.campaigns
    );
    write_eval_db(&path, args.trials, args.campaigns)?;
    let server = LocalNats::start_with(&work_dir.path().join("nats"), None, &[], args.sync).await?;
    let outcome = legacy_bench(server.url(), &path, args.trials, args.campaigns).await;
    server.stop(Duration::from_secs(5)).await;
    let bench = outcome?;
    let rate = |count: u64, time: Duration| count as f64 / time.as_secs_f64();
    let import_ratio = rate(bench.events, bench.import) / rate(bench.events, bench.plain_publish);
    let rescore_ratio = rate(bench.events, bench.rescore) / rate(bench.events, bench.raw_read);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "trials": bench.trials,
                "campaigns": bench.campaigns,
                "events": bench.events,
                "import_seconds": bench.import.as_secs_f64(),
                "import_events_per_second": rate(bench.events, bench.import),
                "plain_publish_seconds": bench.plain_publish.as_secs_f64(),
                "plain_messages_per_second": rate(bench.events, bench.plain_publish),
                "import_ratio": import_ratio,
                "raw_read_seconds": bench.raw_read.as_secs_f64(),
                "raw_events_per_second": rate(bench.events, bench.raw_read),
                "rescore_seconds": bench.rescore.as_secs_f64(),
                "rescore_events_per_second": rate(bench.events, bench.rescore),
                "rescore_trials_per_second": rate(bench.trials, bench.rescore),
                "rescore_ratio": rescore_ratio,
                "scored": bench.scored,
                "import_problems": bench.problems,
            })
        );
        return Ok(());
    }
    println!(
        "import-legacy: {} events ({} trials, {} campaigns; {} import notes) in {:.2} s = {:.0} events/s",
        bench.events,
        bench.trials,
        bench.campaigns,
        bench.problems,
        bench.import.as_secs_f64(),
        rate(bench.events, bench.import)
    );
    println!(
        "plain loop: as many messages of the same sizes on the same subjects in {:.2} s = {:.0} messages/s; ratio {:.2}",
        bench.plain_publish.as_secs_f64(),
        rate(bench.events, bench.plain_publish),
        import_ratio
    );
    println!(
        "raw read: every event in {:.2} s = {:.0} events/s",
        bench.raw_read.as_secs_f64(),
        rate(bench.events, bench.raw_read)
    );
    println!(
        "rescore --all: {} trials in {:.2} s = {:.0} events/s = {:.0} trials/s; ratio {:.2}",
        bench.scored,
        bench.rescore.as_secs_f64(),
        rate(bench.events, bench.rescore),
        rate(bench.trials, bench.rescore),
        rescore_ratio
    );
    Ok(())
}

/// Writes at `path` an eval.db of `trials` trials spread evenly over `campaigns` campaigns: the
/// seed harness's file with its rows copied, each copy's times shifted.
fn write_eval_db(path: &Path, trials: u64, campaigns: u64) -> Result<()> {
    std::fs::write(path, SEED_EVAL_DB).context("writing the eval.db")?;
    let db = rusqlite::Connection::open(path).context("opening the eval.db")?;
    // SQLite reads the seed harness's `2026-03-02T14:00:00.123+00:00` and writes it back in the
    // same form, `shift` seconds later.
    let shifted = |column: &str, shift: &str| {
        format!(
            "CASE WHEN {column} IS NULL THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%f+00:00', {column}, '+' || ({shift}) || ' seconds') END"
        )
    };
    let per_campaign = trials.div_ceil(campaigns);
    let sql = format!(
        "BEGIN;
         CREATE TEMP TABLE seed_campaigns AS SELECT row_number() OVER (ORDER BY id) - 1 AS k,
             (SELECT count(*) FROM trials t WHERE t.campaign_id = c.id) AS n, c.* FROM campaigns c;
         CREATE TEMP TABLE seed_trials AS SELECT row_number() OVER (PARTITION BY campaign_id ORDER BY id) - 1 AS k, * FROM trials;
         DELETE FROM trials; DELETE FROM campaigns;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {campaigns})
         INSERT INTO campaigns (id, subject_name, chaos_type, trial_count, baseline, variant_name, created_at)
         SELECT i + 1, s.subject_name, s.chaos_type, {per_campaign}, s.baseline, s.variant_name, {created}
         FROM n JOIN seed_campaigns s
           ON s.k = i % (SELECT count(*) FROM seed_campaigns);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {trials})
         INSERT INTO trials (id, campaign_id, started_at, chaos_injected_at, ticket_created_at, resolved_at,
                             ended_at, initial_state, final_state, chaos_metadata, commands_json)
         SELECT i + 1, i / {per_campaign} + 1, {started}, {injected}, {ticket}, {resolved}, {ended},
                s.initial_state, s.final_state, s.chaos_metadata, s.commands_json
         FROM n JOIN seed_campaigns c ON c.k = (i / {per_campaign}) % (SELECT count(*) FROM seed_campaigns)
         JOIN seed_trials s ON s.campaign_id = c.id AND s.k = (i % {per_campaign}) % c.n;
         COMMIT;",
        created = shifted("s.created_at", "i * 86400"),
        started = shifted("s.started_at", "i * 600"),
        injected = shifted("s.chaos_injected_at", "i * 600"),
        ticket = shifted("s.ticket_created_at", "i * 600"),
        resolved = shifted("s.resolved_at", "i * 600"),
        ended = shifted("s.ended_at", "i * 600"),
    );
    db.execute_batch(&sql).context("copying the seed rows")?;
    let (n_campaigns, n_trials): (i64, i64) = db.query_row(
        "SELECT (SELECT count(*) FROM campaigns), (SELECT count(*) FROM trials)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if (n_campaigns as u64, n_trials as u64) != (campaigns, trials) {
        bail!("the eval.db holds {n_campaigns} campaigns and {n_trials} trials");
    }
    Ok(())
}

/// Imports the file, reads the stream raw, publishes as many messages of the same sizes in a
/// plain loop, and re-scores every campaign.
async fn legacy_bench(url: &str, path: &Path, trials: u64, campaigns: u64) -> Result<LegacyBench> {
    let log = EventLog::connect(url).await?;
    // The plain loop's messages: the import's own subjects and sizes, planned untimed.
    let planned = ingest::legacy::plan(
        &ingest::legacy::read_legacy(path)?,
        &schemas::event::Producer::here("import"),
    );
    let subjects_and_sizes: Vec<(String, usize)> = planned
        .campaigns
        .iter()
        .flat_map(|campaign| &campaign.events)
        .map(|event| {
            (
                event.subject().replacen("eval.", "bench.", 1),
                event.to_json().len(),
            )
        })
        .collect();
    drop(planned);

    let started = Instant::now();
    let report = ingest::legacy::import(&log, path).await?;
    let import = started.elapsed();
    let problems = report.problems.len() as u64;
    let events = report.summary.stored;
    if subjects_and_sizes.len() as u64 != events {
        bail!(
            "the import stored {events} events, its plan has {}",
            subjects_and_sizes.len()
        );
    }

    let started = Instant::now();
    let read = raw_read(&log, &EventFilter::default()).await?;
    let raw_read = started.elapsed();
    if read != events {
        bail!("the raw read saw {read} events, {events} were stored");
    }

    let plain_publish = plain_publish(&log, subjects_and_sizes).await?;

    let started = Instant::now();
    let report = rescore(&log, &RescoreFilter::All, &ScoringConfig::default(), |_| {}).await?;
    let rescore = started.elapsed();
    Ok(LegacyBench {
        trials,
        campaigns,
        events,
        import,
        plain_publish,
        raw_read,
        rescore,
        scored: report.n_finished,
        problems,
    })
}

//! `evalctl bench trial`: for each fault, the trial overhead (reset → healthy → injected) and the
//! cleanup time, on a real lab.

use std::path::Path;
use std::time::{Duration, Instant};

use chaos::Result;
use chaos::etcd::{EtcdLab, EtcdSubject};
use chaos::faults;
use chaos::lab::Isolation;
use schemas::campaign::{
    ChaosSpec, DiskPressureParams, LatencyParams, NetworkPartitionParams, NodeKillParams,
    PacketLossParams, ProcessPauseParams, Target,
};
use serde::Serialize;
use viewer::table::{Column, TextTable};

use super::TrialBenchArgs;
use crate::cli::Outcome;

#[derive(Debug, Clone, Serialize)]
struct FaultTiming {
    chaos_type: String,
    repeats: usize,
    /// Median reset → healthy → injected, in milliseconds.
    overhead_ms: f64,
    /// Median cleanup, in milliseconds.
    cleanup_ms: f64,
    /// Present when the fault cannot run on this lab.
    skipped: Option<String>,
}

pub(super) async fn run(args: TrialBenchArgs) -> Outcome {
    let work_dir = tempfile::tempdir()?;
    let timings = trial_bench(
        work_dir.path(),
        Isolation::available(),
        args.repeat.max(1),
        |fault| eprintln!("bench: {fault}"),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string(&timings)?);
        return Ok(());
    }
    let mut table = TextTable::new(&[
        Column::left("fault", 18),
        Column::right("repeats", 7),
        Column::right("reset→healthy→injected (ms)", 28),
        Column::right("cleanup (ms)", 12),
    ]);
    let mut skipped = String::new();
    for timing in &timings {
        match &timing.skipped {
            Some(reason) => {
                skipped.push_str(&format!("{} skipped: {reason}\n", timing.chaos_type));
            }
            None => {
                table.row([
                    timing.chaos_type.to_string(),
                    timing.repeats.to_string(),
                    format!("{:.0}", timing.overhead_ms),
                    format!("{:.1}", timing.cleanup_ms),
                ]);
            }
        }
    }
    print!("{}{skipped}", table.render());
    println!("aim: overhead under 5000 ms, cleanup under 1000 ms");
    Ok(())
}

/// Runs every fault `repeats` times on one lab in `data_dir` and reports the medians.
async fn trial_bench(
    data_dir: &Path,
    isolation: Isolation,
    repeats: usize,
    mut progress: impl FnMut(&str),
) -> Result<Vec<FaultTiming>> {
    let mut subject = EtcdLab::create(data_dir, Some("bench".into()), 3, isolation).await?;
    let result = measure_all(&mut subject, repeats, &mut progress).await;
    subject.lab.destroy().await?;
    result
}

async fn measure_all(
    subject: &mut EtcdLab,
    repeats: usize,
    progress: &mut impl FnMut(&str),
) -> Result<Vec<FaultTiming>> {
    let target = Target::Node(2);
    let faults = [
        ChaosSpec::NodeKill(NodeKillParams {
            target: target.clone(),
        }),
        ChaosSpec::ProcessPause(ProcessPauseParams {
            target: target.clone(),
            duration_seconds: None,
        }),
        ChaosSpec::Latency(LatencyParams {
            target: target.clone(),
            ..Default::default()
        }),
        ChaosSpec::PacketLoss(PacketLossParams {
            target: target.clone(),
            ..Default::default()
        }),
        ChaosSpec::NetworkPartition(NetworkPartitionParams {
            target: target.clone(),
            ..Default::default()
        }),
        ChaosSpec::DiskPressure(DiskPressureParams {
            target,
            ..Default::default()
        }),
    ];
    let mut timings = Vec::new();
    for chaos in faults {
        let name = chaos.chaos_type().to_string();
        progress(&name);
        let mut overheads = Vec::new();
        let mut cleanups = Vec::new();
        let mut skipped = None;
        for repeat in 0..repeats {
            let started = Instant::now();
            subject.reset().await?;
            subject.wait_healthy(Duration::from_secs(60)).await?;
            let record = match faults::plan(&EtcdSubject, &subject.lab, &chaos, repeat as u64).await
            {
                Ok(record) => record,
                Err(chaos::Error::Unsupported(reason)) => {
                    skipped = Some(reason);
                    break;
                }
                Err(error) => return Err(error),
            };
            faults::apply(&EtcdSubject, &subject.lab, &record).await?;
            overheads.push(started.elapsed());
            let started = Instant::now();
            faults::cleanup(&EtcdSubject, &mut subject.lab, &record).await?;
            cleanups.push(started.elapsed());
        }
        timings.push(FaultTiming {
            chaos_type: name,
            repeats: overheads.len(),
            overhead_ms: median_ms(&mut overheads),
            cleanup_ms: median_ms(&mut cleanups),
            skipped,
        });
    }
    Ok(timings)
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

//! Expansion of a campaign into its matrix of trials: a pure function, value in, value out.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{CampaignFile, ChaosSpec, ChaosType, NoneParams, SubjectKind, SubjectSettings};

/// One trial of the matrix, as carried by `TrialRequested`: everything a worker needs to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrialSpec {
    /// Position in the campaign's matrix, from 0; trial ids and event ids derive from it.
    pub trial_index: u32,
    pub subject: SubjectKind,
    pub subject_settings: SubjectSettings,
    /// Position of this fault in the campaign's `chaos_types` list; 0 for the control trials an
    /// empty list with `include_baseline` stands for.
    pub chaos_index: u32,
    /// The fault, with every default filled in.
    pub chaos: ChaosSpec,
    /// The operator variant; `None` for a baseline trial.
    pub variant: Option<String>,
    /// A baseline trial: the same chaos, no operator.
    pub baseline: bool,
    /// Which repetition of its subject × chaos × variant combination, from 0.
    pub repetition: u32,
    /// Seeds every random choice of the trial. Equal for every variant (and the baseline) of the
    /// same subject, chaos entry and repetition, so that they face the identical fault schedule.
    pub seed: u64,
    pub timeout_seconds: u32,
    pub cooldown_seconds: u32,
}

impl TrialSpec {
    /// A control trial: the operator runs, nothing is broken (`chaos: none`).
    pub fn is_control(&self) -> bool {
        self.chaos.is_control()
    }
}

/// Most trials one campaign may expand to: a campaign is published whole, one event per trial,
/// and each trial runs for minutes on a real cluster.
pub const MAX_TRIALS: u64 = 100_000;

/// How many trials [`expand`] makes of `campaign` with `n_variants` variants, counted without
/// making them (saturating, for any size a file can ask).
pub fn trial_count(campaign: &CampaignFile, n_variants: usize) -> u64 {
    let implied_control = campaign.chaos_types.is_empty() && campaign.include_baseline;
    let chaos = if implied_control {
        1
    } else {
        campaign.chaos_types.len() as u64
    };
    let subjects = campaign.subjects.len() as u64;
    let repetitions = u64::from(campaign.trials_per_combination);
    let operated = subjects
        .saturating_mul(chaos)
        .saturating_mul(n_variants as u64)
        .saturating_mul(repetitions);
    let baselines = if campaign.include_baseline && !implied_control {
        let faults = campaign
            .chaos_types
            .iter()
            .filter(|chaos| !chaos.is_control())
            .count() as u64;
        subjects.saturating_mul(faults).saturating_mul(repetitions)
    } else {
        0
    };
    operated.saturating_add(baselines)
}

/// Expands `campaign` into its trials: for each subject, each chaos entry, each variant, each
/// repetition a trial; then, when `include_baseline` is set, for each subject, each chaos entry
/// but `none`, each repetition a baseline trial. An empty `chaos_types` with `include_baseline`
/// (the seed harness's fault-free form) stands for one `none` entry with its defaults, without
/// baselines: control trials only. `variants` are the resolved variant names in campaign order
/// (empty gives only the baselines); `seed` is the campaign's seed (the file's `seed`, or the one
/// drawn at publish time).
pub fn expand(campaign: &CampaignFile, variants: &[String], seed: u64) -> Vec<TrialSpec> {
    let implied_control;
    let chaos_types: &[ChaosSpec] = if campaign.chaos_types.is_empty() && campaign.include_baseline
    {
        implied_control = [ChaosSpec::None(NoneParams::default())];
        &implied_control
    } else {
        &campaign.chaos_types
    };
    let mut trials = Vec::new();
    let mut push = |subject: SubjectKind,
                    chaos_index: usize,
                    chaos: &ChaosSpec,
                    variant: Option<&String>,
                    repetition: u32| {
        let chaos_index = u32::try_from(chaos_index).expect("fewer than 2^32 chaos entries");
        trials.push(TrialSpec {
            trial_index: u32::try_from(trials.len()).expect("fewer than 2^32 trials"),
            subject,
            subject_settings: campaign
                .subject_settings
                .get(&subject)
                .cloned()
                .unwrap_or_default(),
            chaos_index,
            chaos: chaos.clone(),
            variant: variant.cloned(),
            baseline: variant.is_none(),
            repetition,
            seed: trial_seed(seed, subject, chaos_index, repetition),
            timeout_seconds: campaign.trial_timeout_seconds,
            cooldown_seconds: campaign.cooldown_seconds,
        });
    };
    for &subject in &campaign.subjects {
        for (chaos_index, chaos) in chaos_types.iter().enumerate() {
            for variant in variants {
                for repetition in 0..campaign.trials_per_combination {
                    push(subject, chaos_index, chaos, Some(variant), repetition);
                }
            }
        }
    }
    if campaign.include_baseline {
        for &subject in &campaign.subjects {
            // Nothing broken and no operator: such a trial would test nothing.
            for (chaos_index, chaos) in chaos_types
                .iter()
                .enumerate()
                .filter(|(_, chaos)| !chaos.is_control())
            {
                for repetition in 0..campaign.trials_per_combination {
                    push(subject, chaos_index, chaos, None, repetition);
                }
            }
        }
    }
    trials
}

/// The seed of one matrix cell's repetition: the first 8 bytes (little endian) of
/// SHA-256("eval trial seed v1", campaign seed, subject, chaos index, repetition). The variant is
/// left out on purpose, so that all variants and the baseline share it.
fn trial_seed(campaign_seed: u64, subject: SubjectKind, chaos_index: u32, repetition: u32) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"eval trial seed v1\0");
    hasher.update(campaign_seed.to_le_bytes());
    hasher.update(subject.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(chaos_index.to_le_bytes());
    hasher.update(repetition.to_le_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// One cell of the matrix with its number of trials, for the summary printed at publish time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixCell {
    pub subject: SubjectKind,
    pub chaos_index: u32,
    pub chaos_type: ChaosType,
    /// The variant; `None` for the baselines.
    pub variant: Option<String>,
    pub n_trials: usize,
}

impl MatrixCell {
    /// The variant's name, or `baseline`.
    pub fn variant_label(&self) -> &str {
        self.variant.as_deref().unwrap_or("baseline")
    }
}

/// Counts `trials` per subject × chaos entry × variant (or baseline), in matrix order.
pub fn matrix_counts(trials: &[TrialSpec]) -> Vec<MatrixCell> {
    let mut cells: Vec<MatrixCell> = Vec::new();
    for trial in trials {
        let existing = cells.iter_mut().find(|cell| {
            cell.subject == trial.subject
                && cell.chaos_index == trial.chaos_index
                && cell.variant == trial.variant
        });
        match existing {
            Some(cell) => cell.n_trials += 1,
            None => cells.push(MatrixCell {
                subject: trial.subject,
                chaos_index: trial.chaos_index,
                chaos_type: trial.chaos.chaos_type(),
                variant: trial.variant.clone(),
                n_trials: 1,
            }),
        }
    }
    cells
}

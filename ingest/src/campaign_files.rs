//! Reads a campaign file and the variant files it names from disk, and prepares the campaign for
//! publishing: validation, variant resolution, the seed, and the expanded matrix.

use std::path::{Path, PathBuf};

use schemas::campaign::{
    self, CampaignFile, Diagnostic, Diagnostics, TrialSpec, VariantFile, did_you_mean,
};
use schemas::event::ResolvedVariant;
use sha2::{Digest, Sha256};

/// The variant a campaign uses when it names none.
pub const DEFAULT_VARIANT: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error("{0}")]
    CampaignId(String),
}

/// A validated campaign, ready to publish.
#[derive(Debug, Clone)]
pub struct PreparedCampaign {
    pub campaign_id: String,
    /// The path as given.
    pub file_name: String,
    pub file_text: String,
    pub campaign: CampaignFile,
    pub variants: Vec<ResolvedVariant>,
    pub seed: u64,
    pub trials: Vec<TrialSpec>,
}

impl PreparedCampaign {
    pub fn n_baseline_trials(&self) -> u32 {
        self.trials.iter().filter(|trial| trial.baseline).count() as u32
    }
}

/// Reads, validates and expands the campaign in `file`. Variants are looked up in
/// `variants_dir`, or in `variants/` next to the campaign file. Every problem of the campaign file
/// and of the variant files it names is reported at once.
pub fn prepare(
    file: &Path,
    variants_dir: Option<&Path>,
    campaign_id: Option<&str>,
) -> Result<PreparedCampaign, PrepareError> {
    let campaign_id = match campaign_id {
        Some(id) => {
            schemas::ids::check_campaign_id(id).map_err(PrepareError::CampaignId)?;
            id.to_string()
        }
        None => schemas::ids::new_campaign_id(),
    };
    let file_name = file.display().to_string();
    let file_text = read(file)?;
    let parsed = campaign::parse_campaign(&file_name, &file_text).map_err(PrepareError::Invalid)?;
    let variants_dir = variants_dir.map(Path::to_path_buf).unwrap_or_else(|| {
        file.parent()
            .unwrap_or_else(|| Path::new("."))
            .join("variants")
    });

    let (variant_names, implicit) = match (&parsed.campaign.variants, &parsed.campaign.variant) {
        (Some(names), _) => (names.clone(), false),
        (None, Some(name)) => (vec![name.clone()], false),
        (None, None) => (vec![DEFAULT_VARIANT.to_string()], true),
    };
    let catalog = VariantCatalog::scan(&variants_dir)?;
    let mut diagnostics = Diagnostics::default();
    let mut variants = Vec::new();
    for (index, name) in variant_names.iter().enumerate() {
        let path = if parsed.campaign.variants.is_some() {
            format!("variants[{index}]")
        } else {
            "variant".to_string()
        };
        match catalog.find(name) {
            Some(Ok(found)) => variants.push(found.clone()),
            Some(Err(problems)) => diagnostics.0.extend(problems.0.iter().cloned()),
            None if implicit => variants.push(ResolvedVariant {
                file: String::new(),
                variant: VariantFile {
                    name: DEFAULT_VARIANT.to_string(),
                    model: None,
                    system_prompt: None,
                    tools_config: Default::default(),
                    command: None,
                },
            }),
            None => diagnostics.push(Diagnostic::at(
                &parsed.location_of(&path),
                path.clone(),
                catalog.unknown_message(name),
            )),
        }
    }
    if !diagnostics.is_empty() {
        return Err(PrepareError::Invalid(diagnostics));
    }

    let seed = parsed
        .campaign
        .seed
        .unwrap_or_else(|| seed_from_campaign_id(&campaign_id));
    let trials = campaign::expand(&parsed.campaign, &variant_names, seed);
    let prepared = PreparedCampaign {
        campaign_id,
        file_name,
        file_text,
        campaign: parsed.campaign,
        variants,
        seed,
        trials,
    };
    // The campaign and its variant files travel in one message.
    let size = crate::publish::published_size(&prepared);
    let limit = schemas::log::DEFAULT_MAX_PAYLOAD - schemas::log::HEADER_ROOM;
    if size > limit {
        return Err(PrepareError::Invalid(Diagnostics::from(Diagnostic::at(
            &schemas::campaign::Location::start_of(&prepared.file_name),
            "",
            format!(
                "with its {} variant file(s) the campaign makes a CampaignPublished event of \
                 {size} bytes; one NATS message holds at most {limit} by default: shorten the \
                 variant files' system prompts, or use fewer variants per campaign",
                prepared.variants.len()
            ),
        ))));
    }
    Ok(prepared)
}

/// The seed of a campaign whose file fixes none: drawn from its id, so that publishing the same
/// campaign id again yields the same trials.
pub fn seed_from_campaign_id(campaign_id: &str) -> u64 {
    let hash = Sha256::digest(format!("seed:{campaign_id}").as_bytes());
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Reads a campaign or variant file, refusing one far over [`campaign::MAX_FILE_BYTES`] before
/// reading it into memory (the parser says how large it is and what the limit is).
fn read(path: &Path) -> Result<String, PrepareError> {
    let error = |source| PrepareError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    use std::io::Read;
    std::fs::File::open(path)
        .map_err(error)?
        .take(campaign::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    if bytes.len() > campaign::MAX_FILE_BYTES {
        // Cut anywhere: the parser refuses it for its size alone.
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes).map_err(|utf8| {
        error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            utf8.to_string(),
        ))
    })
}

/// The `*.yaml` and `*.yml` files among `entries`, sorted: the variant files of a directory.
pub fn yaml_files(entries: std::fs::ReadDir) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            matches!(
                path.extension().and_then(|ext| ext.to_str()),
                Some("yaml" | "yml")
            )
        })
        .collect();
    paths.sort();
    paths
}

/// The variant files of one directory, each parsed once.
struct VariantCatalog {
    dir: PathBuf,
    /// (file stem, path, parsed file or its problems)
    files: Vec<(String, String, Result<ResolvedVariant, Diagnostics>)>,
}

/// Every variant file of `dir` (`*.yaml`, `*.yml`), parsed; the problems of every file that does
/// not parse. A missing directory is an error here: it was named on purpose.
pub fn read_variant_dir(dir: &Path) -> Result<Vec<VariantFile>, PrepareError> {
    if !dir.is_dir() {
        return Err(PrepareError::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    let catalog = VariantCatalog::scan(dir)?;
    let mut variants = Vec::new();
    let mut problems = Diagnostics::default();
    for (_, _, parsed) in catalog.files {
        match parsed {
            Ok(resolved) => variants.push(resolved.variant),
            Err(diagnostics) => problems.0.extend(diagnostics.0),
        }
    }
    if problems.is_empty() {
        Ok(variants)
    } else {
        Err(PrepareError::Invalid(problems))
    }
}

impl VariantCatalog {
    fn scan(dir: &Path) -> Result<VariantCatalog, PrepareError> {
        let mut files = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(VariantCatalog {
                    dir: dir.to_path_buf(),
                    files,
                });
            }
            Err(source) => {
                return Err(PrepareError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        for path in yaml_files(entries) {
            let stem = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = path.display().to_string();
            let text = read(&path)?;
            let parsed = campaign::parse_variant(&file, &text).map(|variant| ResolvedVariant {
                file: file.clone(),
                variant,
            });
            files.push((stem, file, parsed));
        }
        Ok(VariantCatalog {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// `<name>.yaml` first, else the file whose `name:` matches, as the seed harness did. A file
    /// found by its stem that does not parse is reported with its own problems.
    fn find(&self, name: &str) -> Option<Result<&ResolvedVariant, &Diagnostics>> {
        if let Some((_, _, parsed)) = self.files.iter().find(|(stem, _, _)| stem == name) {
            return Some(parsed.as_ref());
        }
        self.files
            .iter()
            .filter_map(|(_, _, parsed)| parsed.as_ref().ok())
            .find(|resolved| resolved.variant.name == name)
            .map(Ok)
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .files
            .iter()
            .flat_map(|(stem, _, parsed)| {
                let by_name = parsed.as_ref().ok().map(|r| r.variant.name.as_str());
                std::iter::once(stem.as_str()).chain(by_name)
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    fn unknown_message(&self, name: &str) -> String {
        let names = self.names();
        let dir = self.dir.display();
        if names.is_empty() {
            return format!(
                "unknown variant {name:?}: {dir} has no variant files (create {dir}/{name}.yaml, or pass --variants-dir)"
            );
        }
        match did_you_mean(name, names.iter().copied()) {
            Some(close) => format!("unknown variant {name:?} (did you mean {close:?}?)"),
            None => format!(
                "unknown variant {name:?}; variants in {dir}: {}",
                names.join(", ")
            ),
        }
    }
}

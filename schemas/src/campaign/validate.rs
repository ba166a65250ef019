//! Validation of campaign and variant files: a walk of the YAML tree along the JSON Schema that
//! schemars generates from the models, then serde for the typed value, then the checks no schema
//! can express; every problem is reported, each with its line, column and field path.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::diagnostic::{Diagnostic, Diagnostics, FieldPath, Location, did_you_mean, parent_path};
use super::model::{
    CampaignFile, ChaosSpec, DiskPressureWay, NetworkPartitionParams, NodeKillWay, Runtime,
    SubjectKind, SubjectSettings, Target, VariantFile,
};
use super::schema_walk::check_against_schema;
use super::yaml::{self, Node, NodeKind, Position, to_json};

static CAMPAIGN_SCHEMA: LazyLock<Value> =
    LazyLock::new(|| schemars::schema_for!(CampaignFile).to_value());
static VARIANT_SCHEMA: LazyLock<Value> =
    LazyLock::new(|| schemars::schema_for!(VariantFile).to_value());

/// A campaign file that passed validation, with the position of every field so that callers can
/// report their own findings (such as a variant name that matches no file) at the right line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCampaign {
    pub campaign: CampaignFile,
    file: String,
    positions: BTreeMap<String, Position>,
}

impl ParsedCampaign {
    /// The position of a field path such as `variants[1]`, `variant` or
    /// `chaos_types[0].params.min_ms`: its value when that is a single value, else its key. A
    /// path absent from the file falls back to its nearest present parent, then to the file start.
    pub fn location_of(&self, path: &str) -> Location {
        locate(&self.file, &self.positions, path)
    }

    pub fn file_name(&self) -> &str {
        &self.file
    }
}

/// The largest campaign or variant file: every file travels whole in the campaign's
/// `CampaignPublished`, one NATS message (1 MiB by default).
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// Refuses a file over [`MAX_FILE_BYTES`] before parsing it.
fn check_size(file_name: &str, text: &str) -> Result<(), Diagnostics> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Diagnostics::from(Diagnostic::at(
            &Location::start_of(file_name),
            "",
            format!(
                "the file holds more than {MAX_FILE_BYTES} bytes, the most a campaign or variant \
                 file may hold (it travels whole in one event): shorten it"
            ),
        )));
    }
    Ok(())
}

/// Reads and validates a campaign file; `file_name` is only used in the diagnostics.
pub fn parse_campaign(file_name: &str, text: &str) -> Result<ParsedCampaign, Diagnostics> {
    check_size(file_name, text)?;
    let (campaign, positions): (CampaignFile, _) =
        parse_file(file_name, text, &CAMPAIGN_SCHEMA, default_chaos_params)?;
    let mut diagnostics = Diagnostics::default();
    let at = |path: &str| locate(file_name, &positions, path);
    check_campaign(&campaign, &at, &mut diagnostics);
    finish(diagnostics)?;
    Ok(ParsedCampaign {
        campaign,
        file: file_name.to_string(),
        positions,
    })
}

/// Reads and validates a variant file; `file_name` is only used in the diagnostics.
pub fn parse_variant(file_name: &str, text: &str) -> Result<VariantFile, Diagnostics> {
    check_size(file_name, text)?;
    let (variant, positions): (VariantFile, _) =
        parse_file(file_name, text, &VARIANT_SCHEMA, |_| {})?;
    let mut diagnostics = Diagnostics::default();
    if variant.name.trim().is_empty() {
        diagnostics.push(Diagnostic::at(
            &locate(file_name, &positions, "name"),
            "name",
            "must not be empty",
        ));
    }
    finish(diagnostics)?;
    Ok(variant)
}

fn finish(mut diagnostics: Diagnostics) -> Result<(), Diagnostics> {
    if diagnostics.is_empty() {
        Ok(())
    } else {
        diagnostics.sort_by_position();
        Err(diagnostics)
    }
}

fn locate(file: &str, positions: &BTreeMap<String, Position>, path: &str) -> Location {
    let mut path = Some(path);
    while let Some(candidate) = path {
        if let Some(position) = positions.get(candidate) {
            return Location {
                file: file.to_string(),
                line: position.line,
                col: position.col,
            };
        }
        path = parent_path(candidate);
    }
    Location::start_of(file)
}

/// The shared pipeline: YAML tree, schema walk, JSON value, serde. Returns the typed file and the
/// position of every field path.
fn parse_file<T: DeserializeOwned>(
    file: &str,
    text: &str,
    schema: &Value,
    normalize: fn(&mut Value),
) -> Result<(T, BTreeMap<String, Position>), Diagnostics> {
    let at = |position: Position| Location {
        file: file.to_string(),
        line: position.line,
        col: position.col,
    };
    let document = yaml::read(text).map_err(|problem| {
        Diagnostics::from(Diagnostic::at(
            &at(problem.position),
            problem.path,
            problem.message,
        ))
    })?;
    let mut diagnostics = Diagnostics(
        document
            .problems
            .into_iter()
            .map(|problem| Diagnostic::at(&at(problem.position), problem.path, problem.message))
            .collect(),
    );
    let Some(root) = document.root else {
        diagnostics.push(Diagnostic::at(
            &Location::start_of(file),
            "",
            "the file is empty, expected a map of fields",
        ));
        return Err(diagnostics);
    };

    diagnostics
        .0
        .extend(check_against_schema(file, schema, &root));
    finish(diagnostics)?;
    // Only free-form values (such as `tools_config`) can still hold a number JSON cannot.
    let mut diagnostics = Diagnostics::default();
    let mut value = to_json(&root, &FieldPath::root(), &mut |position, path, message| {
        diagnostics.push(Diagnostic::at(&at(position), path, message));
    });
    finish(diagnostics)?;

    normalize(&mut value);
    let typed = serde_json::from_value(value).map_err(|error| {
        Diagnostics::from(Diagnostic::at(&at(root.position), "", error.to_string()))
    })?;
    let mut positions = BTreeMap::new();
    positions.insert(String::new(), root.position);
    record_positions(&root, &FieldPath::root(), &mut positions);
    Ok((typed, positions))
}

/// `params` of a chaos entry may be absent or null, meaning every default; serde's adjacently
/// tagged enums need the key, so an empty map stands in.
fn default_chaos_params(value: &mut Value) {
    let Some(entries) = value.get_mut("chaos_types").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
        if entry.get("params").is_none_or(Value::is_null) {
            entry.insert("params".to_string(), Value::Object(Map::new()));
        }
    }
}

fn record_positions(node: &Node, path: &FieldPath, positions: &mut BTreeMap<String, Position>) {
    match &node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = path.index(index);
                positions.insert(item_path.as_str().to_string(), item.position);
                record_positions(item, &item_path, positions);
            }
        }
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                let value_path = path.key(key.text().unwrap_or_default());
                let position = if value.text().is_some() && !value.is_null() {
                    value.position
                } else {
                    key.position
                };
                positions.insert(value_path.as_str().to_string(), position);
                record_positions(value, &value_path, positions);
            }
        }
    }
}

/// The checks that need more than one field at a time.
fn check_campaign(
    campaign: &CampaignFile,
    at: &impl Fn(&str) -> Location,
    diagnostics: &mut Diagnostics,
) {
    let mut report = |path: String, message: String| {
        diagnostics.push(Diagnostic::at(&at(&path), path, message));
    };
    if campaign.name.trim().is_empty() {
        report("name".to_string(), "must not be empty".to_string());
    }
    let n_variants = campaign.variants.as_ref().map_or(1, Vec::len);
    let n_trials = super::matrix::trial_count(campaign, n_variants);
    if n_trials > super::matrix::MAX_TRIALS {
        report(
            "trials_per_combination".to_string(),
            format!(
                "the campaign expands to {n_trials} trials ({} subject(s) × {} chaos type(s) × \
                 {n_variants} variant(s) × {} repetition(s){}); a campaign may have at most {}: \
                 lower trials_per_combination or split the campaign",
                campaign.subjects.len(),
                campaign.chaos_types.len().max(1),
                campaign.trials_per_combination,
                if campaign.include_baseline {
                    ", with baselines"
                } else {
                    ""
                },
                super::matrix::MAX_TRIALS
            ),
        );
    }

    let mut first_subject = HashMap::new();
    for (index, subject) in campaign.subjects.iter().enumerate() {
        if let Some(first) = first_subject.get(subject) {
            report(
                format!("subjects[{index}]"),
                format!("subject \"{subject}\" is listed twice (first as subjects[{first}])"),
            );
        } else {
            first_subject.insert(*subject, index);
        }
    }

    if campaign.chaos_types.is_empty() && !campaign.include_baseline {
        report(
            "chaos_types".to_string(),
            "must list at least one chaos type; an empty list runs control trials (no fault) only with include_baseline: true, or list `- type: none`".to_string(),
        );
    }
    for (index, chaos) in campaign.chaos_types.iter().enumerate() {
        if let Some(first) = campaign.chaos_types[..index]
            .iter()
            .position(|earlier| earlier == chaos)
        {
            report(
                format!("chaos_types[{index}]"),
                format!("duplicate chaos entry: same type and params as chaos_types[{first}]"),
            );
        }
        let params_path = format!("chaos_types[{index}].params");
        if let ChaosSpec::Latency(latency) = chaos
            && latency.min_ms > latency.max_ms
        {
            report(
                format!("{params_path}.min_ms"),
                format!(
                    "must not be greater than max_ms ({}), got {}",
                    latency.max_ms, latency.min_ms
                ),
            );
        }
        if let Some(Target::Node(node)) = chaos_target(chaos)
            && let Some((nodes, subject)) = smallest_subject(campaign)
            && *node > nodes
        {
            report(
                format!("{params_path}.target"),
                format!("target node {node} is beyond the {nodes} nodes of {subject}"),
            );
        }
        let etcd = campaign.subjects.contains(&SubjectKind::Etcd);
        if etcd && chaos.chaos_type().tikv_only() {
            report(
                format!("chaos_types[{index}].type"),
                format!(
                    "{} needs PD, which only tikv has, and this campaign's subjects include etcd; run it in a campaign with subjects: [tikv]",
                    chaos.chaos_type()
                ),
            );
        }
        if etcd
            && let Some(Target::Choice(choice)) = chaos_target(chaos)
            && choice.is_pd()
        {
            report(
                format!("{params_path}.target"),
                "chooses among PD members, which only tikv has, and this campaign's subjects include etcd; use random, leader, follower or a node number".to_string(),
            );
        }
        if let ChaosSpec::RegionUnavailable(params) = chaos
            && let Some(stores) = params.stores
        {
            let nodes = subject_settings(campaign, SubjectKind::Tikv).nodes;
            if stores > nodes {
                report(
                    format!("{params_path}.stores"),
                    format!("must not exceed the {nodes} stores of tikv, got {stores}"),
                );
            }
        }
        if let ChaosSpec::NetworkPartition(partition) = chaos {
            check_partition_groups(campaign, partition, &params_path, &mut report);
        }
        // A control trial ends after its duration; one that long would end as timed out.
        if let ChaosSpec::None(control) = chaos
            && control.duration_seconds >= campaign.trial_timeout_seconds
        {
            report(
                format!("{params_path}.duration_seconds"),
                format!(
                    "must be less than trial_timeout_seconds ({}), got {}",
                    campaign.trial_timeout_seconds, control.duration_seconds
                ),
            );
        }
    }

    if campaign.variant.is_some() && campaign.variants.is_some() {
        report(
            "variants".to_string(),
            "use either variant or variants, not both".to_string(),
        );
    }
    if campaign
        .variant
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        report("variant".to_string(), "must not be empty".to_string());
    }
    let mut first_variant = HashMap::new();
    for (index, name) in campaign.variants.iter().flatten().enumerate() {
        let path = format!("variants[{index}]");
        if name.trim().is_empty() {
            report(path, "a variant name must not be empty".to_string());
        } else if let Some(first) = first_variant.get(name.as_str()) {
            report(
                path,
                format!("variant \"{name}\" is listed twice (first as variants[{first}])"),
            );
        } else {
            first_variant.insert(name.as_str(), index);
        }
    }

    let listed: Vec<&str> = campaign.subjects.iter().map(|s| s.as_str()).collect();
    for subject in campaign.subject_settings.keys() {
        if !campaign.subjects.contains(subject) {
            let mut message = format!(
                "settings for subject \"{subject}\", which is not in subjects [{}]",
                listed.join(", ")
            );
            if let Some(suggestion) = did_you_mean(subject.as_str(), listed.iter().copied()) {
                message.push_str(&format!(" (did you mean \"{suggestion}\"?)"));
            }
            report(format!("subject_settings.{subject}"), message);
        }
    }
    // Settings of another runtime are refused, so that nobody believes a trial ran against their
    // cluster when it ran on a fresh lab.
    for (subject, settings) in &campaign.subject_settings {
        for endpoint in &settings.endpoints {
            if !is_http_endpoint(endpoint) {
                report(
                    format!("subject_settings.{subject}.endpoints"),
                    format!(
                        "{endpoint:?} is not an address the harness reaches a node at; write http://HOST:PORT (a pod's address or name, e.g. http://etcd-0.etcd-headless.etcd.svc:2379)"
                    ),
                );
            }
        }
        if settings.runtime != Runtime::Kubernetes {
            for (field, given) in [
                ("endpoints", !settings.endpoints.is_empty()),
                ("namespace", settings.namespace.is_some()),
                ("context", settings.context.is_some()),
                ("selector", settings.selector.is_some()),
                ("pd_selector", settings.pd_selector.is_some()),
                ("cluster", settings.cluster.is_some()),
                ("node_kill", settings.node_kill != NodeKillWay::default()),
                (
                    "disk_pressure",
                    settings.disk_pressure != DiskPressureWay::default(),
                ),
            ] {
                if given {
                    report(
                        format!("subject_settings.{subject}.{field}"),
                        format!(
                            "is for runtime: kubernetes only; remove {field}, or add runtime: kubernetes"
                        ),
                    );
                }
            }
        }
        if settings.pd_selector.is_some() && *subject != SubjectKind::Tikv {
            report(
                format!("subject_settings.{subject}.pd_selector"),
                "selects TiKV's PD pods, for tikv only; remove it here".to_string(),
            );
        }
        if settings.pd_members.is_some() && *subject != SubjectKind::Tikv {
            report(
                format!("subject_settings.{subject}.pd_members"),
                "is the number of PD members of a TiKV lab, for tikv only; remove it here"
                    .to_string(),
            );
        }
        if let Some(members) = settings.pd_members
            && members == 2
        {
            report(
                format!("subject_settings.{subject}.pd_members"),
                "must be 1 or 3: two PD members lose their quorum when either stops".to_string(),
            );
        }
        if *subject == SubjectKind::Tikv && settings.lab_nodes(*subject) > 9 {
            report(
                format!("subject_settings.{subject}.nodes"),
                format!(
                    "a lab has at most 9 nodes: {} stores and {} PD members make {}",
                    settings.nodes,
                    settings.pd_members_of(*subject),
                    settings.lab_nodes(*subject)
                ),
            );
        }
        if settings.binaries.is_some() && *subject != SubjectKind::Tikv {
            report(
                format!("subject_settings.{subject}.binaries"),
                "names the directory of pd-server and tikv-server, for tikv only; remove it here"
                    .to_string(),
            );
        }
    }

    if !is_time_zone_name(&campaign.operator_timezone) {
        report(
            "operator_timezone".to_string(),
            format!(
                "\"{}\" is neither UTC, a fixed offset such as +02:00, nor an IANA time zone name such as Europe/Berlin",
                campaign.operator_timezone
            ),
        );
    }
}

fn is_fixed_offset(text: &str) -> bool {
    let Some(digits) = text.strip_prefix(['+', '-']) else {
        return false;
    };
    let digits = digits.replace(':', "");
    !digits.is_empty()
        && digits.len() <= 4
        && digits.len() != 3
        && digits.chars().all(|c| c.is_ascii_digit())
}

fn subject_settings(campaign: &CampaignFile, subject: SubjectKind) -> SubjectSettings {
    campaign
        .subject_settings
        .get(&subject)
        .cloned()
        .unwrap_or_default()
}

/// The subject with the fewest nodes, which bounds every node number of a chaos entry.
fn smallest_subject(campaign: &CampaignFile) -> Option<(u32, SubjectKind)> {
    campaign
        .subjects
        .iter()
        .map(|subject| {
            (
                subject_settings(campaign, *subject).lab_nodes(*subject),
                *subject,
            )
        })
        .min()
}

fn chaos_target(chaos: &ChaosSpec) -> Option<&Target> {
    match chaos {
        ChaosSpec::NodeKill(params) => Some(&params.target),
        ChaosSpec::ProcessPause(params) => Some(&params.target),
        ChaosSpec::Latency(params) => Some(&params.target),
        ChaosSpec::PacketLoss(params) => Some(&params.target),
        ChaosSpec::NetworkPartition(params) => params.groups.is_none().then_some(&params.target),
        ChaosSpec::DiskPressure(params) => Some(&params.target),
        ChaosSpec::LeaderEvict(params) => Some(&params.target),
        ChaosSpec::PdLeaderKill(_) | ChaosSpec::RegionUnavailable(_) | ChaosSpec::None(_) => None,
    }
}

/// Groups name nodes from 1 up to every subject's node count, and no node twice.
fn check_partition_groups(
    campaign: &CampaignFile,
    partition: &NetworkPartitionParams,
    params_path: &str,
    report: &mut impl FnMut(String, String),
) {
    let Some(groups) = &partition.groups else {
        return;
    };
    let smallest = smallest_subject(campaign);
    let mut group_of_node = HashMap::new();
    for (group_index, group) in groups.iter().enumerate() {
        let group_path = format!("{params_path}.groups[{group_index}]");
        if group.is_empty() {
            report(
                group_path.clone(),
                "a group must list at least one node".to_string(),
            );
        }
        for (position, node) in group.iter().enumerate() {
            let node_path = format!("{group_path}[{position}]");
            if *node == 0 {
                report(node_path, "node numbers start at 1, got 0".to_string());
                continue;
            }
            if let Some((nodes, subject)) = smallest
                && *node > nodes
            {
                report(
                    node_path,
                    format!("node {node} is beyond the {nodes} nodes of {subject}"),
                );
                continue;
            }
            if let Some(first_group) = group_of_node.get(node) {
                report(
                    node_path,
                    format!("node {node} is already in groups[{first_group}]"),
                );
            } else {
                group_of_node.insert(*node, group_index);
            }
        }
    }
}

/// `UTC`, or an IANA-style `Area/Location` name; the names themselves are checked where a time
/// zone database is at hand.
/// `UTC`, a fixed offset (`+02:00`, `-0530`, `+2`, `UTC+2`), or the shape of an IANA name
/// (`Europe/Berlin`); whether such a zone exists is known only where its zoneinfo is read.
fn is_time_zone_name(name: &str) -> bool {
    if name == "UTC" || is_fixed_offset(name.strip_prefix("UTC").unwrap_or(name)) {
        return true;
    }
    let mut parts = name.split('/');
    let area = parts.next().unwrap_or_default();
    let area_ok = area.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && area.chars().all(|c| c.is_ascii_alphabetic());
    let rest: Vec<&str> = parts.collect();
    area_ok
        && !rest.is_empty()
        && rest.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

/// `http://HOST:PORT` with nothing after the port but an optional `/`.
fn is_http_endpoint(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

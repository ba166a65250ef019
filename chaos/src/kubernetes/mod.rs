//! The Kubernetes runtime's parts, through kube-rs against the real API: the client as kubectl
//! finds its configuration (`client.rs`), the subject's pods chosen by label selectors with
//! defaults for the TiDB Operator (v1 and v2) and the common etcd charts (`pods.rs`), the Chaos
//! Mesh objects of the network faults (`chaos_mesh.rs`), the faults themselves and their
//! cleanup by label (`faults.rs`), and the preflight that says, before anything is published,
//! what a campaign's faults need of the cluster and the rights the harness has (`preflight.rs`),
//! port-forwards that reach a pod's port from this host (`forward.rs`), commands run in a
//! container for the faults no object makes (`exec.rs`), and the runtime that makes
//! the selected pods a trial's nodes, reached through those port-forwards (`runtime.rs`).
//!
//! Everything the harness creates in a cluster carries [`TRIAL_LABEL`] (and the campaign and
//! fault beside it); cleanup lists and deletes by that label only, so nothing else is ever
//! deleted or changed.

pub mod chaos_mesh;
pub mod client;
pub mod exec;
pub mod faults;
pub mod forward;
pub mod pods;
pub mod preflight;
pub mod runtime;

use std::collections::BTreeMap;

/// The label naming the trial an object was made for; every object the harness creates has it.
pub const TRIAL_LABEL: &str = "eval.dev/trial";
/// The label naming the trial's campaign.
pub const CAMPAIGN_LABEL: &str = "eval.dev/campaign";
/// The label naming the fault (`latency`, …).
pub const FAULT_LABEL: &str = "eval.dev/fault";
/// Kubernetes' recommended label for the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value on everything the harness creates.
pub const MANAGED_BY: &str = "eval";

/// The labels of an object made for one fault of one trial.
pub fn labels(campaign_id: &str, trial_id: &str, fault: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (CAMPAIGN_LABEL.to_string(), label_value(campaign_id)),
        (TRIAL_LABEL.to_string(), label_value(trial_id)),
        (FAULT_LABEL.to_string(), label_value(fault)),
    ])
}

/// `text` as a label value: at most 63 characters of letters, digits, `-`, `_` and `.`, starting
/// and ending with a letter or digit. Trial ids (UUIDs) and fault names pass unchanged; another
/// character becomes `-`.
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// A kube error in one line: the API server's code, reason and message when it answered.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// The selector of everything made for `trial_id`.
pub fn trial_selector(trial_id: &str) -> String {
    format!("{TRIAL_LABEL}={}", label_value(trial_id))
}

/// The selector of everything the harness made, whatever the trial (`chaos cleanup --all`).
pub fn harness_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{TRIAL_LABEL}")
}

/// An object name from `parts`: lower case letters, digits and `-`, at most 63 characters (a
/// DNS label, which every kind accepts).
pub fn object_name(parts: &[&str]) -> String {
    let joined = parts.join("-").to_ascii_lowercase();
    let mapped: String = joined
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    mapped.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_names_are_what_the_api_accepts() {
        let trial = "0b5f6a2e-9c1d-8e4f-a1b2-c3d4e5f60718";
        assert_eq!(label_value(trial), trial);
        assert_eq!(label_value("my campaign/2"), "my-campaign-2");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
        assert_eq!(
            object_name(&["eval", "0B5F6A2E", "latency"]),
            "eval-0b5f6a2e-latency"
        );
        assert!(object_name(&["eval", &"x".repeat(100)]).len() <= 63);
        assert_eq!(trial_selector(trial), format!("eval.dev/trial={trial}"));
        assert_eq!(
            harness_selector(),
            "app.kubernetes.io/managed-by=eval,eval.dev/trial"
        );
    }
}

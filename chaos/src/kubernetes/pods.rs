//! The subject's nodes on Kubernetes: the pods its label selectors pick, numbered as the lab
//! numbers its nodes (the data pods first, by name with StatefulSet ordinals in numeric order,
//! then TiKV's PD pods). Without selectors in the campaign, the labels of the TiDB Operator (v1,
//! then v2) and of the common etcd charts are tried, and the one family that matches is used.
//! Cleanup waits here for a pod to be Ready again.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use schemas::campaign::SubjectKind;

use super::faults::{CLEANUP_WAIT, again};
use crate::error::{Error, Result};

/// The label selectors of a subject's pods: its data pods (etcd members, TiKV stores) and, for
/// TiKV, its PD members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selectors {
    /// Where the selectors come from, for messages (`TiDB Operator v1 labels`, `the campaign`).
    pub family: String,
    pub data: String,
    pub pd: Option<String>,
}

/// What the campaign says about the subject's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSettings {
    /// The data pods' selector; without it the defaults are tried.
    pub selector: Option<String>,
    /// TiKV: the PD pods' selector.
    pub pd_selector: Option<String>,
    /// The TiDB cluster's or the etcd release's name, narrowing the defaults to it.
    pub cluster: Option<String>,
}

/// The selector families tried, in order, when the campaign gives no selector:
///
/// - TiDB Operator v1 (`pkg/apis/label/label.go`): `app.kubernetes.io/{name=tidb-cluster,
///   managed-by=tidb-operator, component=tikv|pd, instance=<cluster>}`. Pods of v2 carry these
///   too (since v2.0.0), so v1's selector leaves out pods with `pingcap.com/managed-by`.
/// - TiDB Operator v2 (`api/core/v1alpha1/common_types.go`): `pingcap.com/{managed-by=
///   tidb-operator, component=tikv|pd, cluster=<cluster>}`.
/// - The etcd charts: `app.kubernetes.io/name=etcd` (`instance=<release>`); Bitnami's defrag
///   CronJob runs pods with the same labels, which [`select`] leaves out as a Job's.
pub fn default_selectors(subject: SubjectKind, cluster: Option<&str>) -> Vec<Selectors> {
    let with = |base: String, key: &str| match cluster {
        Some(cluster) => format!("{base},{key}={cluster}"),
        None => base,
    };
    let v1 = |component: &str| {
        with(
            format!(
                "app.kubernetes.io/name=tidb-cluster,app.kubernetes.io/managed-by=tidb-operator,app.kubernetes.io/component={component},!pingcap.com/managed-by"
            ),
            "app.kubernetes.io/instance",
        )
    };
    let v2 = |component: &str| {
        with(
            format!("pingcap.com/managed-by=tidb-operator,pingcap.com/component={component}"),
            "pingcap.com/cluster",
        )
    };
    match subject {
        SubjectKind::Tikv => vec![
            Selectors {
                family: "TiDB Operator v1 labels".into(),
                data: v1("tikv"),
                pd: Some(v1("pd")),
            },
            Selectors {
                family: "TiDB Operator v2 labels".into(),
                data: v2("tikv"),
                pd: Some(v2("pd")),
            },
        ],
        SubjectKind::Etcd => vec![Selectors {
            family: "etcd chart labels".into(),
            data: with(
                "app.kubernetes.io/name=etcd".to_string(),
                "app.kubernetes.io/instance",
            ),
            pd: None,
        }],
    }
}

/// One node: a pod the selectors picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeNode {
    /// From 1: the data pods, then the PD pods.
    pub number: u32,
    pub pod: String,
    /// The pod's uid: a pod of the same name made again (after `node_kill`) has another.
    pub uid: String,
    /// Every container ready and the pod not being deleted.
    pub ready: bool,
    /// A TiKV PD member.
    pub pd: bool,
    /// The database's container: the one named as the component (`etcd`, `tikv`, `pd`), else
    /// the first.
    pub container: String,
    /// Where that container mounts a persistent volume (its data), if it does.
    pub data_mount: Option<String>,
    /// How often that container has restarted.
    pub restarts: i32,
}

/// The subject's nodes in one namespace, and the selectors that found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub subject: SubjectKind,
    pub namespace: String,
    pub selectors: Selectors,
    pub nodes: Vec<KubeNode>,
}

impl Selection {
    pub fn node(&self, number: u32) -> Result<&KubeNode> {
        self.nodes
            .iter()
            .find(|node| node.number == number)
            .ok_or_else(|| {
                Error::Kube(format!(
                    "no node {number}: the selectors pick {} pods in namespace {}",
                    self.nodes.len(),
                    self.namespace
                ))
            })
    }

    /// Every pod's name of `numbers`, in that order.
    pub fn pod_names(&self, numbers: &[u32]) -> Result<Vec<String>> {
        numbers
            .iter()
            .map(|number| self.node(*number).map(|node| node.pod.clone()))
            .collect()
    }

    /// The pods not ready, for messages; empty when every one is.
    pub fn not_ready(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|node| !node.ready)
            .map(|node| node.pod.as_str())
            .collect()
    }
}

/// Lists the subject's pods in `namespace`: with the campaign's selectors, else with the first
/// default family that matches any pod (two families matching is an error that asks for a
/// selector). One list request per selector tried.
pub async fn select(
    pods: &Api<Pod>,
    namespace: &str,
    subject: SubjectKind,
    settings: &PodSettings,
) -> Result<Selection> {
    let candidates = match &settings.selector {
        Some(data) => vec![Selectors {
            family: "the campaign's selector".into(),
            data: data.clone(),
            pd: settings.pd_selector.clone(),
        }],
        None => default_selectors(subject, settings.cluster.as_deref()),
    };
    let mut matched = Vec::new();
    for selectors in candidates {
        let data = list(pods, namespace, &selectors.data).await?;
        if !data.is_empty() {
            matched.push((selectors, data));
        }
    }
    let (selectors, data) = match matched.len() {
        0 => {
            let tried = match &settings.selector {
                Some(data) => format!("selector {data:?}"),
                None => default_selectors(subject, settings.cluster.as_deref())
                    .iter()
                    .map(|s| format!("{} ({})", s.family, s.data))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            return Err(Error::Kube(format!(
                "no {subject} pods in namespace {namespace}: tried {tried}; set subject_settings.{subject}.namespace or .selector"
            )));
        }
        1 => matched.remove(0),
        _ => {
            let families: Vec<String> = matched
                .iter()
                .map(|(s, pods)| format!("{} ({} pods)", s.family, pods.len()))
                .collect();
            return Err(Error::Kube(format!(
                "{subject} pods in namespace {namespace} match {}; set subject_settings.{subject}.selector (or .cluster) to say which",
                families.join(" and ")
            )));
        }
    };
    let pd = match &selectors.pd {
        Some(selector) if subject == SubjectKind::Tikv => {
            let pd = list(pods, namespace, selector).await?;
            if pd.is_empty() {
                return Err(Error::Kube(format!(
                    "no PD pods in namespace {namespace} match {selector:?} ({}); set subject_settings.tikv.pd_selector",
                    selectors.family
                )));
            }
            pd
        }
        _ => Vec::new(),
    };
    Ok(Selection {
        subject,
        namespace: namespace.to_string(),
        nodes: number(&data, &pd),
        selectors,
    })
}

async fn list(pods: &Api<Pod>, namespace: &str, selector: &str) -> Result<Vec<Pod>> {
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|error| {
            Error::Kube(format!(
                "listing pods in namespace {namespace} with {selector:?}: {}",
                super::describe(&error)
            ))
        })?;
    // A Job's pods (Bitnami's etcd defrag, TiDB's backups) share the labels but are never
    // members.
    Ok(list
        .items
        .into_iter()
        .filter(|pod| {
            !pod.metadata
                .owner_references
                .as_ref()
                .is_some_and(|owners| owners.iter().any(|owner| owner.kind == "Job"))
        })
        .collect())
}

/// The nodes of these pods: data pods first, then PD pods, each group by name in natural order
/// (`tikv-2` before `tikv-10`).
pub fn number(data: &[Pod], pd: &[Pod]) -> Vec<KubeNode> {
    let mut nodes = Vec::new();
    for (pods, is_pd) in [(data, false), (pd, true)] {
        let mut sorted: Vec<&Pod> = pods.iter().collect();
        sorted.sort_by_key(|pod| natural_key(pod.metadata.name.as_deref().unwrap_or_default()));
        for pod in sorted {
            let (container, data_mount) = database_container(pod);
            nodes.push(KubeNode {
                number: nodes.len() as u32 + 1,
                pod: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                ready: is_ready(pod),
                pd: is_pd,
                restarts: restart_count(pod, &container),
                container,
                data_mount,
            });
        }
    }
    nodes
}

/// How often `container` of `pod` has restarted, as the pod's status says.
pub fn restart_count(pod: &Pod, container: &str) -> i32 {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find(|status| status.name == container)
        .map_or(0, |status| status.restart_count)
}

/// The pod's database container (named `etcd`, `tikv` or `pd`, else its first) and where it
/// mounts a persistent volume claim (a StatefulSet's data volume).
fn database_container(pod: &Pod) -> (String, Option<String>) {
    let Some(spec) = pod.spec.as_ref() else {
        return (String::new(), None);
    };
    let container = spec
        .containers
        .iter()
        .find(|c| matches!(c.name.as_str(), "etcd" | "tikv" | "pd"))
        .or_else(|| spec.containers.first());
    let Some(container) = container else {
        return (String::new(), None);
    };
    let claims: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|volume| volume.persistent_volume_claim.is_some())
        .map(|volume| volume.name.as_str())
        .collect();
    let data_mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|mount| claims.contains(&mount.name.as_str()) && mount.sub_path.is_none())
        .map(|mount| mount.mount_path.clone());
    (container.name.clone(), data_mount)
}

/// Sorts names by their text with every run of digits compared as a number.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

/// Ready as kubectl shows it: the pod's `Ready` condition true, and not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|condition| condition.type_ == "Ready" && condition.status == "True")
            })
}

/// Whether pod `name` of `namespace` exists and is Ready.
pub(super) async fn pod_ready(pods: &Api<Pod>, namespace: &str, name: &str) -> Result<bool> {
    let pod = pods.get_opt(name).await.map_err(|error| {
        Error::Kube(format!(
            "reading pod {namespace}/{name}: {}",
            super::describe(&error)
        ))
    })?;
    Ok(pod.as_ref().is_some_and(is_ready))
}

/// Waits until pod `name` of `namespace` exists and is Ready.
pub(super) async fn wait_pod_ready(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let started = tokio::time::Instant::now();
    loop {
        let seen = (!pod_ready(&pods, namespace, name).await?).then(String::new);
        let waiting = again(started, CLEANUP_WAIT, seen, |_| {
            Error::Kube(format!(
                "pod {namespace}/{name} is not Ready {}s after the fault",
                CLEANUP_WAIT.as_secs()
            ))
        });
        if !waiting.await? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_ordinals_sort_as_numbers() {
        let mut names = vec!["db-tikv-10", "db-tikv-2", "db-tikv-0", "db-tikv-1"];
        names.sort_by_key(|name| natural_key(name));
        assert_eq!(names, ["db-tikv-0", "db-tikv-1", "db-tikv-2", "db-tikv-10"]);
    }

    #[test]
    fn a_cluster_name_narrows_every_default() {
        let families = default_selectors(SubjectKind::Tikv, Some("basic"));
        assert_eq!(
            families[0].data,
            "app.kubernetes.io/name=tidb-cluster,app.kubernetes.io/managed-by=tidb-operator,app.kubernetes.io/component=tikv,!pingcap.com/managed-by,app.kubernetes.io/instance=basic"
        );
        assert_eq!(
            families[1].pd.as_deref(),
            Some(
                "pingcap.com/managed-by=tidb-operator,pingcap.com/component=pd,pingcap.com/cluster=basic"
            )
        );
        let etcd = default_selectors(SubjectKind::Etcd, None);
        assert_eq!(etcd[0].data, "app.kubernetes.io/name=etcd");
    }
}

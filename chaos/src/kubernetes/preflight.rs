//! What a campaign's trials on Kubernetes need of the cluster, checked before anything is
//! published: the API answers, the selectors pick pods, Chaos Mesh's kinds are served where a
//! fault needs them (API discovery, which every authenticated user may read), and the harness
//! may do every verb its faults use (one `SelfSubjectAccessReview` per right). Each missing
//! piece is one line with its fix.

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use schemas::campaign::{ChaosType, DiskPressureWay, NodeKillWay, SubjectKind};

use super::chaos_mesh;
use super::faults::Ways;
use super::pods::{self, PodSettings};

/// One right the harness needs: a verb on a resource (and subresource) of an API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Right {
    /// `""` for the core group.
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub verb: &'static str,
    /// Why, for the message.
    pub why: &'static str,
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resource = match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        };
        match self.group {
            "" => write!(f, "{} {resource}", self.verb),
            group => write!(f, "{} {resource}.{group}", self.verb),
        }
    }
}

const fn right(
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    why: &'static str,
) -> Right {
    Right {
        group,
        resource,
        subresource: None,
        verb,
        why,
    }
}

/// The Chaos Mesh kind (and plural) `fault` creates when done `ways`, if any.
pub fn chaos_kind(fault: ChaosType, ways: Ways) -> Option<(&'static str, &'static str)> {
    let index = match fault {
        ChaosType::Latency | ChaosType::PacketLoss | ChaosType::NetworkPartition => 0,
        ChaosType::DiskPressure => match ways.disk_pressure {
            DiskPressureWay::Fill => return None,
            DiskPressureWay::IoChaos => 1,
            DiskPressureWay::StressChaos => 2,
        },
        ChaosType::NodeKill | ChaosType::PdLeaderKill => match ways.node_kill {
            NodeKillWay::ContainerKill => 3,
            NodeKillWay::PodDelete | NodeKillWay::Signal => return None,
        },
        _ => return None,
    };
    Some(chaos_mesh::KINDS[index])
}

/// Whether `fault`, done `ways`, runs a command in the database's container (`pods/exec`).
fn uses_exec(fault: ChaosType, ways: Ways) -> bool {
    match fault {
        ChaosType::ProcessPause => true,
        ChaosType::DiskPressure => ways.disk_pressure == DiskPressureWay::Fill,
        ChaosType::NodeKill | ChaosType::PdLeaderKill => ways.node_kill == NodeKillWay::Signal,
        _ => false,
    }
}

/// Every right the trials of `faults` need in the subject's namespace, done `ways`;
/// `port_forward` when the nodes are reached through port-forwards (no `endpoints` given).
pub fn rights(faults: &BTreeSet<ChaosType>, ways: Ways, port_forward: bool) -> Vec<Right> {
    let mut rights = vec![
        right("", "pods", "list", "to find the subject's pods"),
        right("", "pods", "get", "to wait for a pod to be Ready"),
    ];
    if ways.node_kill == NodeKillWay::PodDelete
        && faults
            .iter()
            .any(|fault| matches!(fault, ChaosType::NodeKill | ChaosType::PdLeaderKill))
    {
        rights.push(right(
            "",
            "pods",
            "delete",
            "for node_kill and pd_leader_kill",
        ));
    }
    // A WebSocket port-forward is a GET, authorized as `get` before Kubernetes 1.35 and as
    // `create` too from 1.35 (KEP-4006, `AuthorizePodWebsocketUpgradeCreatePermission`).
    for verb in ["get", "create"].into_iter().filter(|_| port_forward) {
        rights.push(Right {
            subresource: Some("portforward"),
            ..right(
                "",
                "pods",
                verb,
                "to reach the subject's API (health, leaders, PD) through a port-forward",
            )
        });
    }
    if faults.iter().any(|fault| uses_exec(*fault, ways)) {
        for verb in ["get", "create"] {
            rights.push(Right {
                subresource: Some("exec"),
                ..right(
                    "",
                    "pods",
                    verb,
                    "for the faults run as a command in the database's container",
                )
            });
        }
    }
    let kinds: BTreeSet<_> = faults
        .iter()
        .filter_map(|fault| chaos_kind(*fault, ways))
        .collect();
    for (kind, plural) in kinds {
        for verb in ["create", "get", "list", "delete"] {
            rights.push(Right {
                why: match kind {
                    "NetworkChaos" => "for the network faults and their cleanup",
                    "PodChaos" => "for node_kill: container_kill and its cleanup",
                    _ => "for disk_pressure and its cleanup",
                },
                ..right(chaos_mesh::GROUP, plural, verb, "")
            });
        }
    }
    rights
}

/// What the preflight checks for one subject.
#[derive(Debug, Clone)]
pub struct Needs {
    pub subject: SubjectKind,
    pub namespace: String,
    pub pods: PodSettings,
    pub faults: BTreeSet<ChaosType>,
    /// How the faults are done, where there is more than one way.
    pub ways: Ways,
    /// How many `endpoints` the campaign gives (one per pod), 0 for port-forwards.
    pub endpoints: usize,
}

/// Every problem that keeps the trials of `needs` from running against the cluster `client`
/// reaches (`place` names it in messages), one line each with its fix; empty when none.
pub async fn check(client: &Client, place: &str, needs: &Needs) -> Vec<String> {
    let mut problems = Vec::new();
    let unsupported: Vec<&str> = needs
        .faults
        .iter()
        .map(|fault| fault.as_str())
        .filter(|fault| !super::faults::SUPPORTED.contains(fault))
        .collect();
    if !unsupported.is_empty() {
        problems.push(format!(
            "{} on kubernetes: {} not built yet (built: {}); use runtime: lab for them",
            needs.subject,
            unsupported.join(", "),
            super::faults::SUPPORTED.join(", ")
        ));
    }
    if let Err(error) = client.apiserver_version().await {
        problems.push(format!(
            "kubernetes API at {place} does not answer ({}); check the context (--context, subject_settings.{}.context) and that the cluster is up",
            super::describe(&error),
            needs.subject
        ));
        return problems;
    }
    let namespace = &needs.namespace;
    for right in rights(&needs.faults, needs.ways, needs.endpoints == 0) {
        match allowed(client, namespace, &right).await {
            Ok(true) => {}
            Ok(false) => problems.push(format!(
                "the harness may not {right} in namespace {namespace} ({}); apply deploy/rbac.yaml to its user or service account",
                right.why
            )),
            Err(error) => problems.push(format!(
                "cannot ask whether the harness may {right} in namespace {namespace}: {}",
                super::describe(&error)
            )),
        }
    }
    let kinds: BTreeSet<_> = needs
        .faults
        .iter()
        .filter_map(|fault| chaos_kind(*fault, needs.ways).map(|kind| (kind, *fault)))
        .collect();
    if !kinds.is_empty() {
        match served_kinds(client).await {
            Ok(served) => {
                let mut missing: Vec<(&str, &str, Vec<&str>)> = Vec::new();
                for ((kind, plural), fault) in kinds {
                    if served.iter().flatten().any(|served| served == plural) {
                        continue;
                    }
                    match missing.iter_mut().find(|(known, _, _)| *known == kind) {
                        Some((_, _, faults)) => faults.push(fault.as_str()),
                        None => missing.push((kind, plural, vec![fault.as_str()])),
                    }
                }
                for (kind, plural, faults) in missing {
                    problems.push(format!(
                        "Chaos Mesh's {kind} ({}) is not installed at {place}, and {} need{} it; install Chaos Mesh (helm install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --create-namespace)",
                        chaos_mesh::crd_name(plural),
                        faults.join(", "),
                        if faults.len() == 1 { "s" } else { "" }
                    ));
                }
            }
            Err(error) => problems.push(format!(
                "cannot read the API group {}: {}",
                chaos_mesh::GROUP,
                super::describe(&error)
            )),
        }
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods::select(&api, namespace, needs.subject, &needs.pods).await {
        Ok(selection) => {
            if needs.endpoints > 0 && needs.endpoints != selection.nodes.len() {
                problems.push(format!(
                    "subject_settings.{}.endpoints names {} addresses, and the selectors pick {} pods in namespace {namespace}; give one per pod, in node order",
                    needs.subject,
                    needs.endpoints,
                    selection.nodes.len()
                ));
            }
            let not_ready = selection.not_ready();
            if !not_ready.is_empty() {
                problems.push(format!(
                    "{} pods not Ready in namespace {namespace}: {}; a trial starts from a healthy cluster",
                    needs.subject,
                    not_ready.join(", ")
                ));
            }
        }
        Err(error) => problems.push(error.to_string()),
    }
    problems
}

/// Whether the harness may do `right` in `namespace`, as the API server says.
async fn allowed(client: &Client, namespace: &str, right: &Right) -> Result<bool, kube::Error> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(right.verb.to_string()),
                group: Some(right.group.to_string()),
                resource: Some(right.resource.to_string()),
                subresource: right.subresource.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = reviews.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|status| status.allowed))
}

/// The resources Chaos Mesh's API group serves, or `None` when the group is not there.
async fn served_kinds(client: &Client) -> Result<Option<Vec<String>>, kube::Error> {
    let group_version = format!("{}/{}", chaos_mesh::GROUP, chaos_mesh::VERSION);
    match client.list_api_group_resources(&group_version).await {
        Ok(list) => Ok(Some(
            list.resources
                .into_iter()
                .map(|resource| resource.name)
                .collect(),
        )),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error),
    }
}

/// The preflight of every trial of `trials` on the kubernetes runtime: one cluster check per
/// subject and place (context, namespace, selectors), with the faults of its trials. `context`
/// (`--context`) wins over the campaign's.
pub async fn check_trials(
    trials: &[schemas::campaign::TrialSpec],
    context: Option<&str>,
) -> Vec<String> {
    use std::collections::BTreeMap;
    type Place = (
        SubjectKind,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        usize,
        Ways,
    );
    let mut places: BTreeMap<Place, BTreeSet<ChaosType>> = BTreeMap::new();
    for trial in trials {
        let settings = &trial.subject_settings;
        if settings.runtime != schemas::campaign::Runtime::Kubernetes {
            continue;
        }
        let place = (
            trial.subject,
            context
                .map(str::to_string)
                .or_else(|| settings.context.clone()),
            settings.namespace.clone(),
            settings.selector.clone(),
            settings.pd_selector.clone(),
            settings.cluster.clone(),
            settings.endpoints.len(),
            Ways::of(settings),
        );
        places
            .entry(place)
            .or_default()
            .insert(trial.chaos.chaos_type());
    }
    let mut problems = Vec::new();
    for ((subject, context, namespace, selector, pd_selector, cluster, endpoints, ways), faults) in
        places
    {
        let connection = match super::client::connect(context.as_deref()).await {
            Ok(connection) => connection,
            Err(error) => {
                problems.push(format!("{subject} on kubernetes: {error}"));
                continue;
            }
        };
        let needs = Needs {
            subject,
            namespace: namespace.unwrap_or_else(|| connection.default_namespace.clone()),
            pods: PodSettings {
                selector,
                pd_selector,
                cluster,
            },
            faults,
            ways,
            endpoints,
        };
        problems.extend(check(&connection.client, &connection.place, &needs).await);
    }
    problems
}

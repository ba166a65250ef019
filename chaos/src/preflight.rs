//! What this host and build can run, checked before a campaign is published (`evalctl run`,
//! `run campaign`, `publish`), so that a trial that cannot run is refused in one line with its
//! fix instead of ending `errored` after the campaign started.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemas::campaign::{ChaosType, Runtime, SubjectKind, TrialSpec};

use crate::lab::Isolation;
use crate::tikv::binaries::{BIN_DIR_VARIABLE, SearchPlaces, TikvBinaries};

/// One reason some trials cannot run here, as one line that names the fix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem(pub String);

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the checks look at: the host's programs and privileges. Tests give their own.
#[derive(Debug, Clone)]
pub struct Host {
    /// The lab's isolation on this host (namespaces need root).
    pub isolation: Isolation,
    /// Finds a program as the lab would start it.
    pub find_program: fn(&str) -> Option<PathBuf>,
    /// Finds `pd-server` and `tikv-server`, given a campaign's `binaries` directory.
    pub find_tikv: fn(Option<&str>) -> Result<TikvBinaries, String>,
}

impl Host {
    /// This host, as the worker on it would see it.
    pub fn here() -> Host {
        Host {
            isolation: Isolation::available(),
            find_program: find_on_path,
            find_tikv: |dir| SearchPlaces::here(dir).binaries(),
        }
    }
}

/// Every problem that keeps some of `trials` from running on `host`, each named once, sorted.
/// Empty when every trial can run.
pub fn check(trials: &[TrialSpec], host: &Host) -> Vec<Problem> {
    let mut problems = BTreeSet::new();
    let mut push = |message: String| {
        problems.insert(Problem(message));
    };
    let combinations: BTreeSet<(SubjectKind, Runtime)> = trials
        .iter()
        .map(|trial| (trial.subject, trial.subject_settings.runtime))
        .collect();
    for (subject, runtime) in &combinations {
        match (subject, runtime) {
            (SubjectKind::Etcd, Runtime::Lab) => {
                let etcd = crate::etcd::etcd_program();
                if (host.find_program)(&etcd).is_none() {
                    push(format!(
                        "etcd on the lab runtime: the program {etcd:?} is not installed (install Debian's etcd-server, e.g. with scripts/setup, or name it with EVAL_ETCD)"
                    ));
                }
            }
            (SubjectKind::Tikv, Runtime::Lab) => {
                let dirs: BTreeSet<Option<&str>> = trials
                    .iter()
                    .filter(|trial| {
                        (trial.subject, trial.subject_settings.runtime)
                            == (SubjectKind::Tikv, Runtime::Lab)
                    })
                    .map(|trial| trial.subject_settings.binaries.as_deref())
                    .collect();
                for dir in dirs {
                    if let Err(missing) = (host.find_tikv)(dir) {
                        push(format!(
                            "tikv on the lab runtime: {missing}; install them with TiUP (`tiup install pd tikv`), or name their directory in subject_settings.tikv.binaries or {BIN_DIR_VARIABLE}"
                        ));
                    }
                }
            }
            // The cluster's own checks (`kubernetes::preflight`) ask its API.
            (_, Runtime::Kubernetes) => {}
        }
    }
    if host.isolation == Isolation::Namespaces
        && combinations
            .iter()
            .any(|(_, runtime)| *runtime == Runtime::Lab)
    {
        for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
            if (host.find_program)(program).is_none() {
                push(format!(
                    "the lab's network namespaces need {program:?}, which is not installed (apt-get install {package}, or scripts/setup)"
                ));
            }
        }
    }
    let unsupported = host.isolation.unsupported_faults();
    let chaos_types: BTreeSet<ChaosType> = trials
        .iter()
        .filter(|trial| trial.subject_settings.runtime == Runtime::Lab)
        .map(|trial| trial.chaos.chaos_type())
        .collect();
    for chaos_type in chaos_types {
        if let Some((_, reason)) = unsupported
            .iter()
            .find(|(name, _)| *name == chaos_type.as_str())
        {
            push(format!(
                "{chaos_type} on this host: {reason}; run as root, or leave {chaos_type} out of chaos_types"
            ));
        }
    }
    problems.into_iter().collect()
}

/// `program` as `Command::new` would find it: a path when it has a slash, else the first
/// executable file of that name in `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trials(yaml: &str) -> Vec<TrialSpec> {
        let parsed = schemas::campaign::parse_campaign("c.yaml", yaml).expect("a valid campaign");
        schemas::campaign::expand(&parsed.campaign, &["default".to_string()], 1)
    }

    fn host(isolation: Isolation, find_program: fn(&str) -> Option<PathBuf>) -> Host {
        Host {
            isolation,
            find_program,
            find_tikv: |dir| {
                Err(format!(
                    "pd-server and tikv-server not found; looked in subject_settings.tikv.binaries ({}), …",
                    dir.unwrap_or("not set")
                ))
            },
        }
    }

    fn check_lines(yaml: &str, host: &Host) -> Vec<String> {
        check(&trials(yaml), host)
            .into_iter()
            .map(|problem| problem.0)
            .collect()
    }

    const ETCD: &str = "name: c\nsubjects: [etcd]\nchaos_types:\n  - type: node_kill\n  - type: packet_loss\n  - type: disk_pressure\n";

    #[test]
    fn a_host_with_everything_runs_every_fault() {
        let everything = host(Isolation::Namespaces, |name| Some(PathBuf::from(name)));
        assert_eq!(check_lines(ETCD, &everything), Vec::<String>::new());
    }

    #[test]
    fn missing_programs_and_root_are_named_once_each_with_their_fix() {
        let nothing = host(Isolation::Namespaces, |_| None);
        assert_eq!(
            check_lines(ETCD, &nothing),
            [
                "etcd on the lab runtime: the program \"etcd\" is not installed (install Debian's etcd-server, e.g. with scripts/setup, or name it with EVAL_ETCD)",
                "the lab's network namespaces need \"ip\", which is not installed (apt-get install iproute2, or scripts/setup)",
                "the lab's network namespaces need \"nft\", which is not installed (apt-get install nftables, or scripts/setup)",
            ]
        );
        let not_root = host(Isolation::Loopback, |name| Some(PathBuf::from(name)));
        assert_eq!(
            check_lines(ETCD, &not_root),
            [
                "disk_pressure on this host: needs root: a size-limited filesystem per node; run as root, or leave disk_pressure out of chaos_types",
                "packet_loss on this host: needs root: nftables rules in per-node network namespaces; run as root, or leave packet_loss out of chaos_types",
            ]
        );
    }

    #[test]
    fn subjects_and_runtimes_this_build_cannot_drive() {
        let everything = host(Isolation::Namespaces, |name| Some(PathBuf::from(name)));
        assert_eq!(
            check_lines(
                "name: c\nsubjects: [tikv, etcd]\nchaos_types: [{type: node_kill}]\nsubject_settings:\n  etcd: {runtime: kubernetes}\n",
                &everything
            ),
            [
                "tikv on the lab runtime: pd-server and tikv-server not found; looked in subject_settings.tikv.binaries (not set), …; install them with TiUP (`tiup install pd tikv`), or name their directory in subject_settings.tikv.binaries or EVAL_TIKV_BIN_DIR",
            ]
        );
        // Found, nothing is missing.
        let found = Host {
            find_tikv: |_| {
                Ok(TikvBinaries {
                    pd_server: PathBuf::from("/opt/tikv/pd-server"),
                    tikv_server: PathBuf::from("/opt/tikv/tikv-server"),
                })
            },
            ..everything
        };
        assert_eq!(
            check_lines(
                "name: c\nsubjects: [tikv]\nchaos_types: [{type: node_kill}]\nsubject_settings:\n  tikv: {binaries: /opt/tikv}\n",
                &found
            ),
            Vec::<String>::new()
        );
    }
}

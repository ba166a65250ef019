//! Lab indexes: each lab claims the lowest free index (an atomic `mkdir` under the claims
//! directory), which fixes its namespace names, addresses and ports, so labs of any data dir, made
//! at once by any process, never share them. A lab removes only its own claim. The claims
//! directory is `/run/eval-labs` for root and `/tmp/eval-labs-<uid>` for anyone else, mode 0700
//! and refused when another user owns it or may write it: a claim decides which directory a lab
//! removes, so nobody else may plant one.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Where labs claim their index; one per user, not per data dir, so that labs of different data
/// dirs never collide.
pub(super) fn claims_dir() -> PathBuf {
    if super::sys::is_root() {
        PathBuf::from("/run/eval-labs")
    } else {
        PathBuf::from(format!("/tmp/eval-labs-{}", nix::unistd::geteuid()))
    }
}
/// How long a new claim may go without its lab's state file before another lab may take it.
const CLAIM_GRACE: Duration = Duration::from_secs(60);
/// Most labs on one host at once.
pub(super) const MAX_LABS: u32 = 200;

/// Claims the lowest free lab index: a directory under [`claims_dir`] (creating it is atomic).
/// A claim whose lab directory is gone is stale and taken over.
pub(super) fn claim_index() -> Result<(u32, PathBuf)> {
    let claims = claims_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&claims)
        .map_err(Error::io(&claims))?;
    super::trust::check_owned(&claims)?;
    for index in 0..MAX_LABS {
        // A lab of an older build claimed its index elsewhere; its bridge namespace still says
        // the index is in use.
        if Path::new("/run/netns")
            .join(format!("eval-l{index}-br"))
            .exists()
            && !claims.join(index.to_string()).exists()
        {
            continue;
        }
        let claim = claims.join(index.to_string());
        match std::fs::create_dir(&claim) {
            Ok(()) => return Ok((index, claim)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(claim.join("owner")).unwrap_or_default();
                let age = std::fs::metadata(&claim)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or_default();
                // A claim is being set up until its lab's first `lab.json` is written, so a
                // claim without one is stale only once it is old: taking a fresh one would hand
                // the same index (namespaces, addresses) to two labs being created at once.
                let stale = age > CLAIM_GRACE
                    && (owner.is_empty() || !Path::new(owner.trim()).join("lab.json").exists());
                if stale
                    && std::fs::remove_dir_all(&claim).is_ok()
                    && std::fs::create_dir(&claim).is_ok()
                {
                    return Ok((index, claim));
                }
            }
            Err(source) => {
                return Err(Error::Io {
                    path: claim,
                    source,
                });
            }
        }
    }
    Err(Error::Lab(format!(
        "all {MAX_LABS} lab indexes are taken (see {})",
        claims.display()
    )))
}

/// The claim of `index`, if it is still the lab's at `lab_dir`.
fn own_claim(index: u32, lab_dir: &Path) -> Option<PathBuf> {
    let claim = claims_dir().join(index.to_string());
    let owner = std::fs::read_to_string(claim.join("owner")).unwrap_or_default();
    (Path::new(owner.trim()) == lab_dir).then_some(claim)
}

/// Gives back the claim of `index` if it is still the lab's at `lab_dir`'s.
pub(super) fn release(index: u32, lab_dir: &Path) {
    if let Some(claim) = own_claim(index, lab_dir) {
        let _ = std::fs::remove_dir_all(&claim);
    }
}

/// The host-wide registry: beside its owner, each claim keeps a copy of its lab's state
/// (`lab.json`, rewritten with every save) and, for a lab that lives only as long as the process
/// that made it (a worker's), that process (`holder`: its pid and start time). From these, what a
/// killed process left is found and removed even when its data dir is gone.
const STATE_COPY: &str = "lab.json";
const HOLDER: &str = "holder";

/// Keeps a copy of the lab's state in its claim, if the claim of `index` is still the lab's at
/// `lab_dir`.
pub(super) fn record_state(index: u32, lab_dir: &Path, text: &str) -> Result<()> {
    let Some(claim) = own_claim(index, lab_dir) else {
        return Ok(());
    };
    let copy = claim.join(STATE_COPY);
    let temporary = claim.join("lab.json.tmp");
    std::fs::write(&temporary, text).map_err(Error::io(&temporary))?;
    // Whatever the umask: a copy others may write is never believed (`trust::check_owned`).
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))
        .map_err(Error::io(&temporary))?;
    std::fs::rename(&temporary, &copy).map_err(Error::io(&copy))
}

/// Records this process as the holder of the lab of `claim`: once it is gone, the lab is stale.
pub(super) fn hold(claim: &Path) -> Result<()> {
    write_process(&claim.join(HOLDER), std::process::id())
}

/// Records the process `pid` in `file` as `<pid> <start time>`: with its start time, a pid
/// names one process for good.
fn write_process(file: &Path, pid: u32) -> Result<()> {
    let started = super::sys::start_time(pid).unwrap_or_default();
    std::fs::write(file, format!("{pid} {started}")).map_err(Error::io(file))
}

/// The process recorded as `name` in the claim of `index` (its pid and start time).
fn recorded_process(index: u32, name: &str) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(claims_dir().join(index.to_string()).join(name)).ok()?;
    let (pid, started) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, started.parse().ok()?))
}

/// The process holding the lab of `index`, when one does (its pid and start time).
pub(super) fn holder(index: u32) -> Option<(u32, u64)> {
    recorded_process(index, HOLDER)
}

/// Whether the lab of `index` is held by this very process.
pub(super) fn held_here(index: u32) -> bool {
    holder(index).is_some_and(|(pid, _)| pid == std::process::id())
}

/// A lab the registry lists whose maker is gone: its data dir removed, or the process that held
/// it dead. `state` is the claim's copy, checked as a lab's own state is.
#[derive(Debug)]
pub struct StaleLab {
    pub state: super::LabState,
    /// Why it is stale, for the user.
    pub reason: String,
}

/// Every stale lab of the registry. A claim that cannot be read or whose copy names anything its
/// lab would not have made is skipped with a warning: nothing is removed on its word.
pub(super) fn stale_labs() -> Result<Vec<StaleLab>> {
    let claims = claims_dir();
    let entries = match std::fs::read_dir(&claims) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: claims,
                source,
            });
        }
    };
    super::trust::check_owned(&claims)?;
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let Some(index) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let claim = entry.path();
        let owner = std::fs::read_to_string(claim.join("owner")).unwrap_or_default();
        let lab_dir = PathBuf::from(owner.trim());
        if !claim.join(STATE_COPY).exists() || owner.trim().is_empty() {
            // Being set up, or made by an older build: nothing recorded to act on.
            continue;
        }
        let reason = if !lab_dir.join("lab.json").exists() {
            format!("its directory {} is gone", lab_dir.display())
        } else {
            match holder(index) {
                Some((pid, started)) if !super::sys::same_process(pid, started) => {
                    format!("the process that ran it (pid {pid}) is gone")
                }
                _ => continue,
            }
        };
        match super::trust::read_state_copy(&claim.join(STATE_COPY), index, &lab_dir) {
            Ok(state) => stale.push(StaleLab { state, reason }),
            Err(error) => {
                tracing::warn!(claim = %claim.display(), %error, "registry entry not trusted; left alone")
            }
        }
    }
    stale.sort_by_key(|lab| lab.state.index);
    Ok(stale)
}

const OPERATOR: &str = "operator";

/// Records the managed operator started on the lab of `index` (the leader of its own process
/// group), so that a stale lab's operator is stopped with it.
pub(super) fn record_operator(index: u32, lab_dir: &Path, pid: u32) -> Result<()> {
    match own_claim(index, lab_dir) {
        Some(claim) => write_process(&claim.join(OPERATOR), pid),
        None => Ok(()),
    }
}

/// The operator recorded on the lab of `index`, while it still runs (the same start time).
pub(super) fn live_operator(index: u32) -> Option<u32> {
    let (pid, started) = recorded_process(index, OPERATOR)?;
    super::sys::same_process(pid, started).then_some(pid)
}

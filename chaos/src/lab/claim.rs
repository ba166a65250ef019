//! Lab indexes: each lab claims the lowest free index (an atomic `mkdir` under the claims
//! directory), which fixes its namespace names, addresses and ports, so labs of any data dir, made
//! at once by any process, never share them. A lab removes only its own claim. The claims
//! directory is `/run/eval-labs` for root and `/tmp/eval-labs-<uid>` for anyone else, mode 0700
//! and refused when another user owns it or may write it: a claim decides which directory a lab
//! removes, so nobody else may plant one.

use std::os::unix::fs::DirBuilderExt;
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

/// Gives back the claim of `index` if it is still the lab's at `lab_dir`'s.
pub(super) fn release(index: u32, lab_dir: &Path) {
    let claim = claims_dir().join(index.to_string());
    let owner = std::fs::read_to_string(claim.join("owner")).unwrap_or_default();
    if Path::new(owner.trim()) == lab_dir {
        let _ = std::fs::remove_dir_all(&claim);
    }
}

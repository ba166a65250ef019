//! Lab indexes: each lab claims the lowest free index under `/tmp/eval-labs/` (an atomic
//! `mkdir`), which fixes its namespace names, addresses and ports, so labs of any data dir, made
//! at once by any process, never share them. A lab removes only its own claim.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Where labs claim their index; global, so that labs of different data dirs never collide.
pub(super) const CLAIMS_DIR: &str = "/tmp/eval-labs";
/// How long a new claim may go without its lab's state file before another lab may take it.
const CLAIM_GRACE: Duration = Duration::from_secs(60);
/// Most labs on one host at once.
const MAX_LABS: u32 = 200;

/// Claims the lowest free lab index: a directory under [`CLAIMS_DIR`] (creating it is atomic).
/// A claim whose lab directory is gone is stale and taken over.
pub(super) fn claim_index() -> Result<(u32, PathBuf)> {
    let claims = Path::new(CLAIMS_DIR);
    std::fs::create_dir_all(claims).map_err(Error::io(claims))?;
    for index in 0..MAX_LABS {
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
        "all {MAX_LABS} lab indexes are taken (see {CLAIMS_DIR})"
    )))
}

/// Gives back the claim of `index` if it is still the lab's at `lab_dir`'s.
pub(super) fn release(index: u32, lab_dir: &Path) {
    let claim = Path::new(CLAIMS_DIR).join(index.to_string());
    let owner = std::fs::read_to_string(claim.join("owner")).unwrap_or_default();
    if Path::new(owner.trim()) == lab_dir {
        let _ = std::fs::remove_dir_all(&claim);
    }
}

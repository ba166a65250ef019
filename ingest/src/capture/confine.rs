//! Which files the capture opens. An operator.db path comes from a `ChaosInjected` event, which is
//! data anyone who can publish could forge, and the capture reads it and writes the trial's
//! variant into it. So it opens only an absolute path without `..`, inside a directory its own
//! configuration allows (the data dir, where the worker puts a managed operator's file, and the
//! directories the user names for external operators), and only a regular file: no symbolic link
//! (SQLite is told not to follow one either), no FIFO or device, which would block the reader.

use std::path::{Component, Path, PathBuf};

use super::{CaptureError, Result};

/// `allowed` made canonical where it exists, for comparison with a file's canonical path.
pub fn canonical_dirs(allowed: &[PathBuf]) -> Vec<PathBuf> {
    allowed
        .iter()
        .map(|dir| {
            std::path::absolute(dir)
                .ok()
                .and_then(|dir| dir.canonicalize().ok())
                .unwrap_or_else(|| dir.clone())
        })
        .collect()
}

/// Refuses `path` unless it is an absolute path without `..` inside one of `allowed` (canonical),
/// and, once it exists, a regular file whose real path is still inside.
pub fn check(path: &Path, allowed: &[PathBuf]) -> Result<()> {
    let refuse = |reason: String| {
        Err(CaptureError::Refused {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !path.is_absolute() {
        return refuse("not an absolute path".to_string());
    }
    if path
        .components()
        .any(|part| matches!(part, Component::ParentDir | Component::CurDir))
    {
        return refuse("the path holds `..` or `.`".to_string());
    }
    let inside = |real: &Path| allowed.iter().any(|dir| real.starts_with(dir));
    let outside = || {
        format!(
            "outside the directories the capture may read ({}); give the directory with \
             --operator-db-dir",
            allowed
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            regular_file(path)?;
            let real = path.canonicalize().map_err(|error| CaptureError::Refused {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })?;
            if !inside(&real) {
                return refuse(outside());
            }
        }
        // Not there yet: its directory, as far as it exists, decides.
        Err(_) => {
            let existing = path.ancestors().skip(1).find(|dir| dir.exists());
            let real = existing.and_then(|dir| dir.canonicalize().ok());
            let lexical = allowed.iter().any(|dir| path.starts_with(dir));
            let real_inside = real.as_deref().is_some_and(|real| {
                inside(real) || allowed.iter().any(|dir| dir.starts_with(real))
            });
            if !lexical || !real_inside {
                return refuse(outside());
            }
        }
    }
    Ok(())
}

/// Refuses anything at `path` but a regular file (a link, a FIFO, a device, a directory).
pub(super) fn regular_file(path: &Path) -> Result<()> {
    let kind = std::fs::symlink_metadata(path)
        .map_err(|error| CaptureError::Read {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?
        .file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file (a FIFO, a socket or a device)"
    };
    Err(CaptureError::Refused {
        path: path.to_path_buf(),
        reason: format!("it is {what}; the capture opens only regular files"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_inside_the_allowed_directories() {
        let root = tempfile::tempdir().unwrap();
        let allowed_dir = root.path().join("data");
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(allowed_dir.join("runs")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        let allowed = canonical_dirs(std::slice::from_ref(&allowed_dir));
        let file = allowed_dir.join("runs/operator.db");
        std::fs::write(&file, "").unwrap();
        check(&file, &allowed).unwrap();
        // Not there yet, in an allowed directory (or one still to be made there): accepted.
        check(&allowed_dir.join("runs/later.db"), &allowed).unwrap();
        check(&allowed_dir.join("new/dir/later.db"), &allowed).unwrap();

        let secret = elsewhere.join("secret.db");
        std::fs::write(&secret, "").unwrap();
        let link = allowed_dir.join("runs/link.db");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let link_dir = allowed_dir.join("linked");
        std::os::unix::fs::symlink(&elsewhere, &link_dir).unwrap();
        let fifo = allowed_dir.join("runs/fifo.db");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        for (path, says) in [
            (secret.clone(), "outside the directories"),
            (
                PathBuf::from("relative/operator.db"),
                "not an absolute path",
            ),
            (allowed_dir.join("runs/../../elsewhere/secret.db"), "`..`"),
            (link, "a symbolic link"),
            (link_dir.join("secret.db"), "outside the directories"),
            (link_dir.join("not-yet.db"), "outside the directories"),
            (fifo, "not a regular file"),
            (allowed_dir.join("runs"), "a directory"),
        ] {
            let error = check(&path, &allowed).unwrap_err().to_string();
            assert!(error.contains(says), "{}: {error}", path.display());
        }
    }
}

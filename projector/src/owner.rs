//! Who owns the DuckDB file. The process that opens it for writing (`evalctl up`, `evalctl
//! project`, `evalctl run`) first says so in a small file beside it, `<db>.owner`, holding its
//! process id, and keeps it while the file is open. A standalone viewer holds the file read-only
//! between requests (opening it costs tens of milliseconds and starts DuckDB's buffer pool cold);
//! it watches for this file and lets go when it appears, while the owner's open waits for that
//! instead of failing on DuckDB's lock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long an owner waits for readers to let go of the file before giving up with DuckDB's
/// lock error. A standalone viewer lets go within a quarter of a second, once its queries in
/// flight end.
pub const LET_GO_WAIT: Duration = Duration::from_secs(10);

/// The owner file of the database at `db_path`.
pub fn owner_file_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".owner");
    PathBuf::from(name)
}

/// The process that claims the file, when one does and still runs (this process included).
pub fn owner_pid(db_path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(owner_file_path(db_path)).ok()?;
    let pid = text.trim().parse::<u32>().ok()?;
    process_alive(pid).then_some(pid)
}

/// Whether process `pid` runs (a zombie does not).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some(state) if state != 'Z' && state != 'X')
}

/// This process's claim on the file; the owner file is removed when it drops, unless another
/// process has claimed the file since.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
}

impl Claim {
    /// Claims the file for this process, or `None` when another running process claims it.
    /// An owner file left by a process that died is taken over.
    pub fn take(db_path: &Path) -> std::io::Result<Option<Claim>> {
        if owner_pid(db_path).is_some_and(|pid| pid != std::process::id()) {
            return Ok(None);
        }
        let path = owner_file_path(db_path);
        std::fs::write(&path, std::process::id().to_string())?;
        Ok(Some(Claim { path }))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Calls `open` until it succeeds, fails otherwise than on the lock, or `LET_GO_WAIT` passes;
/// says once, after a second, whom it waits for.
pub fn wait_for_lock<T>(
    path: &Path,
    mut open: impl FnMut() -> crate::Result<T>,
) -> crate::Result<T> {
    let started = Instant::now();
    let mut said = false;
    loop {
        match open() {
            Err(crate::Error::Locked { holder, .. }) if started.elapsed() < LET_GO_WAIT => {
                if !said && started.elapsed() >= Duration::from_secs(1) {
                    tracing::info!(
                        "waiting up to {} s for {holder} to let go of {}",
                        LET_GO_WAIT.as_secs(),
                        path.display()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_kept_while_held_refused_to_another_and_taken_over_from_the_dead() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("eval.duckdb");
        assert_eq!(owner_pid(&db), None);

        let claim = Claim::take(&db).unwrap().expect("nobody claims the file");
        assert_eq!(owner_pid(&db), Some(std::process::id()));
        drop(claim);
        assert!(!owner_file_path(&db).exists());

        // Another running process's claim stands; its own drop never removes it.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(owner_file_path(&db), other.id().to_string()).unwrap();
        assert!(Claim::take(&db).unwrap().is_none());
        assert_eq!(owner_pid(&db), Some(other.id()));

        // Once it has died (and been reaped), its claim is taken over.
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(owner_pid(&db), None);
        let claim = Claim::take(&db)
            .unwrap()
            .expect("a dead owner's claim is taken over");
        // A claim overwritten by another process is left to it.
        std::fs::write(owner_file_path(&db), "1").unwrap();
        drop(claim);
        assert_eq!(std::fs::read_to_string(owner_file_path(&db)).unwrap(), "1");
    }

    #[test]
    fn process_alive_reads_the_state_after_any_command_name() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}

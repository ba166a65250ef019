//! Commands run in a subject's container through the API server (`pods/exec`, kube's
//! `Api::exec` over WebSocket), for the faults a cluster has no object for: `process_pause`
//! (SIGSTOP and SIGCONT to the database's process), `node_kill: signal` (SIGKILL to it) and
//! `disk_pressure` (a fill file on the pod's data volume).
//!
//! Every command is a fixed script of this file run by `sh -c`, with everything variable (a
//! process name, a signal, a directory, a percentage) passed as its positional arguments, never
//! pasted into the script; the values themselves come from this build (process names), the pod's
//! spec (its data volume's mount path) or the campaign's validated numbers.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, AttachParams};
use schemas::campaign::SubjectKind;
use schemas::cleanup::{KubeAction, KubeRecord};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};

/// Signals (`$2`: `STOP`, `CONT`, `KILL`) every process of the container whose `comm` is `$1`, or with
/// `STATE` prints its state (`R`, `S`, `T`, …); prints one `<pid> <what>` line per process.
/// PID 1 is only reported (`<pid> init`): a process ignores SIGSTOP and SIGKILL sent from inside
/// its own PID namespace when it is that namespace's init.
pub const SIGNAL_SCRIPT: &str = r#"for d in /proc/[0-9]*; do
  read -r c < "$d/comm" 2>/dev/null || continue
  [ "$c" = "$1" ] || continue
  p=${d#/proc/}
  if [ "$2" = STATE ]; then read -r _ _ s _ < "$d/stat" && echo "$p $s"
  elif [ "$p" = 1 ]; then echo "$p init"
  else kill -s "$2" "$p" && echo "$p $2"; fi
done"#;

/// Fills the filesystem of directory `$1` to `$2` percent with the file `$1/$3` (written in MiB
/// blocks until the goal or a full disk), then prints `<total KiB> <used KiB> <written KiB>`.
pub const FILL_SCRIPT: &str = r#"set -- "$1" "$2" "$3" $(df -Pk "$1" | tail -n 1)
total=$5; used=$6
want=$(( total / 100 * $2 - used ))
written=0
if [ "$want" -gt 0 ]; then
  dd if=/dev/zero of="$1/$3" bs=1048576 count=$(( (want + 1023) / 1024 )) 2>/dev/null || true
  written=$(( $(wc -c < "$1/$3") / 1024 ))
fi
echo "$total $used $written""#;

/// Removes the fill file `$1/$2` (gone already is fine), or with `$3` = `CHECK` prints
/// `present` while it is there.
pub const UNFILL_SCRIPT: &str = r#"if [ "$3" = CHECK ]; then [ -e "$1/$2" ] && echo present; true
else rm -f -- "$1/$2"; fi"#;

/// How long one command may take (a fill of a large volume writes gigabytes).
pub const EXEC_WAIT: Duration = Duration::from_secs(600);

/// The database's process name (`comm`) in a node's container.
pub fn process_name(subject: SubjectKind, pd: bool) -> &'static str {
    match (subject, pd) {
        (SubjectKind::Etcd, _) => "etcd",
        (SubjectKind::Tikv, false) => "tikv-server",
        (SubjectKind::Tikv, true) => "pd-server",
    }
}

/// Runs `sh -c script sh args…` in `container` of pod `pod`; returns what it wrote to stdout, or
/// why it failed (its exit status and stderr).
pub async fn run_script(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    script: &str,
    args: &[&str],
) -> Result<String> {
    let mut argv = vec!["sh", "-c", script, "sh"];
    argv.extend_from_slice(args);
    let what = format!(
        "sh -c … {} in {namespace}/{pod} ({container})",
        args.join(" ")
    );
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut process = api
        .exec(pod, argv, &params)
        .await
        .map_err(|error| Error::Kube(format!("exec of {what}: {}", super::describe(&error))))?;
    let (mut stdout, mut stderr) = (process.stdout(), process.stderr());
    let status = process.take_status();
    let outputs = async {
        let (mut out, mut err) = (String::new(), String::new());
        let read_out = async {
            if let Some(stdout) = stdout.as_mut() {
                let _ = stdout.read_to_string(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_string(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        (out, err, status)
    };
    let (out, err, status) = tokio::time::timeout(EXEC_WAIT, outputs)
        .await
        .map_err(|_| {
            Error::Kube(format!(
                "{what} did not end within {}s",
                EXEC_WAIT.as_secs()
            ))
        })?;
    let _ = process.join().await;
    match status {
        Some(status) if status.status.as_deref() == Some("Success") => Ok(out),
        Some(status) => Err(Error::Kube(format!(
            "{what} failed: {}{}",
            status.message.unwrap_or_else(|| "no message".into()),
            if err.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", err.trim())
            }
        ))),
        None => Err(Error::Kube(format!(
            "{what}: the API server sent no exit status"
        ))),
    }
}

/// The pids `SIGNAL_SCRIPT` signalled, and whether it found the process as its container's init
/// (PID 1), which it does not signal.
pub fn signalled(output: &str) -> (Vec<u32>, bool) {
    let mut pids = Vec::new();
    let mut init = false;
    for line in output.lines() {
        let mut words = line.split_whitespace();
        let (Some(pid), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        if what == "init" {
            init = true;
        } else if let Ok(pid) = pid.parse() {
            pids.push(pid);
        }
    }
    (pids, init)
}

/// Whether the signal script's `output` says it signalled the record's process: refused, with
/// the way out, when the process is its container's PID 1.
pub(super) fn check_signalled(output: &str, record: &KubeRecord, signal: &str) -> Result<()> {
    let (KubeAction::ProcessPause {
        pod,
        container,
        process,
        ..
    }
    | KubeAction::ProcessKill {
        pod,
        container,
        process,
        ..
    }) = &record.action
    else {
        return Ok(());
    };
    let namespace = &record.namespace;
    let instead = match record.action {
        KubeAction::ProcessKill { .. } => {
            ", or use node_kill: container_kill (Chaos Mesh kills the container from outside) or node_kill: pod_delete"
        }
        _ => ", or use runtime: lab",
    };
    match signalled(output) {
        (pids, _) if !pids.is_empty() => Ok(()),
        (_, true) => Err(Error::Unsupported(format!(
            "{process} is PID 1 of container {container} in pod {namespace}/{pod}, and the kernel ignores {signal} sent to a PID namespace's init from inside it: give the pod `shareProcessNamespace: true` (its pause container is then PID 1){instead}"
        ))),
        _ => Err(Error::Kube(format!(
            "no process {process} in container {container} of pod {namespace}/{pod}"
        ))),
    }
}

/// Runs a script in the container for a cleanup: a pod that is not there or not Ready (its
/// operator deleted it, say) is waited for, and the script run once more.
pub(super) async fn in_container(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    script: &str,
    args: &[&str],
) -> Result<String> {
    match run_script(client, namespace, pod, container, script, args).await {
        Ok(output) => Ok(output),
        Err(_) => {
            super::pods::wait_pod_ready(client, namespace, pod).await?;
            run_script(client, namespace, pod, container, script, args).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts as `sh` runs them, here on this host's own `/proc` and a directory of its
    /// own: what the container's shell runs, argument for argument.
    fn sh(script: &str, args: &[&str]) -> String {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn the_signal_script_stops_and_continues_the_named_process_and_reports_init() {
        // Only this test's process may answer to the name: `sleep` copied under a name of its own.
        let dir = tempfile::tempdir().unwrap();
        let name = format!("evsig{:08x}", std::process::id());
        let program = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &program).unwrap();
        // Killed even when an assertion fails: a stopped child left behind would hold the test
        // run's output open, and the run would never end.
        struct Killed(std::process::Child);
        impl Drop for Killed {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let child = Killed(
            std::process::Command::new(&program)
                .arg("30")
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id().to_string();
        // The script finds processes by name, which is the child's only once it has exec'd.
        let started = std::time::Instant::now();
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end() != name)
        {
            assert!(started.elapsed().as_secs() < 10, "{name} never started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let state = |line: &str| -> Option<String> {
            line.split_whitespace()
                .nth(1)
                .filter(|_| line.starts_with(&format!("{pid} ")))
                .map(str::to_string)
        };
        let stopped = sh(SIGNAL_SCRIPT, &[&name, "STOP"]);
        assert!(
            stopped.lines().any(|line| line == format!("{pid} STOP")),
            "{stopped}"
        );
        // A signal is delivered after `kill` returns: the state is read until it shows, for up
        // to 5 s (a CI run once read "R" right after the STOP).
        let settles_to = |wanted: &str| {
            let started = std::time::Instant::now();
            loop {
                let states = sh(SIGNAL_SCRIPT, &[&name, "STATE"]);
                let now = states.lines().find_map(state);
                if now.as_deref() == Some(wanted) || started.elapsed().as_secs() >= 5 {
                    assert_eq!(now.as_deref(), Some(wanted), "{states}");
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        settles_to("T");
        sh(SIGNAL_SCRIPT, &[&name, "CONT"]);
        settles_to("S");
        drop(child);
        assert_eq!(signalled("12 STOP\n1 init\n"), (vec![12], true));
        assert_eq!(signalled(""), (vec![], false));
    }

    #[test]
    fn the_fill_script_fills_to_the_percentage_and_the_unfill_script_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        // A goal below what is used writes nothing.
        let report = sh(FILL_SCRIPT, &[path, "0", "fill"]);
        let numbers: Vec<u64> = report
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!((numbers.len(), numbers[2]), (3, 0), "{report}");
        assert_eq!(sh(UNFILL_SCRIPT, &[path, "fill", "CHECK"]), "");
        // A file stands for a fill without filling this host's disk.
        std::fs::write(dir.path().join("fill"), b"x").unwrap();
        assert_eq!(sh(UNFILL_SCRIPT, &[path, "fill", "CHECK"]), "present\n");
        sh(UNFILL_SCRIPT, &[path, "fill"]);
        assert!(!dir.path().join("fill").exists());
        sh(UNFILL_SCRIPT, &[path, "fill"]);
    }

    #[test]
    fn the_fill_script_brings_a_filesystem_to_the_percentage() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to mount a tmpfs of its own");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs", path])
            .status()
            .unwrap();
        assert!(mounted.success());
        let report = sh(FILL_SCRIPT, &[path, "50", "fill"]);
        let numbers: Vec<u64> = report
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let size = std::fs::metadata(dir.path().join("fill")).map(|m| m.len());
        let unmounted = std::process::Command::new("umount")
            .arg(path)
            .status()
            .unwrap();
        assert!(unmounted.success());
        // 8 MiB, nothing used: half of it, to the MiB above.
        assert_eq!(numbers, [8192, 0, 4096], "{report}");
        assert_eq!(size.unwrap(), 4 << 20);
    }
}

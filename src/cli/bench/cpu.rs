//! The CPU time a part of a benchmark cost, from `/proc`: this process's and the nats-server's,
//! each user and system time over every thread, so that a benchmark can say where the time of
//! a slower path went beside its baseline's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One part's wall time and CPU time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Part {
    pub(super) wall: Duration,
    /// CPU time used meanwhile by this process and by the nats-server; `None` where `/proc`
    /// cannot tell.
    pub(super) cpu: Option<Cpu>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cpu {
    pub(super) eval: Duration,
    pub(super) nats_server: Duration,
}

impl Cpu {
    pub(super) fn total(&self) -> Duration {
        self.eval + self.nats_server
    }
}

impl Part {
    /// Both processes' CPU time per event, in microseconds.
    pub(super) fn micros_per_event(&self, events: u64) -> Option<f64> {
        Some(self.cpu?.total().as_secs_f64() * 1e6 / events.max(1) as f64)
    }
}

/// A part being timed: started by [`Stopwatch::start`], ended by [`Stopwatch::stop`].
pub(super) struct Stopwatch {
    server_pid: Option<u32>,
    before: Option<(Duration, Duration)>,
    started: Instant,
}

impl Stopwatch {
    /// Starts timing; `server_pid` is the nats-server's process, when known.
    pub(super) fn start(server_pid: Option<u32>) -> Stopwatch {
        Stopwatch {
            server_pid,
            before: both(server_pid),
            started: Instant::now(),
        }
    }

    pub(super) fn stop(self) -> Part {
        let wall = self.started.elapsed();
        Part {
            wall,
            cpu: self.before.zip(both(self.server_pid)).map(
                |((eval, server), (eval_after, server_after))| Cpu {
                    eval: eval_after.saturating_sub(eval),
                    nats_server: server_after.saturating_sub(server),
                },
            ),
        }
    }
}

/// This process's and the server's CPU time so far.
fn both(server_pid: Option<u32>) -> Option<(Duration, Duration)> {
    Some((cpu_time(std::process::id())?, cpu_time(server_pid?)?))
}

/// The CPU time (user and system, every thread) process `pid` has used so far, from
/// `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat(&stat)?.1)
}

/// The command (or thread) name and the CPU time (user and system) from a `stat` file's text.
fn parse_stat(stat: &str) -> Option<(&str, Duration)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    // The fields after the name (which may hold spaces, within parentheses), from the third:
    // utime and stime are the 14th and 15th, in clock ticks.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some((
        name,
        Duration::from_secs_f64(ticks as f64 / per_second as f64),
    ))
}

/// The CPU time so far of each thread of this process alive now, by thread id, leaving out the
/// threads named in `except`.
pub(super) fn live_threads(except: &[&str]) -> BTreeMap<u32, Duration> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let (name, cpu) = parse_stat(&stat)?;
            (!except.contains(&name)).then_some((tid, cpu))
        })
        .collect()
}

/// The CPU time the threads alive in `after` used since `before` (a thread new since then,
/// all of its own).
pub(super) fn used_since(
    before: &BTreeMap<u32, Duration>,
    after: &BTreeMap<u32, Duration>,
) -> Duration {
    after
        .iter()
        .map(|(tid, cpu)| cpu.saturating_sub(before.get(tid).copied().unwrap_or_default()))
        .sum()
}

/// A part's CPU figures as the benchmarks' JSON gives them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub(super) struct CpuFigures {
    pub(super) eval_seconds: f64,
    pub(super) nats_server_seconds: f64,
    pub(super) micros_per_event: f64,
}

impl Part {
    /// The part's CPU figures over `events` events.
    pub(super) fn figures(&self, events: u64) -> Option<CpuFigures> {
        let cpu = self.cpu?;
        Some(CpuFigures {
            eval_seconds: cpu.eval.as_secs_f64(),
            nats_server_seconds: cpu.nats_server.as_secs_f64(),
            micros_per_event: self.micros_per_event(events)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_time_even_when_the_name_holds_spaces_and_parentheses() {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .unwrap()
            .unwrap() as f64;
        // A thread's line as Linux 6 writes it (fields 14 and 15: utime 250, stime 50 ticks).
        let stat = "4242 (eval (fold) x) S 1 4242 4242 0 -1 4194368 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        let (name, cpu) = parse_stat(stat).unwrap();
        assert_eq!(name, "eval (fold) x");
        assert!((cpu.as_secs_f64() - 300.0 / ticks).abs() < 1e-9);
        assert_eq!(parse_stat("4242 (short) S 1"), None);
    }

    #[test]
    fn a_thread_new_since_counts_whole_and_one_gone_counts_nothing() {
        let second = Duration::from_secs;
        let before = BTreeMap::from([(1, second(5)), (2, second(3))]);
        let after = BTreeMap::from([(1, second(7)), (3, second(4))]);
        assert_eq!(used_since(&before, &after), second(6));
    }

    #[test]
    fn this_process_has_a_thread_named_as_it_was_spawned() {
        let (sender, receiver) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        // A thread names itself once it runs: the snapshot waits for it.
        let thread = std::thread::Builder::new()
            .name("bench-probe".into())
            .spawn(move || {
                started.send(()).unwrap();
                receiver.recv()
            })
            .unwrap();
        running.recv().unwrap();
        let comm = |tid: &u32| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default()
        };
        // Other tests start and end threads meanwhile: only the probe's name is compared.
        let all = live_threads(&[]);
        let without = live_threads(&["bench-probe"]);
        assert!(all.keys().any(|tid| comm(tid).trim() == "bench-probe"));
        assert!(without.keys().all(|tid| comm(tid).trim() != "bench-probe"));
        drop(sender);
        thread.join().unwrap().unwrap_err();
    }
}

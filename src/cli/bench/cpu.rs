//! The CPU time a part of a benchmark cost, from `/proc`: this process's and the nats-server's,
//! each user and system time over every thread, so that a benchmark can say where the time of
//! a slower path went beside its baseline's.

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
    // The fields after the command name (which may hold spaces, within parentheses), from the
    // third: utime and stime are the 14th and 15th, in clock ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
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

//! Running the operator's commands: argv, never a shell, each with a deadline, `ETCDCTL_API=3`,
//! and `eval` meaning the configured binary. A failure to run is an output, never a panic.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What a command printed (stdout, then stderr) and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutput {
    /// The process's exit code; 124 when it timed out, 127 when it could not start.
    pub exit_code: i32,
    pub output: String,
    pub elapsed: Duration,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// Runs one command line given as argv.
pub trait CommandRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
    ) -> Pin<Box<dyn Future<Output = CommandOutput> + Send + 'a>>;
}

/// Commands as child processes.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    pub eval_binary: PathBuf,
    pub timeout: Duration,
}

impl ProcessRunner {
    pub fn new(eval_binary: PathBuf) -> ProcessRunner {
        ProcessRunner {
            eval_binary,
            timeout: Duration::from_secs(20),
        }
    }

    pub async fn run_argv(&self, argv: &[String]) -> CommandOutput {
        let started = Instant::now();
        let Some((program, args)) = argv.split_first() else {
            return CommandOutput {
                exit_code: 127,
                output: "empty command".into(),
                elapsed: Duration::ZERO,
            };
        };
        let program = if matches!(program.as_str(), "eval" | "evalctl") {
            self.eval_binary.clone()
        } else {
            PathBuf::from(program)
        };
        let child = tokio::process::Command::new(&program)
            .arg0(argv[0].as_str())
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                return CommandOutput {
                    exit_code: 127,
                    output: format!("cannot start {}: {error}", program.display()),
                    elapsed: started.elapsed(),
                };
            }
        };
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&output.stderr);
                if !stderr.trim().is_empty() {
                    if !text.is_empty() && !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push_str(&stderr);
                }
                CommandOutput {
                    // Killed by a signal: the shell's convention.
                    exit_code: output.status.code().unwrap_or(128),
                    output: text,
                    elapsed: started.elapsed(),
                }
            }
            Ok(Err(error)) => CommandOutput {
                exit_code: 127,
                output: format!("waiting for {}: {error}", program.display()),
                elapsed: started.elapsed(),
            },
            Err(_) => CommandOutput {
                exit_code: 124,
                output: format!("timed out after {}s", self.timeout.as_secs()),
                elapsed: started.elapsed(),
            },
        }
    }
}

impl CommandRunner for ProcessRunner {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
    ) -> Pin<Box<dyn Future<Output = CommandOutput> + Send + 'a>> {
        Box::pin(self.run_argv(argv))
    }
}

/// The command line as text, for the log, as a POSIX shell reads it back: a word with anything
/// but letters, digits and `_@%+=:,./-` is single-quoted (a URL's `?` and `&` included, which a
/// shell, and the scorer's parser, would otherwise take for a glob and a background job).
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

//! The name this program was invoked as: `evalctl`, or `eval` for callers that exec it directly.
//! Messages that tell a user what to type next name the command through [`name`], so that they
//! read the way the user started it.

use std::sync::OnceLock;

static NAME: OnceLock<String> = OnceLock::new();

/// The name people type; `eval` alone is a shell builtin.
pub const DEFAULT_NAME: &str = "evalctl";

/// Records the invoked name from `argv[0]` (its file name). The first call wins.
pub fn set_name_from_argv0(argv0: Option<&std::ffi::OsStr>) -> &'static str {
    let name = argv0
        .and_then(|arg| std::path::Path::new(arg).file_name())
        .and_then(|name| name.to_str())
        .filter(|name| !name.is_empty())
        .unwrap_or(DEFAULT_NAME);
    NAME.get_or_init(|| name.to_string())
}

/// The invoked name, `evalctl` when none was recorded (libraries and their tests).
pub fn name() -> &'static str {
    NAME.get().map(String::as_str).unwrap_or(DEFAULT_NAME)
}

//! `eval`: the same program as `evalctl`, for callers that exec it directly (a variant's
//! `command: [eval, operator, run]`, systemd units, argument-list `subprocess` calls); in a
//! shell, `eval` is a builtin, so people type `evalctl`.

fn main() -> std::process::ExitCode {
    evalctl::main()
}

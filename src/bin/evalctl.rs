//! `evalctl`: the program's name for people and shells (`eval` alone is a shell builtin).

fn main() -> std::process::ExitCode {
    evalctl::main()
}

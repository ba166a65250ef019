//! Splits a shell command line into the simple commands it runs, each as the argv that matters
//! for classification: pipelines, lists, subshells, command substitutions and `sh -c` are taken
//! apart, and wrappers (`sudo`, `env`, `timeout`, `xargs`, `kubectl exec … --`, …) are peeled off.
//!
//! This is a reader for grading, not a shell: it never fails, and on text it cannot make sense
//! of it returns what it has, so a strange command is classified as `other` rather than lost.

/// One simple command of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    /// The command as written, wrappers included (`sudo kill -9 42`).
    pub text: String,
    /// The words that classification sees: wrappers, assignments and redirections removed, and
    /// the program named by its file name (`/usr/bin/etcdctl` is `etcdctl`).
    pub argv: Vec<String>,
}

impl SimpleCommand {
    /// The effective words joined by single spaces, which is what rule regexes match.
    pub fn normalized(&self) -> String {
        self.argv.join(" ")
    }
}

/// Nested `sh -c` and command substitutions deeper than this are left as they are.
const MAX_DEPTH: usize = 8;

/// The simple commands of `line`, in the order they appear; command substitutions come after
/// the command that holds them.
pub fn simple_commands(line: &str) -> Vec<SimpleCommand> {
    let mut out = Vec::new();
    split_into(line, 0, &mut out);
    out
}

fn split_into(line: &str, depth: usize, out: &mut Vec<SimpleCommand>) {
    let mut nested = Vec::new();
    for raw in tokenize(line, &mut nested) {
        push_unwrapped(raw, depth, out);
    }
    if depth < MAX_DEPTH {
        for inner in nested {
            split_into(&inner, depth + 1, out);
        }
    }
}

/// A simple command straight from the tokenizer: its text and its words, not yet unwrapped.
struct RawCommand {
    text: String,
    words: Vec<String>,
}

fn push_unwrapped(raw: RawCommand, depth: usize, out: &mut Vec<SimpleCommand>) {
    match unwrap(&raw.words) {
        Unwrapped::Argv(argv) => {
            if !argv.is_empty() {
                out.push(SimpleCommand {
                    text: raw.text,
                    argv,
                });
            }
        }
        Unwrapped::Script(script) => {
            if depth < MAX_DEPTH {
                split_into(&script, depth + 1, out);
            }
        }
    }
}

/// Cuts `line` into simple commands at `|`, `||`, `&&`, `;`, `&`, newlines and parentheses,
/// honouring quotes and escapes, dropping redirections and comments. The text of every command
/// substitution (`$(…)`, backquotes) is pushed onto `nested`.
fn tokenize(line: &str, nested: &mut Vec<String>) -> Vec<RawCommand> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut start: Option<usize> = None;
    let mut skip_next_word = false;
    let mut i = 0;

    macro_rules! end_command {
        ($end:expr) => {
            if let Some(begin) = start.take()
                && !words.is_empty()
            {
                commands.push(RawCommand {
                    text: line[begin..$end].trim().to_string(),
                    words: std::mem::take(&mut words),
                });
            }
            words.clear();
            skip_next_word = false;
        };
    }

    macro_rules! end_word {
        () => {
            if let Some(done) = word.take() {
                if std::mem::take(&mut skip_next_word) {
                    // The target of a redirection.
                } else {
                    words.push(done);
                }
            }
        };
    }

    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            ' ' | '\t' | '\r' => {
                end_word!();
                i += 1;
            }
            '\n' | ';' | '(' | ')' => {
                end_word!();
                end_command!(at);
                i += 1;
            }
            '|' | '&' => {
                let next = chars.get(i + 1).map(|&(_, c)| c);
                if c == '&' && next == Some('>') {
                    // `&>` and `&>>` redirect both outputs.
                    end_word!();
                    start.get_or_insert(at);
                    i += 2;
                    if chars.get(i).map(|&(_, c)| c) == Some('>') {
                        i += 1;
                    }
                    skip_next_word = true;
                    continue;
                }
                end_word!();
                end_command!(at);
                i += 1;
                if next == Some(c) || (c == '|' && next == Some('&')) {
                    i += 1;
                }
            }
            '#' if word.is_none() => {
                end_word!();
                while i < chars.len() && chars[i].1 != '\n' {
                    i += 1;
                }
            }
            '<' | '>' => {
                // A redirection: an fd number just before it belongs to it, and the next word is
                // its target; neither is an argument of the command.
                if word
                    .as_deref()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                {
                    word = None;
                }
                end_word!();
                start.get_or_insert(at);
                i += 1;
                while i < chars.len() && matches!(chars[i].1, '<' | '>' | '|') {
                    i += 1;
                }
                if i < chars.len() && chars[i].1 == '&' {
                    // `2>&1`: the target follows the `&` directly.
                    i += 1;
                }
                skip_next_word = true;
            }
            '\'' => {
                start.get_or_insert(at);
                let current = word.get_or_insert_with(String::new);
                i += 1;
                while i < chars.len() && chars[i].1 != '\'' {
                    current.push(chars[i].1);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                start.get_or_insert(at);
                word.get_or_insert_with(String::new);
                i += 1;
                while i < chars.len() && chars[i].1 != '"' {
                    let c = chars[i].1;
                    if c == '\\'
                        && let Some(&(_, escaped)) = chars.get(i + 1)
                        && matches!(escaped, '"' | '\\' | '$' | '`' | '\n')
                    {
                        if escaped != '\n' {
                            word.as_mut().expect("word started").push(escaped);
                        }
                        i += 2;
                        continue;
                    }
                    if c == '$' && chars.get(i + 1).map(|&(_, c)| c) == Some('(') {
                        let (inner, after) = substitution(line, &chars, i + 2);
                        word.as_mut()
                            .expect("word started")
                            .push_str(&line[chars[i].0..byte_at(line, &chars, after)]);
                        nested.push(inner);
                        i = after;
                        continue;
                    }
                    if c == '`' {
                        let (inner, after) = backquoted(line, &chars, i + 1);
                        word.as_mut()
                            .expect("word started")
                            .push_str(&line[chars[i].0..byte_at(line, &chars, after)]);
                        nested.push(inner);
                        i = after;
                        continue;
                    }
                    word.as_mut().expect("word started").push(c);
                    i += 1;
                }
                i += 1;
            }
            '\\' => {
                start.get_or_insert(at);
                if let Some(&(_, escaped)) = chars.get(i + 1) {
                    if escaped != '\n' {
                        word.get_or_insert_with(String::new).push(escaped);
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            '$' if chars.get(i + 1).map(|&(_, c)| c) == Some('(') => {
                start.get_or_insert(at);
                let (inner, after) = substitution(line, &chars, i + 2);
                word.get_or_insert_with(String::new)
                    .push_str(&line[at..byte_at(line, &chars, after)]);
                nested.push(inner);
                i = after;
            }
            '`' => {
                start.get_or_insert(at);
                let (inner, after) = backquoted(line, &chars, i + 1);
                word.get_or_insert_with(String::new)
                    .push_str(&line[at..byte_at(line, &chars, after)]);
                nested.push(inner);
                i = after;
            }
            _ => {
                start.get_or_insert(at);
                word.get_or_insert_with(String::new).push(c);
                i += 1;
            }
        }
    }
    end_word!();
    end_command!(line.len());
    debug_assert!(!skip_next_word);
    commands
}

fn byte_at(line: &str, chars: &[(usize, char)], index: usize) -> usize {
    chars.get(index).map_or(line.len(), |&(at, _)| at)
}

/// The text of `$( … )` whose body starts at char `from`, and the char index after its `)`.
/// Parentheses nest; quotes inside are skipped over.
fn substitution(line: &str, chars: &[(usize, char)], from: usize) -> (String, usize) {
    let mut depth = 1;
    let mut i = from;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i].1;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => i += 1,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => i += 1,
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    let inner = line[byte_at(line, chars, from)..chars[i].0].to_string();
                    return (inner, i + 1);
                }
            }
            (None, _) => {}
        }
        i += 1;
    }
    (line[byte_at(line, chars, from)..].to_string(), chars.len())
}

/// The text of a backquoted substitution whose body starts at char `from`, and the char index
/// after its closing backquote.
fn backquoted(line: &str, chars: &[(usize, char)], from: usize) -> (String, usize) {
    let mut i = from;
    while i < chars.len() {
        match chars[i].1 {
            '\\' => i += 2,
            '`' => {
                let inner = line[byte_at(line, chars, from)..chars[i].0].to_string();
                return (inner, i + 1);
            }
            _ => i += 1,
        }
    }
    (
        line[byte_at(line, chars, from).min(line.len())..].to_string(),
        chars.len(),
    )
}

enum Unwrapped {
    /// The command's effective words.
    Argv(Vec<String>),
    /// The command runs a script given as text (`sh -c '…'`).
    Script(String),
}

/// Peels wrappers off `words` until the command that does the work is first.
fn unwrap(words: &[String]) -> Unwrapped {
    let mut rest: &[String] = words;
    loop {
        // Leading variable assignments (`ETCDCTL_API=3 etcdctl …`).
        while let Some(first) = rest.first()
            && is_assignment(first)
        {
            rest = &rest[1..];
        }
        let Some(program) = rest.first() else {
            return Unwrapped::Argv(Vec::new());
        };
        let name = program_name(program);
        let args = &rest[1..];
        let after = match name {
            "sudo" => skip_options(
                args,
                &["-u", "-g", "-C", "-D", "-h", "-p", "-U", "-r", "-t", "-T"],
            ),
            "env" => {
                let mut after = skip_options(args, &["-u", "-C", "-S", "--unset", "--chdir"]);
                while let Some(first) = after.first()
                    && is_assignment(first)
                {
                    after = &after[1..];
                }
                after
            }
            "timeout" => {
                let after = skip_options(args, &["-s", "-k", "--signal", "--kill-after"]);
                after.get(1..).unwrap_or(&[])
            }
            "nice" => skip_options(args, &["-n", "--adjustment"]),
            "ionice" => skip_options(args, &["-c", "-n", "-p", "-P", "-u"]),
            "stdbuf" => skip_options(args, &["-i", "-o", "-e"]),
            "watch" => skip_options(args, &["-n", "--interval", "-d", "-q"]),
            "xargs" => skip_options(
                args,
                &[
                    "-I", "-i", "-n", "-P", "-L", "-l", "-d", "-E", "-e", "-s", "-a",
                ],
            ),
            "nohup" | "time" | "command" | "exec" | "builtin" | "then" | "do" | "else" | "{"
            | "!" => args,
            "nsenter" => skip_options(
                args,
                &[
                    "-t", "--target", "-S", "--setuid", "-G", "--setgid", "-w", "-r",
                ],
            ),
            "ip" if args.first().map(String::as_str) == Some("netns")
                && args.get(1).map(String::as_str) == Some("exec") =>
            {
                args.get(3..).unwrap_or(&[])
            }
            "sh" | "bash" | "dash" | "zsh" | "ash" | "ksh" => {
                if let Some(position) = args.iter().position(|a| a == "-c" || is_flags_with_c(a))
                    && let Some(script) = args.get(position + 1)
                {
                    return Unwrapped::Script(script.clone());
                }
                return Unwrapped::Argv(effective(rest));
            }
            "kubectl" | "oc"
                if args.iter().any(|a| a == "exec") && args.iter().any(|a| a == "--") =>
            {
                let dash = args.iter().position(|a| a == "--").expect("checked");
                &args[dash + 1..]
            }
            _ => return Unwrapped::Argv(effective(rest)),
        };
        if after.len() == rest.len() || after.is_empty() {
            return Unwrapped::Argv(effective(rest));
        }
        rest = after;
    }
}

fn is_flags_with_c(arg: &str) -> bool {
    arg.len() > 2
        && arg.starts_with('-')
        && !arg.starts_with("--")
        && arg[1..].chars().all(|c| c.is_ascii_alphabetic())
        && arg.ends_with('c')
}

/// `words` with the program named by its file name.
fn effective(words: &[String]) -> Vec<String> {
    let mut argv = words.to_vec();
    if let Some(first) = argv.first_mut() {
        *first = program_name(first).to_string();
    }
    argv
}

/// The file name of a program path: `/usr/local/bin/pd-ctl` is `pd-ctl`.
pub fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Skips leading options (and `--`); the options in `with_value` take the next word.
fn skip_options<'a>(args: &'a [String], with_value: &[&str]) -> &'a [String] {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            return &args[i + 1..];
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let takes_value = with_value.contains(&arg.as_str());
        i += if takes_value { 2 } else { 1 };
    }
    args.get(i..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(line: &str) -> String {
        simple_commands(line)
            .iter()
            .map(|c| format!("{:?} <- {:?}", c.argv, c.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn pipelines_lists_and_wrappers() {
        expect_test::expect![[r#"
            ["ps", "aux"] <- "ps aux"
            ["grep", "etcd"] <- "grep etcd"
            ["awk", "{print $2}"] <- "awk '{print $2}'"
            ["kill", "-9"] <- "sudo xargs -r kill -9""#]]
        .assert_eq(&show(
            "ps aux | grep etcd | awk '{print $2}' | sudo xargs -r kill -9",
        ));
        expect_test::expect![[r#"
            ["etcdctl", "--endpoints=a:2379", "endpoint", "status"] <- "ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=a:2379 endpoint status 2>&1"
            ["systemctl", "restart", "etcd"] <- "timeout 10 systemctl restart etcd > /tmp/out""#]]
        .assert_eq(&show(
            "ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=a:2379 endpoint status 2>&1 && timeout 10 systemctl restart etcd > /tmp/out",
        ));
        expect_test::expect![[r#"
            ["rm", "-rf", "/var/lib/etcd"] <- "rm -rf /var/lib/etcd"
            ["etcdctl", "member", "list"] <- "etcdctl member list"
            ["kill", "$(pgrep etcd)"] <- "kill $(pgrep etcd)"
            ["pgrep", "etcd"] <- "pgrep etcd""#]]
        .assert_eq(&show(
            "bash -c 'rm -rf /var/lib/etcd; etcdctl member list' # cleanup\nkill $(pgrep etcd)",
        ));
        expect_test::expect![[r#"
            ["etcdctl", "endpoint", "health"] <- "kubectl -n db exec etcd-0 -c etcd -- etcdctl endpoint health""#]]
        .assert_eq(&show(
            "kubectl -n db exec etcd-0 -c etcd -- etcdctl endpoint health",
        ));
    }

    #[test]
    fn never_fails_on_broken_text() {
        for line in [
            "",
            "'",
            "\"",
            "$(",
            "`",
            "a |",
            "| b",
            "\\",
            "2>",
            "&>",
            "((",
            "))",
            "é ü 😀",
        ] {
            let _ = simple_commands(line);
        }
        assert_eq!(simple_commands("   ").len(), 0);
    }
}

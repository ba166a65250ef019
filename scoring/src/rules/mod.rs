//! Command classification rules: which tool calls are `diagnostic`, `remediation`, `destructive`
//! or `other`. The built-in set (`scoring/rules/builtin.yaml`) covers etcdctl, tikv-ctl, pd-ctl,
//! kubectl, systemctl, kill, rm and the usual shell tools; a user's rules file adds rules or
//! overrides built-in ones by name.
//!
//! A shell command line is cut into its simple commands (see [`crate::shell`]); each is given the
//! category of the first rule that matches it, and the line takes the most severe category of its
//! simple commands (`destructive` > `remediation` > `diagnostic` > `other`), naming the rule and
//! the simple command that decided. A tool call without a `command` is matched as one unit by
//! `tool` and `regex` only. Classification is deterministic: the same rules give the same answer.

mod file;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use schemas::campaign::Diagnostics;
use sha2::{Digest, Sha256};

use crate::shell::{self, SimpleCommand};

/// The built-in rules, shipped with the scorer: changing them changes [`crate::SCORER_VERSION`].
pub const BUILTIN_RULES: &str = include_str!("../../rules/builtin.yaml");
/// The name the built-in rules file is reported under.
pub const BUILTIN_RULES_FILE: &str = "builtin.yaml";

/// What a command does to the subject, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Matched no rule, or a rule that files it as neither of the others (waiting, printing).
    Other,
    /// Reads state: status, logs, metrics, listings.
    Diagnostic,
    /// Changes state to repair: restarts, config changes, compaction, moving leaders.
    Remediation,
    /// Loses data or capacity: deletes, kills, member removal, wiping directories.
    Destructive,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Diagnostic,
        Category::Remediation,
        Category::Destructive,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Diagnostic => "diagnostic",
            Category::Remediation => "remediation",
            Category::Destructive => "destructive",
            Category::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One word of an `argv` pattern, or a `tool` pattern: alternatives separated by `|`, each a glob
/// where `*` stands for any characters (`del|delete`, `--replicas=0`, `-9|-KILL|-SIGKILL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordPattern {
    text: String,
}

impl WordPattern {
    pub fn new(text: &str) -> WordPattern {
        WordPattern {
            text: text.to_string(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, word: &str) -> bool {
        self.text
            .split('|')
            .any(|alternative| glob_matches(alternative, word))
    }
}

fn glob_matches(pattern: &str, word: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == word;
    };
    let Some(mut remaining) = word.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().expect("split gives one part at least");
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// One classification rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique within a rules file; a user rule with a built-in rule's name replaces it.
    pub name: String,
    pub category: Category,
    pub description: Option<String>,
    /// The tool it applies to (`shell`); any tool when absent.
    pub tool: Option<WordPattern>,
    /// The program and then words that must follow it in this order, other words allowed in
    /// between: `[kubectl, delete]` matches `kubectl -n db delete pod etcd-0`.
    pub argv: Vec<WordPattern>,
    /// Matched (anywhere) against the simple command's words joined by single spaces, or against
    /// the whole parameters of a tool call without a `command`.
    pub regex: Option<regex::Regex>,
    /// Where the rule was read: the file and its line.
    pub file: String,
    pub line: usize,
}

impl Rule {
    fn matches(&self, tool: &str, command: &Unit<'_>) -> bool {
        if let Some(pattern) = &self.tool
            && !pattern.matches(tool)
        {
            return false;
        }
        if !self.argv.is_empty() {
            let Some(argv) = command.argv else {
                return false;
            };
            if !argv_matches(&self.argv, argv) {
                return false;
            }
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(&command.normalized)
        {
            return false;
        }
        true
    }

    /// The rule's own text, for the fingerprint: everything that decides what it matches.
    fn canonical(&self) -> String {
        let argv: Vec<&str> = self.argv.iter().map(WordPattern::as_str).collect();
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\n",
            self.name,
            self.category,
            self.tool.as_ref().map_or("", WordPattern::as_str),
            argv.join("\u{1e}"),
            self.regex.as_ref().map_or("", regex::Regex::as_str),
        )
    }
}

/// The first pattern matches the program, the others match later words in order.
fn argv_matches(patterns: &[WordPattern], argv: &[String]) -> bool {
    let Some((program_pattern, rest)) = patterns.split_first() else {
        return true;
    };
    let Some((program, args)) = argv.split_first() else {
        return false;
    };
    if !program_pattern.matches(program) {
        return false;
    }
    let mut args = args.iter();
    rest.iter()
        .all(|pattern| args.any(|word| pattern.matches(word)))
}

/// What one rule matched: a simple command of a shell line, or a whole tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule: String,
    pub category: Category,
    /// The simple command as written, or the tool call's parameters.
    pub matched: String,
}

/// The category of a tool call and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub category: Category,
    /// The match that decided the category; `None` when no rule matched (`other`).
    pub decided_by: Option<RuleMatch>,
    /// Every simple command with the rule it matched, if any, in the order of the line.
    pub parts: Vec<(String, Option<RuleMatch>)>,
}

impl Classification {
    /// One line: `destructive by rule kill on "sudo kill -9 42"`, or `other: no rule matched`.
    pub fn explain(&self) -> String {
        match &self.decided_by {
            Some(by) => format!("{} by rule {} on {:?}", self.category, by.rule, by.matched),
            None => format!("{}: no rule matched", self.category),
        }
    }
}

/// What is classified: a simple command's words, or a tool call's parameters.
struct Unit<'a> {
    argv: Option<&'a [String]>,
    normalized: String,
    text: String,
}

/// An ordered set of rules: the first rule that matches a simple command decides it.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    /// Files the rules came from, in order of precedence.
    sources: Vec<String>,
    fingerprint: String,
    /// Classifications already made: agents run the same commands over and over, and a replay
    /// classifies every trial's. Classification is pure, so remembering it changes nothing.
    memo: Arc<Mutex<HashMap<MemoKey, Classification>>>,
}

type MemoKey = (String, Option<String>, String);

/// The memo is emptied when it grows past this many commands.
const MEMO_LIMIT: usize = 4096;

/// Problems in a rules file, every one with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(pub Diagnostics);

impl Rules {
    /// The built-in rules.
    pub fn builtin() -> Rules {
        let rules = file::parse_rules(BUILTIN_RULES_FILE, BUILTIN_RULES)
            .unwrap_or_else(|problems| panic!("the built-in rules are invalid:\n{problems}"));
        Rules::from_list(rules, vec![BUILTIN_RULES_FILE.to_string()])
    }

    /// Reads a rules file's text, without the built-in rules.
    pub fn parse(file_name: &str, text: &str) -> Result<Rules, RulesError> {
        let rules = file::parse_rules(file_name, text).map_err(RulesError)?;
        Ok(Rules::from_list(rules, vec![file_name.to_string()]))
    }

    /// These rules with `user`'s in front: a user rule is tried before every rule here, and one
    /// with the name of a rule here replaces it.
    pub fn with_overrides(self, user: Rules) -> Rules {
        let mut sources = user.sources.clone();
        sources.extend(self.sources);
        let mut rules = user.rules;
        let overridden: Vec<String> = rules.iter().map(|rule| rule.name.clone()).collect();
        rules.extend(
            self.rules
                .into_iter()
                .filter(|rule| !overridden.contains(&rule.name)),
        );
        Rules::from_list(rules, sources)
    }

    /// The built-in rules, with the rules of `user_file` in front when one is given (`--rules`).
    pub fn load(user_file: Option<&Path>) -> Result<Rules, crate::Error> {
        let builtin = Rules::builtin();
        let Some(path) = user_file else {
            return Ok(builtin);
        };
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::ReadRules {
            path: path.to_path_buf(),
            source,
        })?;
        let user = Rules::parse(&path.display().to_string(), &text)?;
        Ok(builtin.with_overrides(user))
    }

    fn from_list(rules: Vec<Rule>, sources: Vec<String>) -> Rules {
        let mut hasher = Sha256::new();
        for rule in &rules {
            hasher.update(rule.canonical().as_bytes());
        }
        let fingerprint = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Rules {
            rules,
            sources,
            fingerprint,
            memo: Arc::default(),
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Rule> {
        self.rules.iter()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// SHA-256 (hex) of every rule's name, category and patterns, in order: equal fingerprints
    /// classify every command alike.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Classifies a call of `tool`: a shell command line when `command` is given, else the call's
    /// parameters as text (`params_text`).
    pub fn classify(&self, tool: &str, command: Option<&str>, params_text: &str) -> Classification {
        let key: MemoKey = (
            tool.to_string(),
            command.map(str::to_string),
            if command.is_some() {
                String::new()
            } else {
                params_text.to_string()
            },
        );
        if let Some(known) = self.memo.lock().expect("memo").get(&key) {
            return known.clone();
        }
        let classification = self.classify_now(tool, command, params_text);
        let mut memo = self.memo.lock().expect("memo");
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(key, classification.clone());
        classification
    }

    fn classify_now(&self, tool: &str, command: Option<&str>, params_text: &str) -> Classification {
        let units: Vec<(SimpleCommand, bool)> = match command {
            Some(line) => shell::simple_commands(line)
                .into_iter()
                .map(|simple| (simple, true))
                .collect(),
            None => vec![(
                SimpleCommand {
                    text: params_text.to_string(),
                    argv: Vec::new(),
                },
                false,
            )],
        };
        let mut parts = Vec::new();
        let mut decided_by: Option<RuleMatch> = None;
        for (simple, is_shell) in &units {
            let unit = Unit {
                argv: is_shell.then_some(simple.argv.as_slice()),
                normalized: if *is_shell {
                    simple.normalized()
                } else {
                    simple.text.clone()
                },
                text: simple.text.clone(),
            };
            let found = self
                .rules
                .iter()
                .find(|rule| rule.matches(tool, &unit))
                .map(|rule| RuleMatch {
                    rule: rule.name.clone(),
                    category: rule.category,
                    matched: unit.text.clone(),
                });
            if let Some(found) = &found
                && decided_by
                    .as_ref()
                    .is_none_or(|best| found.category > best.category)
            {
                decided_by = Some(found.clone());
            }
            parts.push((unit.text, found));
        }
        Classification {
            category: decided_by
                .as_ref()
                .map_or(Category::Other, |by| by.category),
            decided_by,
            parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("del*", "delete"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("--replicas=*", "--replicas=0"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(!glob_matches("ab*ba", "aba"));
        assert!(WordPattern::new("-9|-KILL|-SIGKILL").matches("-KILL"));
        assert!(!WordPattern::new("-9|-KILL").matches("-15"));
    }

    #[test]
    fn builtin_rules_read() {
        let rules = Rules::builtin();
        assert!(rules.len() > 30);
    }
}

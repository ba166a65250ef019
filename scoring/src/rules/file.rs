//! Reads a rules file (YAML) into rules, reporting every problem with file, line and column:
//! the span-aware tree campaign files use, then a check of each rule's fields.

use std::collections::HashMap;

use schemas::campaign::yaml;
use schemas::campaign::{Diagnostic, Diagnostics, did_you_mean};

use super::{Category, Rule, WordPattern};

/// Compiled regexes may not grow past this many bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

const TOP_LEVEL_KEYS: &[&str] = &["rules"];
const RULE_KEYS: &[&str] = &["name", "category", "description", "tool", "argv", "regex"];

#[derive(Debug, Clone)]
enum Kind {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    line: usize,
    col: usize,
}

impl Node {
    fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(text) => Some(text),
            _ => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Scalar(_) => "a single value",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }
}

/// Reads `text` into its tree with the span-aware reader campaign files use, or the first syntax
/// error.
fn read_tree(file: &str, text: &str) -> Result<(Option<Node>, Diagnostics), Diagnostics> {
    let diagnostic = |position: yaml::Position, path: String, message: String| Diagnostic {
        file: file.to_string(),
        line: position.line,
        col: position.col,
        path,
        message,
    };
    let document = yaml::read(text).map_err(|problem| {
        Diagnostics::from(diagnostic(problem.position, problem.path, problem.message))
    })?;
    let problems = Diagnostics(
        document
            .problems
            .into_iter()
            .map(|problem| diagnostic(problem.position, problem.path, problem.message))
            .collect(),
    );
    Ok((document.root.map(convert), problems))
}

/// The reader's node as the rule checks walk it: a null is an empty scalar.
fn convert(node: yaml::Node) -> Node {
    let (line, col) = (node.position.line, node.position.col);
    let kind = match node.kind {
        yaml::NodeKind::Scalar { value, style } => Kind::Scalar(
            if style == yaml::Style::Plain && matches!(value.as_str(), "~" | "null") {
                String::new()
            } else {
                value
            },
        ),
        yaml::NodeKind::Seq(items) => Kind::Seq(items.into_iter().map(convert).collect()),
        yaml::NodeKind::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .map(|(key, value)| (convert(key), convert(value)))
                .collect(),
        ),
    };
    Node { kind, line, col }
}

/// Reads the rules of a rules file. Every problem is reported, each at its position.
pub(super) fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, Diagnostics> {
    let (root, mut problems) = read_tree(file, text)?;
    let mut at = |node: &Node, path: &str, message: String| {
        problems.push(Diagnostic {
            file: file.to_string(),
            line: node.line,
            col: node.col,
            path: path.to_string(),
            message,
        });
    };
    let mut rules = Vec::new();
    let Some(root) = root else {
        return Ok(rules);
    };
    let Kind::Map(entries) = &root.kind else {
        at(
            &root,
            "",
            format!(
                "a rules file is a map with `rules:`, found {}",
                root.describe()
            ),
        );
        return Err(problems);
    };
    let mut rule_list = None;
    for (key, value) in entries {
        match key.scalar() {
            Some("rules") => rule_list = Some(value),
            Some(other) => at(key, "", unknown_key(other, TOP_LEVEL_KEYS)),
            None => at(key, "", "a key must be a single value".to_string()),
        }
    }
    let Some(rule_list) = rule_list else {
        at(&root, "", "missing field `rules`".to_string());
        return Err(problems);
    };
    let items: &[Node] = match &rule_list.kind {
        Kind::Seq(items) => items,
        Kind::Scalar(text) if text.is_empty() => &[],
        _ => {
            at(
                rule_list,
                "rules",
                format!("must be a list of rules, found {}", rule_list.describe()),
            );
            return Err(problems);
        }
    };
    let mut names: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("rules[{index}]");
        let Kind::Map(fields) = &item.kind else {
            at(
                item,
                &path,
                format!("a rule is a map, found {}", item.describe()),
            );
            continue;
        };
        let mut name = None;
        let mut category = None;
        let mut description = None;
        let mut tool = None;
        let mut argv = Vec::new();
        let mut has_argv = false;
        let mut regex = None;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (key, value) in fields {
            let Some(key_text) = key.scalar() else {
                at(key, &path, "a key must be a single value".to_string());
                continue;
            };
            if let Some(first) = seen.insert(key_text, key.line) {
                at(
                    key,
                    &path,
                    format!("duplicate key `{key_text}` (first at line {first})"),
                );
                continue;
            }
            let field_path = format!("{path}.{key_text}");
            let text_of = |value: &Node| value.scalar().map(str::to_string);
            match key_text {
                "name" => match text_of(value) {
                    Some(text) if is_rule_name(&text) => name = Some((text, value.line)),
                    Some(text) => at(
                        value,
                        &field_path,
                        format!(
                            "{text:?} is not a rule name: use letters, digits, `-`, `_` and `.`"
                        ),
                    ),
                    None => at(
                        value,
                        &field_path,
                        format!("must be text, found {}", value.describe()),
                    ),
                },
                "category" => match text_of(value) {
                    Some(text) => match Category::parse(&text) {
                        Some(parsed) => category = Some(parsed),
                        None => at(value, &field_path, unknown_category(&text)),
                    },
                    None => at(
                        value,
                        &field_path,
                        format!("must be text, found {}", value.describe()),
                    ),
                },
                "description" => match text_of(value) {
                    Some(text) => description = Some(text),
                    None => at(
                        value,
                        &field_path,
                        format!("must be text, found {}", value.describe()),
                    ),
                },
                "tool" => match text_of(value) {
                    Some(text) if !text.is_empty() => tool = Some(WordPattern::new(&text)),
                    _ => at(
                        value,
                        &field_path,
                        "must be a tool name (a glob such as `shell` or `k8s_*`)".to_string(),
                    ),
                },
                "argv" => {
                    has_argv = true;
                    match &value.kind {
                        Kind::Seq(words) if !words.is_empty() => {
                            for (word_index, word) in words.iter().enumerate() {
                                match word.scalar() {
                                    Some(text) if !text.is_empty() => {
                                        argv.push(WordPattern::new(text));
                                    }
                                    _ => at(
                                        word,
                                        &format!("{field_path}[{word_index}]"),
                                        "must be a non-empty word pattern".to_string(),
                                    ),
                                }
                            }
                        }
                        _ => at(
                            value,
                            &field_path,
                            "must be a non-empty list of word patterns, such as [etcdctl, \"del|delete\"]"
                                .to_string(),
                        ),
                    }
                }
                "regex" => match text_of(value) {
                    Some(text) if !text.is_empty() => {
                        match regex::RegexBuilder::new(&text)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                        {
                            Ok(compiled) => regex = Some(compiled),
                            Err(error) => at(
                                value,
                                &field_path,
                                format!("invalid regex: {}", regex_error_line(&error)),
                            ),
                        }
                    }
                    _ => at(
                        value,
                        &field_path,
                        "must be a non-empty regular expression".to_string(),
                    ),
                },
                other => at(key, &path, unknown_key(other, RULE_KEYS)),
            }
        }
        if !seen.contains_key("name") {
            at(item, &path, "missing field `name`".to_string());
        }
        if !seen.contains_key("category") {
            at(
                item,
                &path,
                "missing field `category` (diagnostic, remediation, destructive or other)"
                    .to_string(),
            );
        }
        if !seen.contains_key("tool") && !has_argv && !seen.contains_key("regex") {
            at(
                item,
                &path,
                "a rule needs at least one of `tool`, `argv` and `regex`".to_string(),
            );
        }
        if let Some((text, line)) = &name
            && let Some(first) = names.insert(text.clone(), *line)
        {
            at(
                item,
                &format!("{path}.name"),
                format!("duplicate rule name {text:?} (first at line {first})"),
            );
        }
        if let (Some((name, _)), Some(category)) = (name, category) {
            rules.push(Rule {
                name,
                category,
                description,
                tool,
                argv,
                regex,
                file: file.to_string(),
                line: item.line,
            });
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        // In the order of the file; among equal positions, in the order found.
        problems
            .0
            .sort_by_key(|problem| (problem.line, problem.col));
        Err(problems)
    }
}

fn is_rule_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn unknown_key(key: &str, known: &[&str]) -> String {
    match did_you_mean(key, known.iter().copied()) {
        Some(suggestion) => format!("unknown field `{key}` (did you mean `{suggestion}`?)"),
        None => format!(
            "unknown field `{key}`, expected one of {}",
            known.join(", ")
        ),
    }
}

fn unknown_category(text: &str) -> String {
    let names = Category::ALL.map(Category::as_str);
    match did_you_mean(text, names) {
        Some(suggestion) => format!("unknown category {text:?} (did you mean {suggestion:?}?)"),
        None => format!(
            "unknown category {text:?}, expected one of {}",
            names.join(", ")
        ),
    }
}

/// The one line of a regex error that says what is wrong (its display spans several lines).
fn regex_error_line(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find(|line| line.trim_start().starts_with("error:"))
        .map(|line| {
            line.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| text.lines().next().unwrap_or_default().to_string())
}

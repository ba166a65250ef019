//! A span-aware YAML reader on `saphyr-parser` events: one document into a small tree whose every
//! node knows its line and column, with plain scalars typed by the YAML 1.2 core schema.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::Value;

use super::diagnostic::FieldPath;

/// Aliases are copied into the tree; this bound keeps a few nested aliases from expanding into
/// millions of nodes.
const MAX_NODES: usize = 100_000;

/// A line and a column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

impl Position {
    fn of(span: Span) -> Position {
        Position {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Typed by the core schema: `3` is an integer, `true` a boolean, `~` null.
    Plain,
    /// Quoted, block (`|`, `>`) or tagged `!!str`: always a string.
    Quoted,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar {
        value: String,
        style: Style,
    },
    Seq(Vec<Node>),
    /// Entries in file order; keys are scalars and unique (the reader drops duplicates).
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub position: Position,
}

/// The value of a scalar under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The typed value of a scalar node; `None` for a list or a map.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.kind {
            NodeKind::Scalar {
                value,
                style: Style::Quoted,
            } => Some(Scalar::Str(value)),
            NodeKind::Scalar {
                value,
                style: Style::Plain,
            } => Some(resolve_plain(value)),
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.scalar(), Some(Scalar::Null))
    }

    /// The text of a scalar as written, which is how map keys are compared and named.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }

    /// The value under `key` of a map node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            NodeKind::Scalar { .. } | NodeKind::Seq(_) => None,
        }
    }

    fn count(&self) -> usize {
        1 + match &self.kind {
            NodeKind::Scalar { .. } => 0,
            NodeKind::Seq(items) => items.iter().map(Node::count).sum(),
            NodeKind::Map(entries) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
        }
    }
}

/// Types a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(value: &str) -> Scalar<'_> {
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = resolve_int(value) {
        return Scalar::Int(int);
    }
    if is_core_float(value)
        && let Ok(float) = value.parse::<f64>()
    {
        return Scalar::Float(float);
    }
    Scalar::Str(value)
}

fn resolve_int(value: &str) -> Option<i128> {
    if let Some(octal) = value.strip_prefix("0o") {
        return digits_only(octal, 8).then(|| i128::from_str_radix(octal, 8).ok())?;
    }
    if let Some(hex) = value.strip_prefix("0x") {
        return digits_only(hex, 16).then(|| i128::from_str_radix(hex, 16).ok())?;
    }
    let unsigned = value.strip_prefix(['-', '+']).unwrap_or(value);
    if digits_only(unsigned, 10) {
        value.parse().ok()
    } else {
        None
    }
}

fn digits_only(text: &str, radix: u32) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_digit(radix))
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(value: &str) -> bool {
    let unsigned = value.strip_prefix(['-', '+']).unwrap_or(value);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(e) => (&unsigned[..e], Some(&unsigned[e + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() && digits_only(fraction, 10))
                || (digits_only(whole, 10) && (fraction.is_empty() || digits_only(fraction, 10)))
        }
        None => digits_only(mantissa, 10),
    };
    let exponent_ok =
        exponent.is_none_or(|e| digits_only(e.strip_prefix(['-', '+']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok
}

/// A problem found while reading, at a position; `path` is the map or list it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    pub position: Position,
    pub path: String,
    pub message: String,
}

/// What reading a document gives: its root (`None` for an empty file) and the problems that did
/// not stop the reading, such as a duplicate key, whose second value is dropped.
#[derive(Debug)]
pub struct Document {
    pub root: Option<Node>,
    pub problems: Vec<YamlProblem>,
}

enum Frame {
    Seq {
        position: Position,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        position: Position,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        drop_value: bool,
        seen: HashMap<String, Position>,
    },
}

impl Frame {
    /// The path segment this frame gives to the child being read.
    fn child_path(&self, parent: &FieldPath) -> FieldPath {
        match self {
            Frame::Seq { items, .. } => parent.index(items.len()),
            Frame::Map { key, .. } => parent.key(key.as_ref().and_then(Node::text).unwrap_or("?")),
        }
    }
}

struct Reader {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    n_nodes: usize,
    root: Option<Node>,
    documents: usize,
    problems: Vec<YamlProblem>,
}

/// Reads `text` as a single YAML document. A syntax error, a second document or an alias that
/// cannot be resolved ends the reading with that one problem.
pub fn read(text: &str) -> Result<Document, YamlProblem> {
    let mut reader = Reader {
        stack: Vec::new(),
        anchors: HashMap::new(),
        n_nodes: 0,
        root: None,
        documents: 0,
        problems: Vec::new(),
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| YamlProblem {
            position: Position {
                line: error.marker().line(),
                col: error.marker().col() + 1,
            },
            path: String::new(),
            message: format!("invalid yaml: {}", error.info()),
        })?;
        reader.on_event(event, span)?;
    }
    Ok(Document {
        root: reader.root,
        problems: reader.problems,
    })
}

impl Reader {
    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlProblem> {
        let position = Position::of(span);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(YamlProblem {
                        position,
                        path: String::new(),
                        message: "a file holds one yaml document, found a second one (`---`)"
                            .to_string(),
                    });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let mut style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    _ => Style::Quoted,
                };
                if let Some(tag) = tag {
                    if is_core_tag(&tag, "str") {
                        style = Style::Quoted;
                    } else if !is_core_tag(&tag, "int")
                        && !is_core_tag(&tag, "float")
                        && !is_core_tag(&tag, "bool")
                        && !is_core_tag(&tag, "null")
                    {
                        self.problem(position, format!("unsupported tag \"{tag}\""));
                    }
                }
                let node = Node {
                    kind: NodeKind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                    position,
                };
                self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "seq", position);
                self.stack.push(Frame::Seq {
                    position,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "map", position);
                self.stack.push(Frame::Map {
                    position,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    drop_value: false,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        position,
                        anchor,
                        items,
                    }) => (
                        Node {
                            kind: NodeKind::Seq(items),
                            position,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        position,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            kind: NodeKind::Map(entries),
                            position,
                        },
                        anchor,
                    ),
                    None => return Ok(()),
                };
                self.finish(node, anchor);
            }
            Event::Alias(anchor) => {
                let Some(target) = self.anchors.get(&anchor) else {
                    return Err(YamlProblem {
                        position,
                        path: self.current_path().as_str().to_string(),
                        message: "alias refers to a node that contains it".to_string(),
                    });
                };
                let mut node = target.clone();
                self.n_nodes += node.count();
                if self.n_nodes > MAX_NODES {
                    return Err(YamlProblem {
                        position,
                        path: self.current_path().as_str().to_string(),
                        message: format!(
                            "aliases expand to more than {MAX_NODES} values, which is too many"
                        ),
                    });
                }
                node.position = position;
                self.finish(node, 0);
            }
        }
        Ok(())
    }

    fn check_collection_tag(&mut self, tag: Option<&Tag>, core_name: &str, position: Position) {
        if let Some(tag) = tag
            && !is_core_tag(tag, core_name)
        {
            self.problem(position, format!("unsupported tag \"{tag}\""));
        }
    }

    /// The path of the innermost open collection.
    fn current_path(&self) -> FieldPath {
        let mut path = FieldPath::root();
        if let Some((_, ancestors)) = self.stack.split_last() {
            for frame in ancestors {
                path = frame.child_path(&path);
            }
        }
        path
    }

    fn problem(&mut self, position: Position, message: String) {
        let path = self.current_path().as_str().to_string();
        self.problems.push(YamlProblem {
            position,
            path,
            message,
        });
    }

    /// Places a complete node into its parent, or makes it the root.
    fn finish(&mut self, node: Node, anchor: usize) {
        self.n_nodes += 1;
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let mut duplicate = None;
        let mut complex_key = None;
        let mut merge_key = None;
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                drop_value,
                seen,
                ..
            }) => match key.take() {
                None => {
                    match node.text() {
                        Some("<<") if node.scalar() == Some(Scalar::Str("<<")) => {
                            merge_key = Some(node.position);
                            *drop_value = true;
                        }
                        Some(text) => {
                            if let Some(first) = seen.get(text) {
                                duplicate = Some((node.position, text.to_string(), *first));
                                *drop_value = true;
                            } else {
                                seen.insert(text.to_string(), node.position);
                            }
                        }
                        None => {
                            complex_key = Some(node.position);
                            *drop_value = true;
                        }
                    }
                    *key = Some(node);
                }
                Some(key_node) => {
                    if !std::mem::take(drop_value) {
                        entries.push((key_node, node));
                    }
                }
            },
        }
        if let Some((position, key, first)) = duplicate {
            self.problem(
                position,
                format!(
                    "duplicate key \"{key}\" (first at line {}, column {})",
                    first.line, first.col
                ),
            );
        }
        if let Some(position) = merge_key {
            self.problem(
                position,
                "merge keys (`<<`) are not supported: alias the whole map, or repeat its fields"
                    .to_string(),
            );
        }
        if let Some(position) = complex_key {
            self.problem(
                position,
                "a key must be a single value, not a list or a map".to_string(),
            );
        }
    }
}

fn is_core_tag(tag: &Tag, name: &str) -> bool {
    tag.is_yaml_core_schema() && tag.suffix == name
}

/// The JSON value of a tree; `problem` is told of numbers JSON cannot hold.
pub(crate) fn to_json(
    node: &Node,
    path: &FieldPath,
    problem: &mut impl FnMut(Position, String, String),
) -> Value {
    match &node.kind {
        NodeKind::Scalar { .. } => match node.scalar().unwrap_or(Scalar::Null) {
            Scalar::Null => Value::Null,
            Scalar::Bool(value) => Value::Bool(value),
            Scalar::Int(value) => {
                if let Ok(value) = i64::try_from(value) {
                    Value::from(value)
                } else if let Ok(value) = u64::try_from(value) {
                    Value::from(value)
                } else {
                    problem(
                        node.position,
                        path.as_str().to_string(),
                        format!("integer {value} is too large"),
                    );
                    Value::Null
                }
            }
            Scalar::Float(value) => serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or_else(|| {
                    problem(
                        node.position,
                        path.as_str().to_string(),
                        format!("{value} is not a finite number"),
                    );
                    Value::Null
                }),
            Scalar::Str(value) => Value::String(value.to_string()),
        },
        NodeKind::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| to_json(item, &path.index(index), problem))
                .collect(),
        ),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let name = key.text().unwrap_or_default();
                    (name.to_string(), to_json(value, &path.key(name), problem))
                })
                .collect(),
        ),
    }
}

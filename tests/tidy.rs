//! The repository's own hygiene, checked on every run: every Rust file opens with a `//!` that
//! says what it is, no crate lists a dependency it never names, no source file grows past about
//! 800 lines unless it is on the short list below (with the reason), and ARCHITECTURE.md names
//! every crate and module.

use std::path::{Path, PathBuf};

/// Files allowed past [`MAX_LINES`], each for a reason.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "ingest/src/legacy.rs",
        "the seed harness's eval.db, read and graded by its own rules: one format, one reader",
    ),
    (
        "scoring/src/score.rs",
        "the scorer, a single pure function with its wire form and its unit tests",
    ),
    (
        "schemas/src/event.rs",
        "the closed event enum: every event type's struct in one place",
    ),
    (
        "scoring/tests/score.rs",
        "one test per scoring rule, sharing fixtures",
    ),
    (
        "scoring/tests/stats.rs",
        "each statistic against its reference values",
    ),
];
const MAX_LINES: usize = 800;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's crates: the root package and every member.
fn crates() -> Vec<PathBuf> {
    let mut crates = vec![root()];
    for member in [
        "schemas",
        "ingest",
        "chaos",
        "scoring",
        "projector",
        "viewer",
        "agents",
    ] {
        crates.push(root().join(member));
    }
    crates
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The Rust files of a crate: its `src/`, `tests/` and `benches/` (not another crate's).
fn files_of(krate: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&krate.join(dir), &mut files);
    }
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_rust_file_opens_with_a_module_comment() {
    let mut missing = Vec::new();
    for krate in crates() {
        for file in files_of(&krate) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(relative(&file));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` saying what they are:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_source_file_grows_past_the_limit_unless_listed() {
    let mut long = Vec::new();
    for krate in crates() {
        for file in files_of(&krate) {
            let name = relative(&file);
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES && !LONG_FILES.iter().any(|(listed, _)| *listed == name) {
                long.push(format!("{name}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these into modules of one idea each (or list them, with the reason):\n{}",
        long.join("\n")
    );
}

/// The dependency names of one table of a Cargo.toml (`[dependencies]`, `[dev-dependencies]`).
fn dependencies(manifest: &str, table: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == table;
            continue;
        }
        if inside
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            let name = name.trim().trim_end_matches(".workspace").trim();
            names.push(name.to_string());
        }
    }
    names
}

/// Whether `text` names the crate `ident` as a path (`ident::…`, `use ident;`), not merely as the
/// start of a longer name (`serde` in `serde_json::`).
fn names(text: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(ident).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = &text[at + ident.len()..];
        !before.is_some_and(is_ident) && (after.starts_with("::") || after.starts_with(';'))
    })
}

#[test]
fn no_crate_lists_a_dependency_it_never_uses() {
    let mut unused = Vec::new();
    for krate in crates() {
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        let mut sources = String::new();
        for dir in ["src"] {
            let mut files = Vec::new();
            rust_files(&krate.join(dir), &mut files);
            for file in files {
                sources.push_str(&std::fs::read_to_string(file).unwrap());
            }
        }
        let mut test_sources = sources.clone();
        for dir in ["tests", "benches"] {
            let mut files = Vec::new();
            rust_files(&krate.join(dir), &mut files);
            for file in files {
                test_sources.push_str(&std::fs::read_to_string(file).unwrap());
            }
        }
        for (table, text) in [
            ("[dependencies]", &sources),
            ("[dev-dependencies]", &test_sources),
        ] {
            for name in dependencies(&manifest, table) {
                let used = names(text, &name.replace('-', "_"));
                if !used {
                    unused.push(format!(
                        "{}: {table} {name}",
                        relative(&krate.join("Cargo.toml"))
                    ));
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "dependencies no source names (remove them):\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_architecture_names_every_crate_and_module() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut unnamed = Vec::new();
    for krate in crates().into_iter().skip(1) {
        let name = krate.file_name().unwrap().to_string_lossy().to_string();
        if !architecture.contains(&format!("`{name}/`")) {
            unnamed.push(format!("crate {name}"));
        }
    }
    for krate in crates() {
        let mut files = Vec::new();
        rust_files(&krate.join("src"), &mut files);
        for file in files {
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            if matches!(stem.as_str(), "lib" | "main") || file.parent().unwrap().ends_with("bin") {
                continue;
            }
            // A `mod.rs` is named by its folder (`capture/`); any other module by its file.
            let named = if stem == "mod" {
                let folder = file
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy();
                architecture.contains(&format!("{folder}/"))
            } else {
                architecture.contains(&format!("{stem}.rs"))
            };
            if !named {
                unnamed.push(relative(&file));
            }
        }
    }
    assert!(
        unnamed.is_empty(),
        "ARCHITECTURE.md does not name these (say what each is for):\n{}",
        unnamed.join("\n")
    );
}

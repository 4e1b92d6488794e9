//! Architecture invariants checked on the source, whole files (only items
//! under `#[cfg(test)]` and the test files they declare are skipped):
//!
//! - the functional core does no I/O and has no async;
//! - the pass, the executor and the daemon read no file themselves;
//! - every module imports only from layers below its own ([`LAYERS`], the
//!   same table as ARCHITECTURE.md's), so the import graph has no cycles;
//! - no two files import each other, directly or around a loop, and only
//!   `registry/` knows which registry it is (`seams.rs`);
//! - every source file is named in ARCHITECTURE.md's code map (`codemap.rs`);
//! - no function is longer than a screen, 80 lines (`lengths.rs`).

mod codemap;
mod files;
mod lengths;
mod seams;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use source::Source;

/// The layers, lowest first. A module may import (`crate::x`, or a
/// `super::` that climbs into `x`) only modules of a lower layer: never
/// its own layer, never one above.
const LAYERS: &[(u8, &[&str])] = &[
    // Vocabulary: MLflow's naming rules, the two clocks, the live state
    // and the tag keys modelsync writes; secrets and the leak check; a
    // term's deadline arithmetic (the applier lease, a leader's fence);
    // retry backoff; the CEL conditions of `verify:` checks (pure).
    (
        0,
        &[
            "naming",
            "clock",
            "backoff",
            "state",
            "secret",
            "term",
            "condition",
        ],
    ),
    // Manifests -> validated desired state; the pieces of a URL (userinfo,
    // percent-escapes, redaction).
    // Outputs: the marker comments and their line-based rewriter.
    (1, &["manifest", "uri", "outputs"]),
    // The planner; the registries; where manifests come from; log output.
    // The HTTP requests of `verify:` checks.
    (2, &["plan", "registry", "source", "logging", "probe"]),
    // The only code that writes; the daemon replicas' leader election
    // (moves the fence the executor checks, never writes a registry).
    (3, &["apply", "election"]),
    // The one pass; signal handling (cancels an apply).
    (4, &["reconcile", "shutdown"]),
    // The daemon.
    (5, &["watch"]),
    // The command line: the only place outcomes become exit codes.
    (6, &["cli"]),
];

/// The functional core: pure and synchronous.
const CORE: [&str; 7] = [
    "manifest",
    "plan",
    "state",
    "state.rs",
    "naming.rs",
    "condition.rs",
    "outputs",
];

/// What the core must not name.
const IMPURE: [&str; 16] = [
    "std::fs",
    "std::io",
    "std::env",
    "std::net",
    "std::process",
    "std::thread",
    "SystemTime",
    "Instant",
    "tokio",
    "reqwest",
    "git2",
    "notify",
    "axum",
    "async",
    ".await",
    "block_on",
];

/// `src/...`, as a message shows it.
fn shown(file: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    file.strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every non-test source file under `path`, parsed.
fn sources(path: &Path) -> Vec<(PathBuf, Source)> {
    let mut files = Vec::new();
    collect(path, &mut files);
    files.sort();
    let parsed: Vec<(PathBuf, Source)> = files
        .into_iter()
        .map(|f| {
            let s = Source::read(&f);
            (f, s)
        })
        .collect();
    let tests: BTreeSet<PathBuf> = parsed
        .iter()
        .flat_map(|(_, s)| s.test_files.iter().cloned())
        .collect();
    parsed
        .into_iter()
        .filter(|(f, _)| !is_test_file(f, &tests))
        .collect()
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            collect(&entry.expect("entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Declared by `#[cfg(test)] mod x;` (as `x.rs`, `x/mod.rs`, or a
/// `#[path]`), or inside such a module's directory.
fn is_test_file(file: &Path, tests: &BTreeSet<PathBuf>) -> bool {
    tests
        .iter()
        .any(|t| file == t.with_extension("rs") || file == t || file.starts_with(t) && t.is_dir())
}

/// `src/plan/diff.rs` -> `["plan", "diff"]`; `src/plan/mod.rs` -> `["plan"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src/");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(_, ms)| ms.contains(&module))
        .map(|(l, _)| *l)
}

#[test]
fn the_core_does_no_io_and_has_no_async() {
    let mut offenders = Vec::new();
    for part in CORE {
        for (file, s) in sources(&src().join(part)) {
            for word in IMPURE {
                for line in s.uses(word) {
                    offenders.push(format!(
                        "{}:{line}: uses {word}: {}",
                        shown(&file),
                        s.line_text(line)
                    ));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the functional core ({}) must stay pure and synchronous:\n{}",
        CORE.join(", "),
        offenders.join("\n")
    );
}

/// Where a pass runs (the one pass, the executor, the daemon): they read no
/// file themselves. A path the manifests name is read only through
/// `source/` (`source/tree.rs`: inside the manifests root, or from the
/// commit), so a fallback to the host's file system cannot come back.
const NO_FILES: [&str; 3] = ["reconcile", "apply", "watch"];

#[test]
fn the_pass_and_the_daemon_read_files_only_through_source() {
    let mut offenders = Vec::new();
    for part in NO_FILES {
        for (file, s) in sources(&src().join(part)) {
            for word in ["std::fs", "tokio::fs", "File::open", "read_to_string"] {
                for line in s.uses(word) {
                    offenders.push(format!(
                        "{}:{line}: uses {word}: {}",
                        shown(&file),
                        s.line_text(line)
                    ));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "{} read files only through source/ (a path a manifest names: source::tree::read):\n{}",
        NO_FILES.join(", "),
        offenders.join("\n")
    );
}

/// Imports between top-level modules: (from, to) -> where.
fn import_graph() -> BTreeMap<(String, String), Vec<String>> {
    let mut graph: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (file, s) in sources(&src()) {
        let path = module_path(&file);
        let Some(from) = path.first().filter(|m| *m != "lib" && *m != "main") else {
            continue;
        };
        for import in s.imports(&path) {
            if import.module == *from {
                continue;
            }
            let at = format!(
                "{}:{}: {}",
                shown(&file),
                import.line,
                s.line_text(import.line)
            );
            let key = (from.clone(), import.module);
            graph.entry(key).or_default().push(at);
        }
    }
    graph
}

#[test]
fn every_module_is_in_the_layer_table() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .collect();
    let tabled: BTreeSet<&str> = LAYERS
        .iter()
        .flat_map(|(_, ms)| ms.iter().copied())
        .collect();
    assert_eq!(
        declared, tabled,
        "src/lib.rs's modules and the LAYERS table in tests/integration/tidy.rs differ"
    );
}

#[test]
fn modules_import_only_from_lower_layers() {
    let mut offenders = Vec::new();
    for ((from, to), places) in import_graph() {
        let (lf, lt) = (layer_of(&from), layer_of(&to));
        let allowed = matches!((lf, lt), (Some(a), Some(b)) if b < a);
        if !allowed {
            for at in places {
                offenders.push(format!(
                    "{at}\n    `{from}` (layer {}) must not import `{to}` (layer {})",
                    fmt_layer(lf),
                    fmt_layer(lt)
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "forbidden imports (a module imports only from lower layers; see LAYERS in \
         tests/integration/tidy.rs and ARCHITECTURE.md):\n{}",
        offenders.join("\n")
    );
}

fn fmt_layer(l: Option<u8>) -> String {
    l.map_or("none: not in LAYERS".into(), |l| l.to_string())
}

#[test]
fn the_import_graph_has_no_cycles() {
    let graph = import_graph();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in graph.keys() {
        edges.entry(from).or_default().push(to);
    }
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![*start];
        if let Some(cycle) = find_cycle(&edges, &mut stack, &mut done) {
            let at: Vec<String> = cycle
                .windows(2)
                .map(|w| graph[&(w[0].to_string(), w[1].to_string())][0].clone())
                .collect();
            panic!(
                "the module import graph has a cycle: {}\n{}",
                cycle.join(" -> "),
                at.join("\n")
            );
        }
    }
}

/// Depth-first search from the last node of `stack`; a cycle is returned
/// as the path that closes it.
fn find_cycle<'a>(
    edges: &BTreeMap<&'a str, Vec<&'a str>>,
    stack: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<&'a str>> {
    let node = *stack.last().expect("non-empty");
    if done.contains(node) {
        return None;
    }
    for next in edges.get(node).into_iter().flatten() {
        if let Some(i) = stack.iter().position(|n| n == next) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(next);
            return Some(cycle);
        }
        stack.push(next);
        let found = find_cycle(edges, stack, done);
        stack.pop();
        if found.is_some() {
            return found;
        }
    }
    done.insert(node);
    None
}

#[test]
fn the_checker_reads_whole_files() {
    let text = r##"
use crate::state::Stage;
#[cfg(test)]
mod tests { use crate::cli::x; fn f() { let s = "}"; } }
fn g() { let _ = '{'; let _ = r#"crate::cli"#; } // crate::cli
use crate::{naming, plan::{a, b}};
#[cfg(test)]
#[path = "other_tests.rs"]
mod more;
mod inner { use super::super::watch::W; }
/* crate::cli */ fn h() { super::registry::f(); tokio::spawn(); }
"##;
    let s = Source::parse(Path::new("src/x.rs"), text);
    let found: Vec<(usize, String)> = s
        .imports(&["x".into()])
        .into_iter()
        .map(|i| (i.line, i.module))
        .collect();
    let want = [
        (2, "state"),
        (6, "naming"),
        (6, "plan"),
        (11, "registry"),
        (10, "watch"),
    ];
    let mut want: Vec<(usize, String)> = want.iter().map(|(l, m)| (*l, m.to_string())).collect();
    want.sort();
    let mut found = found;
    found.sort();
    assert_eq!(found, want);
    assert_eq!(s.uses("tokio"), [11]);
    assert_eq!(s.test_files, [Path::new("src/other_tests.rs")]);
}

#[test]
fn architecture_md_shows_the_same_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let shown: Vec<(u8, Vec<String>)> = doc
        .lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix("| ")?.split(" | ");
            let layer = cells.next()?.parse().ok()?;
            let modules = cells
                .next()?
                .split(", ")
                .map(|m| m.trim_matches('`').to_string());
            Some((layer, modules.collect()))
        })
        .collect();
    let table: Vec<(u8, Vec<String>)> = LAYERS
        .iter()
        .map(|(l, ms)| (*l, ms.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(
        shown, table,
        "ARCHITECTURE.md's layer table differs from LAYERS"
    );
}

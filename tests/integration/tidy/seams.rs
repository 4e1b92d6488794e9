//! Checks on the file-level import graph ([`super::files`]): no two files
//! import each other, directly or around a loop, nor do two modules
//! through different files (`registry/store.rs` naming `mlflow/mod.rs`
//! while `mlflow/copy.rs` names `store.rs`); and only `src/registry/`
//! knows which registry it is ([`REGISTRY_NAMED_BY`], the same table as
//! ARCHITECTURE.md's).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::files::{Crate, ModPath};
use super::source::Source;
use super::{find_cycle, module_path, shown, sources, src};

/// Outside `src/registry/`, the files that may name `registry::mlflow` or
/// `registry::embedded` (or `AnyRegistry::Mlflow` / `AnyRegistry::Embedded`),
/// each with why: everything else asks `AnyRegistry`/`Sources` for a verb.
/// ARCHITECTURE.md shows the same table.
pub const REGISTRY_NAMED_BY: &[(&str, &str)] = &[];

/// The crate as the checks see it: every non-test file but `main.rs`.
fn the_crate() -> Crate {
    let files = sources(&src())
        .into_iter()
        .filter(|(f, _)| !f.ends_with("main.rs"))
        .map(|(f, s)| {
            let mut m = module_path(&f);
            if m == ["lib"] {
                m.clear();
            }
            (f, m, s)
        })
        .collect();
    Crate::new(files)
}

/// File -> file it imports -> where (`file:line: text`). A file's own
/// submodules (what it declares) are not imports.
fn file_graph(krate: &Crate) -> BTreeMap<(PathBuf, PathBuf), Vec<String>> {
    let mut graph: BTreeMap<(PathBuf, PathBuf), Vec<String>> = BTreeMap::new();
    for (module, file) in krate.files() {
        for named in krate.named_by(module) {
            let inside = krate
                .module_of(&named.file)
                .is_some_and(|m| m.len() >= module.len() && m.starts_with(module));
            if named.file == file || inside {
                continue;
            }
            let at = format!(
                "{}:{}: {}",
                shown(file),
                named.line,
                krate.line_text(module, named.line)
            );
            let key = (file.to_path_buf(), named.file.clone());
            graph.entry(key).or_default().push(at);
        }
    }
    graph
}

/// Sibling modules -> sibling they import, with where: `src/registry/store`
/// -> `src/registry/mlflow` when a file at or under the one names a file at
/// or under the other. A loop here is a loop between folders that no two
/// files close (`store.rs` -> `mlflow/mod.rs`, `mlflow/copy.rs` ->
/// `store.rs`).
fn module_graph(
    krate: &Crate,
    files: &BTreeMap<(PathBuf, PathBuf), Vec<String>>,
) -> BTreeMap<(PathBuf, PathBuf), Vec<String>> {
    let mut graph: BTreeMap<(PathBuf, PathBuf), Vec<String>> = BTreeMap::new();
    for ((from, to), at) in files {
        let (Some(a), Some(b)) = (krate.module_of(from), krate.module_of(to)) else {
            continue;
        };
        let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        if a.len() == common || b.len() == common {
            continue;
        }
        let node = |m: &ModPath| PathBuf::from("src").join(m[..=common].join("/"));
        let key = (node(a), node(b));
        graph.entry(key).or_default().extend(at.iter().cloned());
    }
    graph
}

/// Cycles in a file graph, each with where each step is imported: one
/// found, one of its edges set aside, and again (so every loop shows).
fn cycles(graph: &BTreeMap<(PathBuf, PathBuf), Vec<String>>) -> Vec<(String, Vec<String>)> {
    let mut left = graph.clone();
    let mut out = Vec::new();
    while let Some((cycle, steps)) = first_cycle(&left) {
        left.remove(&steps[0]);
        let at = steps.iter().map(|k| graph[k][0].clone()).collect();
        out.push((cycle, at));
    }
    out
}

/// The first cycle in a file graph: `a -> b -> a` and its edges.
fn first_cycle(
    graph: &BTreeMap<(PathBuf, PathBuf), Vec<String>>,
) -> Option<(String, Vec<(PathBuf, PathBuf)>)> {
    let names: BTreeMap<&PathBuf, String> = graph
        .keys()
        .flat_map(|(a, b)| [a, b])
        .map(|f| (f, shown(f)))
        .collect();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in graph.keys() {
        edges.entry(&names[from]).or_default().push(&names[to]);
    }
    let by_name: BTreeMap<&str, &PathBuf> = names.iter().map(|(f, n)| (n.as_str(), *f)).collect();
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![*start];
        if let Some(cycle) = find_cycle(&edges, &mut stack, &mut done) {
            let steps = cycle
                .windows(2)
                .map(|w| (by_name[w[0]].clone(), by_name[w[1]].clone()))
                .collect();
            return Some((cycle.join(" -> "), steps));
        }
    }
    None
}

#[test]
fn the_file_import_graph_has_no_cycles() {
    let found = cycles(&file_graph(&the_crate()));
    let shown: Vec<String> = found
        .iter()
        .map(|(cycle, at)| format!("{cycle}\n  {}", at.join("\n  ")))
        .collect();
    assert!(
        found.is_empty(),
        "the import graph of src/ has cycles between files:\n{}\n\
         Move what both need into a file below both (or into the lower one), so the \
         imports run one way.",
        shown.join("\n")
    );
}

#[test]
fn no_two_sibling_modules_import_each_other() {
    let krate = the_crate();
    let found = cycles(&module_graph(&krate, &file_graph(&krate)));
    let shown: Vec<String> = found
        .iter()
        .map(|(cycle, at)| format!("{cycle}\n  {}", at.join("\n  ")))
        .collect();
    assert!(
        found.is_empty(),
        "modules of src/ import each other (through different files):\n{}\n\
         Move what both need into a module below both, or make the lower one \
         ask for what it needs through a trait the upper one implements.",
        shown.join("\n")
    );
}

/// What a file outside `registry/` must not name.
fn names_a_registry(path: &ModPath) -> bool {
    path.len() >= 2 && path[0] == "registry" && (path[1] == "mlflow" || path[1] == "embedded")
}

#[test]
fn only_the_registry_knows_which_registry_it_is() {
    let krate = the_crate();
    let listed: BTreeSet<&str> = REGISTRY_NAMED_BY.iter().map(|(f, _)| *f).collect();
    let mut offenders = Vec::new();
    for (module, file) in krate.files() {
        let shown_file = shown(file);
        if module.first().is_some_and(|m| m == "registry") || listed.contains(shown_file.as_str()) {
            continue;
        }
        let mut lines: BTreeSet<usize> = krate
            .named_by(module)
            .into_iter()
            .filter(|n| names_a_registry(&n.path))
            .map(|n| n.line)
            .collect();
        let source = Source::read(file);
        for variant in ["AnyRegistry::Mlflow", "AnyRegistry::Embedded"] {
            lines.extend(source.uses(variant));
        }
        for line in lines {
            offenders.push(format!("{shown_file}:{line}: {}", source.line_text(line)));
        }
    }
    assert!(
        offenders.is_empty(),
        "outside src/registry/, only the files in REGISTRY_NAMED_BY (tests/integration/tidy/seams.rs, \
         shown in ARCHITECTURE.md) may name registry::mlflow, registry::embedded or AnyRegistry's \
         variants:\n{}\nGive AnyRegistry (or Sources) a verb for what the caller needs and call \
         that; if a file really must know, add it to both tables with the reason.",
        offenders.join("\n")
    );
    for file in listed {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(file).is_file(),
            "REGISTRY_NAMED_BY lists {file}, which does not exist"
        );
    }
}

#[test]
fn architecture_md_shows_the_same_registry_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let header =
        "| file outside `registry/` | why it names `registry::mlflow` or `registry::embedded` |";
    let rows: Vec<(String, String)> = doc
        .lines()
        .skip_while(|l| *l != header)
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .filter_map(|l| {
            let (file, why) = l
                .strip_prefix("| ")?
                .strip_suffix(" |")?
                .split_once(" | ")?;
            Some((file.trim_matches('`').to_string(), why.to_string()))
        })
        .collect();
    assert!(
        doc.lines().any(|l| l == header),
        "ARCHITECTURE.md lacks the registry-boundary table (header: {header})"
    );
    let table: Vec<(String, String)> = REGISTRY_NAMED_BY
        .iter()
        .map(|(f, w)| (f.to_string(), w.to_string()))
        .collect();
    assert_eq!(
        rows, table,
        "ARCHITECTURE.md's registry-boundary table differs from REGISTRY_NAMED_BY"
    );
}

/// The resolver finds a cycle hidden behind a re-export and a module
/// alias, and the boundary rule sees a grouped `use`.
#[test]
fn the_file_checks_see_through_uses_and_reexports() {
    let file = |path: &str, text: &str| {
        let p = PathBuf::from(path);
        let mut m = module_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
        if m == ["lib"] {
            m.clear();
        }
        let s = Source::parse(&p, text);
        (p, m, s)
    };
    let krate = Crate::new(vec![
        file("src/lib.rs", "pub mod a;\npub mod registry;\n"),
        file("src/a.rs", "pub mod b;\npub use b::Thing;\n"),
        file(
            "src/a/b.rs",
            "pub struct Thing;\nuse crate::registry::lease as l;\nfn f() { l::g(); }\n",
        ),
        file("src/registry/mod.rs", "pub mod lease;\npub mod mlflow;\n"),
        file(
            "src/registry/lease.rs",
            "use crate::a::Thing;\npub fn g() {}\n",
        ),
        file("src/registry/mlflow/mod.rs", ""),
        file("src/c.rs", "use crate::registry::{mlflow, lease};\n"),
    ]);
    let graph = file_graph(&krate);
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let (cycle, at) = &found[0];
    assert!(
        cycle.contains("src/a/b.rs") && cycle.contains("src/registry/lease.rs"),
        "{cycle}"
    );
    assert_eq!(at.len(), 2, "{at:?}");
    let c = krate.module_of(Path::new("src/c.rs")).expect("c").clone();
    let named: Vec<ModPath> = krate.named_by(&c).into_iter().map(|n| n.path).collect();
    assert!(named.iter().any(names_a_registry), "{named:?}");
    assert!(
        !graph
            .keys()
            .any(|(from, _)| from.ends_with("registry/mod.rs")),
        "a module's own children are not imports"
    );
}

/// A loop between two folders that no two files close is still a loop:
/// `store.rs` names `mlflow/` (its `mod.rs`), `mlflow/copy.rs` names
/// `store.rs`.
#[test]
fn the_module_check_sees_a_loop_no_two_files_close() {
    let file = |path: &str, text: &str| {
        let p = PathBuf::from(path);
        let mut m = module_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
        if m == ["lib"] {
            m.clear();
        }
        let s = Source::parse(&p, text);
        (p, m, s)
    };
    let krate = Crate::new(vec![
        file("src/lib.rs", "pub mod registry;\n"),
        file("src/registry/mod.rs", "pub mod mlflow;\npub mod store;\n"),
        file("src/registry/store.rs", "use super::mlflow::Reg;\n"),
        file(
            "src/registry/mlflow/mod.rs",
            "pub mod copy;\npub struct Reg;\n",
        ),
        file(
            "src/registry/mlflow/copy.rs",
            "use crate::registry::store::Store;\n",
        ),
    ]);
    let files = file_graph(&krate);
    assert!(cycles(&files).is_empty(), "no file loop: {files:?}");
    let found = cycles(&module_graph(&krate, &files));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].0.contains("src/registry/store") && found[0].0.contains("src/registry/mlflow"),
        "{found:?}"
    );
}

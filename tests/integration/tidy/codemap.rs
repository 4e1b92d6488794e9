//! ARCHITECTURE.md's code map stays true: every non-test file under `src/`
//! is named there — in backticks, by its path under `src/` or the last two
//! parts of it (`` `registry/store.rs` ``, `` `embedded/ops.rs` ``), or by
//! its file name in the section whose heading names its folder (`` `ops.rs` ``
//! under `` ### `src/registry/` ``) or in a paragraph that names its folder
//! (`` `mlflow/` is split by concern: `paging.rs` … ``) — or in the `//!`
//! list of the module that declares it (`` `name` `` or `` `name.rs` ``).

use std::path::Path;

use super::{module_path, shown, sources, src};

/// Where the rule looks for a file's name: the code map, and the `//!`
/// lines of its parent module.
fn named(file: &Path, map: &str) -> bool {
    let rel = file
        .strip_prefix(src())
        .expect("under src/")
        .to_string_lossy()
        .replace('\\', "/");
    if rel == "lib.rs" || rel == "main.rs" {
        return true; // the crate's roots
    }
    let parts: Vec<&str> = rel.split('/').collect();
    let tail = parts[parts.len().saturating_sub(2)..].join("/");
    if map.contains(&format!("`{rel}`"))
        || map.contains(&format!("`src/{rel}`"))
        || (parts.len() > 1 && map.contains(&format!("`{tail}`")))
        || in_its_folders_section(&parts, map)
        || in_a_paragraph_on_its_folder(&parts, map)
    {
        return true;
    }
    let module = module_path(file);
    let Some((name, parent)) = module.split_last() else {
        return true; // lib.rs
    };
    parent_docs(parent).is_some_and(|docs| {
        docs.contains(&format!("`{name}`"))
            || docs.contains(&format!("`{name}.rs`"))
            || docs.contains(&format!("[`{name}`]"))
    })
}

/// `parts` = `a/b/c.rs`: a section whose heading names `a/b/` (or `a/b.rs`)
/// names `` `c.rs` `` in its text.
fn in_its_folders_section(parts: &[&str], map: &str) -> bool {
    let Some((file, dirs)) = parts.split_last() else {
        return false;
    };
    if dirs.is_empty() {
        return false;
    }
    let folder = format!("{}/", dirs.join("/"));
    let module = format!("{}.rs", dirs.join("/"));
    let mut sections = map.split("\n#").skip(1);
    sections.any(|section| {
        let (heading, body) = section.split_once('\n').unwrap_or((section, ""));
        (heading.contains(&format!("`src/{folder}"))
            || heading.contains(&format!("`src/{module}`")))
            && body.contains(&format!("`{file}`"))
    })
}

/// `parts` = `…/d/c.rs`: a paragraph that names the folder `` `d/` `` names
/// `` `c.rs` `` too.
fn in_a_paragraph_on_its_folder(parts: &[&str], map: &str) -> bool {
    let [.., dir, file] = parts else {
        return false;
    };
    let (dir, file) = (format!("`{dir}/`"), format!("`{file}`"));
    map.split("\n\n")
        .any(|p| p.contains(&dir) && p.contains(&file))
}

/// The `//!` lines of the module file that declares `parent`'s children:
/// `src/lib.rs` for the crate, else `src/P.rs` or `src/P/mod.rs`.
fn parent_docs(parent: &[String]) -> Option<String> {
    let base = src();
    let candidates = if parent.is_empty() {
        vec![base.join("lib.rs")]
    } else {
        let dir = parent.iter().fold(base.clone(), |p, s| p.join(s));
        vec![dir.with_extension("rs"), dir.join("mod.rs")]
    };
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())?;
    Some(
        text.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn every_source_file_is_named_in_the_code_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let missing: Vec<String> = sources(&src())
        .iter()
        .map(|(f, _)| f)
        .filter(|f| !named(f, &map))
        .map(|f| shown(f))
        .collect();
    assert!(
        missing.is_empty(),
        "not named in ARCHITECTURE.md's code map nor in the `//!` list of the module that declares them:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_code_map_check_finds_an_unnamed_file() {
    let file = src().join("registry").join("mlflow").join("unnamed.rs");
    assert!(!named(&file, "### `src/registry/`\n`other.rs`\n"));
    assert!(named(&file, "`registry/mlflow/unnamed.rs`"));
    assert!(named(&file, "`mlflow/unnamed.rs`"));
    assert!(named(&file, "`mlflow/` is split: `unnamed.rs`, `other.rs`"));
    assert!(!named(
        &file,
        "`mlflow/` is split: `other.rs`\n\n`unnamed.rs`"
    ));
    let top = src().join("registry").join("unnamed.rs");
    assert!(named(
        &top,
        "intro\n### `src/registry/`\nholds `unnamed.rs`\n"
    ));
    assert!(!named(&top, "intro\n### `src/plan/`\nholds `unnamed.rs`\n"));
}

//! `docs/security.md` is held to the code: every guarantee in its tables
//! names at least one test, and every test it names exists (a function of
//! that name in `src/` or `tests/integration/`, in the module the name
//! starts with).

use std::path::{Path, PathBuf};

use super::{lines_with_fences, root};

/// One guarantee row: its line (1-based), its text and the tests it names.
#[derive(Debug)]
struct Row {
    line: usize,
    guarantee: String,
    tests: Vec<String>,
}

/// The rows of every table whose header's last column is `test`.
fn guarantees(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for (i, (line, fenced)) in lines_with_fences(text).into_iter().enumerate() {
        let line = line.trim();
        if fenced || !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        if cells.last() == Some(&"test") {
            in_table = true;
            continue;
        }
        let separator = line.chars().all(|ch| matches!(ch, '|' | '-' | ':' | ' '));
        if !in_table || separator {
            continue;
        }
        let last = cells.last().copied().unwrap_or_default();
        let tests = last
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        rows.push(Row {
            line: i + 1,
            guarantee: cells[0].to_string(),
            tests,
        });
    }
    rows
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where a test named `first::…::name` may be: the integration test module
/// `first` (`tests/integration/first.rs` or `first/`) or the library
/// module `first` (`src/first.rs` or `src/first/`).
fn candidates(root: &Path, first: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for base in [root.join("tests/integration"), root.join("src")] {
        let file = base.join(format!("{first}.rs"));
        if file.exists() {
            files.push(file);
        }
        let dir = base.join(first);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    files
}

fn exists(root: &Path, test: &str) -> bool {
    let segments: Vec<&str> = test.split("::").collect();
    let (Some(first), Some(name)) = (segments.first(), segments.last()) else {
        return false;
    };
    let needle = format!("fn {name}(");
    candidates(root, first).iter().any(|f| {
        std::fs::read_to_string(f)
            .map(|t| t.contains(&needle) || t.contains(&format!("{name},")))
            .unwrap_or(false)
    })
}

#[test]
fn every_security_guarantee_names_a_test_that_exists() {
    let page = root().join("docs/security.md");
    let text = std::fs::read_to_string(&page).expect("docs/security.md");
    let rows = guarantees(&text);
    assert!(rows.len() >= 20, "found only {} guarantees", rows.len());
    let mut problems = Vec::new();
    for row in &rows {
        if row.tests.is_empty() {
            problems.push(format!(
                "docs/security.md:{}: \"{}\" names no test",
                row.line, row.guarantee
            ));
        }
        for test in &row.tests {
            if !exists(root(), test) {
                problems.push(format!(
                    "docs/security.md:{}: no test {test} (a function of that name in the module it starts with)",
                    row.line
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_security_check_finds_a_missing_test_and_a_row_without_one() {
    let text = "| guarantee | test |\n|---|---|\n| holds | `docs::security::nope_no_such_test` |\n| bare | none |\n";
    let rows = guarantees(text);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(!exists(root(), &rows[0].tests[0]));
    assert!(rows[1].tests.is_empty());
    assert!(exists(
        root(),
        "docs::security::every_security_guarantee_names_a_test_that_exists"
    ));
}

//! Architecture invariants checked on the source: the functional core
//! (`manifest/`, `state.rs`, `plan/`) does no I/O and has no async.

use std::path::Path;

const FORBIDDEN: [&str; 7] = [
    "std::fs", "tokio", "reqwest", "git2", "notify", "async fn", ".await",
];

fn check(path: &Path, offenders: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            let p = entry.expect("entry").path();
            // Test modules may read fixtures from disk.
            if p.file_name()
                .is_some_and(|n| n == "tests" || n == "tests.rs")
            {
                continue;
            }
            check(&p, offenders);
        }
        return;
    }
    if path.extension().is_none_or(|e| e != "rs") {
        return;
    }
    let text = std::fs::read_to_string(path).expect("read source");
    // Inline `#[cfg(test)]` modules come last in a file; only the code
    // before them is checked.
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    for word in FORBIDDEN {
        if code.contains(word) {
            offenders.push(format!("{}: uses {word}", path.display()));
        }
    }
}

#[test]
fn the_core_does_no_io_and_has_no_async() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for part in ["manifest", "plan", "state.rs"] {
        check(&root.join(part), &mut offenders);
    }
    assert!(
        offenders.is_empty(),
        "the core must stay pure:\n{}",
        offenders.join("\n")
    );
}

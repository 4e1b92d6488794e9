//! The examples and docs stay true: the GitHub Actions workflow passes
//! actionlint (which also runs ShellCheck on its `run:` scripts and knows
//! which action versions GitHub's runners no longer run), and code docs cite
//! only documents the repository holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Installs (once) actionlint and ShellCheck (`scripts/ensure-actionlint.sh`);
/// returns the directory holding both.
fn ensure_actionlint() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/ensure-actionlint.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}); actionlint is needed for this test",
        script.display(),
        out.status
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn github_actions_example_passes_actionlint() {
    let bin = ensure_actionlint();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    let out = Command::new(bin.join("actionlint"))
        .args(["-no-color", "examples/ci/github-actions.yml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // ShellCheck from the same venv checks the `run:` scripts.
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .output()
        .expect("run actionlint");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "actionlint reports problems in examples/ci/github-actions.yml ({}):\n{report}",
        out.status
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn code_docs_cite_only_documents_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    files.extend(crate::docs::markdown_files(root));
    // Design notes kept outside the repository (spelled so that this file
    // does not match itself).
    let outside = [["DESIGN", ".md"].concat(), ["MLFLOW", ".md"].concat()];
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let at = format!(
                "{}:{}",
                file.strip_prefix(root).unwrap_or(file).display(),
                n + 1
            );
            for name in &outside {
                if line.contains(name.as_str()) {
                    problems.push(format!(
                        "{at}: cites {name}, which is not in the repository"
                    ));
                }
            }
            for (i, _) in line.match_indices("docs/") {
                let cited: String = line[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
                    .collect();
                let pending = crate::docs::PENDING.contains(&cited.as_str());
                if cited.ends_with(".md") && !pending && !root.join(&cited).is_file() {
                    problems.push(format!("{at}: cites {cited}, which does not exist"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

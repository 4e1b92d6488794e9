//! The CI examples stay runnable: the GitHub Actions workflow passes
//! actionlint (which also runs ShellCheck on its `run:` scripts and knows
//! which action versions GitHub's runners no longer run).

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

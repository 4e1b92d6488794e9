//! The pre-commit hook (`.pre-commit-hooks.yaml`, `modelsync-validate`):
//! pre-commit installs it as it installs any `language: python` hook —
//! `pip install .` of this repository, which maturin builds from source —
//! and runs it on a valid manifest (passes) and a broken one (fails, naming
//! file:line:column). This is `pre-commit try-repo` of the working tree,
//! spelled as the configuration `try-repo` writes (a `repos:` entry with the
//! repository and its commit): `try-repo` keeps its environments in a
//! throw-away store, so each of its runs would build the crate again.
//!
//! pre-commit (PyPI) comes from `scripts/ensure-pytool.sh pre-commit`. The
//! build runs offline: pip finds maturin in the wheelhouse of
//! `scripts/ensure-pytool.sh maturin`, and cargo reuses the dependencies
//! this test binary's build directory already holds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{root, script, target_dir};
use crate::harness_note;
use crate::support::cli::Run;

/// A manifest with one problem, at line 1, column 13.
const BROKEN: &str = "apiVersion: modelsync/v2\nkind: RegisteredModel\nmetadata:\n  name: b\n";

const VALID: &str = "\
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: hook-model
spec:
  versions:
    a: {source: \"s3://bucket/hook-model/a\"}
  stages: {Production: a}
";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=modelsync tests",
            "-c",
            "user.email=tests@modelsync.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One commit holding this checkout's files as they are now (tracked and
/// new, less what .gitignore excludes), so the hook under test is the
/// working tree's, and one install serves every run.
fn snapshot(into: &Path) -> PathBuf {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    assert!(
        listed.status.success(),
        "the repository must be a git checkout"
    );
    let repo = into.join("modelsync");
    for rel in listed.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = String::from_utf8_lossy(rel).into_owned();
        let from = root().join(&rel);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = repo.join(&rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {rel}: {e}"));
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "snapshot"]);
    repo
}

#[test]
fn the_pre_commit_hook_passes_valid_manifests_and_names_the_broken_line() {
    let pre_commit = PathBuf::from(script("ensure-pytool.sh", &["pre-commit"])).join("pre-commit");
    let maturin_bin = PathBuf::from(script("ensure-pytool.sh", &["maturin"]));
    let wheelhouse = maturin_bin.parent().expect("venv").join("wheelhouse");
    let tmp = tempfile::tempdir().expect("tempdir");
    let hook_repo = snapshot(tmp.path());
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("manifests")).expect("mkdir");
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("manifests/model.yaml"), VALID).expect("write");
    std::fs::write(work.join("manifests/broken.yaml"), BROKEN).expect("write");

    let rev = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&hook_repo)
        .output()
        .expect("git rev-parse");
    let config = format!(
        "repos:\n  - repo: {}\n    rev: {}\n    hooks:\n      - id: modelsync-validate\n",
        hook_repo.display(),
        String::from_utf8_lossy(&rev.stdout).trim()
    );
    std::fs::write(work.join(".pre-commit-config.yaml"), config).expect("write");
    // pre-commit refuses a configuration that is not staged.
    git(&work, &["add", ".pre-commit-config.yaml"]);
    let run_hook = |file: &str| {
        Run::from_command(
            // The hook's build is a release compile of the crate: niced, so
            // the tests running beside it keep their share of the CPU.
            Command::new("nice")
                .args(["-n", "15"])
                .arg(&pre_commit)
                .args([
                    "run",
                    "modelsync-validate",
                    "--color",
                    "never",
                    "--files",
                    file,
                ])
                .current_dir(&work)
                .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"))
                // pip builds the hook offline: maturin from the wheelhouse.
                .env("PIP_NO_INDEX", "1")
                .env("PIP_FIND_LINKS", &wheelhouse)
                .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
                .env("CARGO_TARGET_DIR", target_dir())
                .env("NO_COLOR", "1"),
        )
    };
    let started = Instant::now();
    let ok = run_hook("manifests/model.yaml");
    harness_note!(
        "harness: pre-commit installed and ran the hook in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ok.code, 0, "a valid manifest passes: {ok:?}");
    assert!(ok.stdout.contains("modelsync validate"), "{ok:?}");
    assert!(ok.stdout.contains("Passed"), "{ok:?}");

    let bad = run_hook("manifests/broken.yaml");
    assert_eq!(bad.code, 1, "a broken manifest fails: {bad:?}");
    assert!(bad.stdout.contains("Failed"), "{bad:?}");
    assert!(
        bad.stdout.contains("manifests/broken.yaml:1:13"),
        "file:line:column of the problem: {bad:?}"
    );
}

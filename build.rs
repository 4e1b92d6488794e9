//! Build script: records the git commit the binary is built from, for
//! `modelsync --version` (`MODELSYNC_GIT_COMMIT`, read by `src/main.rs`).
//!
//! Where it comes from, first found wins:
//! 1. `git rev-parse HEAD`, when the crate's own folder is the top of a git
//!    checkout (never the commit of some repository the crate happens to
//!    sit in, such as a home directory kept in git);
//! 2. the `MODELSYNC_GIT_COMMIT` environment variable, which builds without
//!    a checkout set (the Dockerfile's build argument, a release job);
//! 3. `.cargo_vcs_info.json`, which `cargo package` writes into the crate
//!    it publishes (so `cargo install modelsync` knows its commit too);
//! 4. `unknown`.
//!
//! It never fails the build: without git, or outside a checkout, it falls
//! through to the next source.

use std::path::{Path, PathBuf};
use std::process::Command;

const VAR: &str = "MODELSYNC_GIT_COMMIT";

fn main() {
    println!("cargo::rerun-if-env-changed={VAR}");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_git(&dir)
        .or_else(from_env)
        .or_else(|| from_vcs_info(&dir))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo::rustc-env={VAR}={commit}");
}

/// `git rev-parse HEAD` of the checkout whose top is `dir`; watches the
/// files that change when HEAD moves, so a new commit re-runs this script.
fn from_git(dir: &Path) -> Option<String> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let head = git(dir, &["rev-parse", "--verify", "HEAD"]).filter(|h| is_sha(h))?;
    let mut watched = vec!["HEAD".to_string(), "logs/HEAD".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }
    Some(head)
}

fn from_env() -> Option<String> {
    std::env::var(VAR)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| is_sha(v))
}

/// The `"sha1"` of the `.cargo_vcs_info.json` that `cargo package` writes.
fn from_vcs_info(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let rest = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let value = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let sha = &value[..value.find('"')?];
    is_sha(sha).then(|| sha.to_string())
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// A full hexadecimal object name (SHA-1 or SHA-256).
fn is_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

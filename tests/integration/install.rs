//! Issue 22: modelsync installed the ways ML teams install tools. The wheel
//! (`scripts/build-wheel.sh`, maturin) is pip-installed, offline from the
//! file, into a fresh virtualenv whose PATH holds no Rust; that venv's
//! `modelsync` and `python -m modelsync` name the version and the commit,
//! run the quickstart to convergence on the embedded registry and plan
//! against the suite's real MLflow server; the installed binary links only
//! base libraries. `precommit.rs`: the pre-commit hook; `lint.rs`:
//! actionlint on the action and the workflows, hadolint on the Dockerfile;
//! `package.rs`: what `cargo package` would publish; `https_git.rs`: the
//! git source over HTTPS with the TLS the binary links in.
//!
//! The wheel is built once per run: `scripts/test.sh` builds it before
//! `cargo test` and names it in `MODELSYNC_WHEEL`; without that variable the
//! first test here builds it (never skips).

mod https_git;
mod lint;
mod package;
mod precommit;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::harness_note;
use crate::support::cli::Run;
use crate::support::mlflow::{server, unique};

/// The repository.
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The build directory `cargo test` uses (the wheel's and the hook's
/// builds reuse its compiled dependencies).
pub(crate) fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .to_path_buf()
}

/// Runs a project script (`scripts/NAME ARGS`) and returns its stdout's
/// last line; panics with its status when it fails.
pub(crate) fn script(name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts").join(name))
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target_dir())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{name}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{name} {args:?} failed ({})",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

/// The wheel of this checkout: `$MODELSYNC_WHEEL` (built by
/// `scripts/test.sh`), else built now by `scripts/build-wheel.sh`.
pub(crate) fn wheel() -> &'static Path {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL.get_or_init(|| {
        if let Some(path) = std::env::var_os("MODELSYNC_WHEEL") {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "MODELSYNC_WHEEL={} is no file",
                path.display()
            );
            return path;
        }
        let started = Instant::now();
        let path = PathBuf::from(script("build-wheel.sh", &[]));
        harness_note!(
            "harness: built {} in {:.0} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
        path
    })
}

/// A virtualenv with the wheel installed, shared by this module's tests.
pub(crate) struct Installed {
    /// The venv's `bin` directory.
    pub bin: PathBuf,
}

impl Installed {
    /// A command run from the venv only: its `bin` first on a PATH of the
    /// system's own directories, none of which holds a Rust toolchain.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("NO_COLOR", "1")
            .env_remove("MODELSYNC_REGISTRY")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("RUST_LOG");
        cmd
    }
}

/// `python3 -m venv`, then `pip install` of the wheel file, offline.
pub(crate) fn installed() -> &'static Installed {
    static VENV: OnceLock<Installed> = OnceLock::new();
    VENV.get_or_init(|| {
        let wheel = wheel();
        // Under the target directory, not /tmp: a static is never dropped,
        // so a temp dir here would outlive every run (53 MB each).
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-venv");
        if venv.exists() {
            std::fs::remove_dir_all(&venv).expect("remove the last run's venv");
        }
        let started = Instant::now();
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("run python3 -m venv");
        assert!(made.success(), "python3 -m venv failed: {made}");
        let bin = venv.join("bin");
        let rustless = format!("{}:/usr/bin:/bin", bin.display());
        let pip = Run::from_command(
            Command::new(bin.join("pip"))
                .args(["install", "--no-index", "--disable-pip-version-check"])
                .arg(wheel)
                .env("PATH", &rustless)
                .env_remove("PIP_FIND_LINKS"),
        );
        assert_eq!(pip.code, 0, "pip install {}: {pip:?}", wheel.display());
        harness_note!(
            "harness: pip-installed the wheel into a fresh venv in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Installed { bin }
    })
}

/// The commit `build.rs` records for this checkout (`unknown` outside git).
fn head_commit() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "unknown".to_string(),
    }
}

#[test]
fn version_names_the_commit_the_binary_was_built_from() {
    let out = crate::support::cli::bin()
        .arg("--version")
        .output()
        .expect("run modelsync --version");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "modelsync {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            head_commit()
        )
    );
}

#[test]
fn the_installed_binary_and_python_m_print_the_version_and_commit() {
    let venv = installed();
    let expected = format!(
        "modelsync {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        head_commit()
    );
    for (program, args) in [
        ("modelsync", &["--version"][..]),
        ("python", &["-m", "modelsync", "--version"]),
    ] {
        let run = Run::from_command(venv.command(program).args(args));
        assert_eq!(run.code, 0, "{program} {args:?}: {run:?}");
        assert_eq!(run.stdout.trim(), expected, "{program} {args:?}: {run:?}");
    }
    // python -m passes arguments, streams and the exit code through.
    let run = Run::from_command(venv.command("python").args(["-m", "modelsync", "plna"]));
    assert_eq!(run.code, 1, "a usage error: {run:?}");
    assert!(run.stderr.contains("plna"), "{run:?}");
    // No Rust toolchain on the PATH these commands ran with.
    let which = venv
        .command("python")
        .args([
            "-c",
            "import shutil; print(shutil.which('cargo') or shutil.which('rustc') or '')",
        ])
        .output()
        .expect("python");
    assert!(String::from_utf8_lossy(&which.stdout).trim().is_empty());
}

#[test]
fn the_installed_binary_runs_the_quickstart_to_convergence() {
    let venv = installed();
    let work = tempfile::tempdir().expect("tempdir");
    let registry = format!("file:{}", work.path().join("registry.json").display());
    let manifests = root().join("examples/quickstart/manifests");
    let run = |args: &[&str]| {
        Run::from_command(
            venv.command("modelsync")
                .current_dir(work.path())
                .arg("--registry")
                .arg(&registry)
                .args(args)
                .arg(&manifests),
        )
    };
    let apply = run(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(apply.stdout.contains("fraud-detector"), "{apply:?}");
    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "converged, no changes: {plan:?}");
}

#[test]
fn the_installed_binary_plans_against_the_real_mlflow_server() {
    let venv = installed();
    let mlflow = server();
    let work = tempfile::tempdir().expect("tempdir");
    // The quickstart, under a name no other test uses on the shared server.
    let name = unique("wheel-quickstart");
    let text =
        std::fs::read_to_string(root().join("examples/quickstart/manifests/fraud-detector.yaml"))
            .expect("read the quickstart")
            .replace("fraud-detector", &name);
    std::fs::write(work.path().join("quickstart.yaml"), text).expect("write");
    let run = Run::from_command(
        venv.command("modelsync")
            .current_dir(work.path())
            .env("MLFLOW_TRACKING_URI", &mlflow.url)
            .args(["plan", "quickstart.yaml", "--detailed-exitcode"]),
    );
    assert_eq!(run.code, 2, "changes to make on MLflow: {run:?}");
    // Exit 2, not 3: the server answered, and the plan names the model.
    assert!(run.stdout.contains(&name), "{run:?}");
}

/// What a binary may link on a manylinux platform: glibc's own libraries,
/// the dynamic loader, the kernel's vDSO and libgcc's unwinder.
const BASE_LIBRARIES: &[&str] = &[
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libgcc_s.so.1",
];

#[test]
fn the_installed_binary_links_only_base_libraries() {
    let venv = installed();
    let ldd = Command::new("ldd")
        .arg(venv.bin.join("modelsync"))
        .output()
        .expect("run ldd");
    let report = String::from_utf8_lossy(&ldd.stdout).into_owned();
    assert!(ldd.status.success(), "ldd failed: {report}");
    harness_note!("harness: ldd of the installed modelsync:\n{report}");
    let linked: Vec<&str> = report
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(linked.iter().any(|l| l.starts_with("libc.so")), "{report}");
    let others: Vec<&&str> = linked
        .iter()
        .filter(|l| {
            let name = Path::new(l)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(l);
            !BASE_LIBRARIES.contains(&name)
        })
        .collect();
    assert!(
        others.is_empty(),
        "links more than base libraries: {others:?}\n{report}"
    );
}

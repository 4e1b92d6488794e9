//! Runs the built `modelsync` binary in a temporary directory with its own
//! embedded registry file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The applier lease's TTL for every command of the suite: long, so that
/// an apply keeps its lease on a loaded CI machine where one MLflow request
/// can take more than ten seconds (the default 30 s could not be renewed in
/// time there). Only the tests of the lease's expiry and take-over set a
/// shorter one, after [`Workdir::command`] (the later `env` wins).
pub const LEASE_TTL: &str = "300s";

/// A temporary working directory with a registry file.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

/// What a run printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to completion.
    pub fn from_command(cmd: &mut Command) -> Run {
        Run::from(cmd.output().expect("run modelsync"))
    }

    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The embedded registry file.
    pub fn registry_file(&self) -> PathBuf {
        self.path().join("registry.json")
    }

    /// `file:<registry file>`.
    pub fn registry_uri(&self) -> String {
        format!("file:{}", self.registry_file().display())
    }

    /// Writes a file relative to the workdir (creating folders).
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        p
    }

    /// A command for the binary in the workdir, against the workdir's
    /// registry, with a clean environment for registry selection, and the
    /// applier lease's TTL at [`LEASE_TTL`].
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.current_dir(self.path())
            .env("MODELSYNC_REGISTRY", self.registry_uri())
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            // Tests share one MLflow server: one applier lease per workdir.
            .env("MODELSYNC_LEASE_MODEL", self.lease_name())
            // And one freeze each (`modelsync freeze`).
            .env(
                "MODELSYNC_FREEZE_MODEL",
                self.lease_name().replacen("lease-", "freeze-", 1),
            )
            .env("MODELSYNC_LEASE_TTL", LEASE_TTL)
            .args(args);
        cmd
    }

    /// The lease model of this workdir's appliers.
    pub fn lease_name(&self) -> String {
        let dir = self
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        format!("lease-{}", dir.unwrap_or_default().trim_start_matches('.'))
    }

    /// Runs the binary and waits.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run modelsync"))
    }
}

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modelsync"))
}

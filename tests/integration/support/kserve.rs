//! KServe's own storage downloader (`kserve-storage`, the library KServe's
//! storage initializer runs on an InferenceService's `storageUri`),
//! installed by `scripts/ensure-kserve-storage.sh` into its own virtualenv
//! (under `$MODELSYNC_VENV_DIR`, like MLflow's), once per test binary; and
//! an independent implementation of the digest (Python's `hashlib`) to
//! recompute it over what KServe wrote. If the install fails, every test
//! using it fails loudly: nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The virtualenv's `bin` directory.
pub fn bin() -> &'static Path {
    let got = BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join("scripts/ensure-kserve-storage.sh");
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed ({})", script.display(), out.status));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match got {
        Ok(p) => p,
        Err(why) => panic!("KServe's storage downloader is not available:\n{why}"),
    }
}

/// Runs `code` with the virtualenv's Python and `env`; its stdout.
fn python(code: &str, env: &[(String, String)]) -> String {
    let out = Command::new(bin().join("python"))
        .arg("-c")
        .arg(code)
        .env("PYTHONWARNINGS", "ignore")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run kserve-storage's python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Downloads `uri` into `out` with `kserve_storage.Storage.download`, as
/// KServe's storage initializer does (S3: `AWS_ENDPOINT_URL` and AWS's
/// credentials in `env`).
pub fn download(uri: &str, out: &Path, env: &[(String, String)]) {
    python(
        &format!(
            "from kserve_storage import Storage\nStorage.download({uri:?}, {:?})\n",
            out.display().to_string()
        ),
        env,
    );
}

/// The digest of the tree under `root` as `docs/serving.md` defines it,
/// computed by Python (following links: KServe links local files).
pub fn digest(root: &Path) -> String {
    let code = format!(
        r#"
import hashlib, os
root = {root:?}
lines = []
for d, _, names in os.walk(root, followlinks=True):
    for n in names:
        p = os.path.join(d, n)
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                h.update(chunk)
        rel = os.path.relpath(p, root).encode()
        lines.append((rel, b"%s %d %s\n" % (h.hexdigest().encode(), os.path.getsize(p), rel)))
lines.sort()
print("sha256:" + hashlib.sha256(b"".join(l for _, l in lines)).hexdigest())
"#,
        root = root.display().to_string()
    );
    python(&code, &[]).trim().to_string()
}

//! `modelsync watch` end to end: the built binary as a daemon, against a
//! registry given by URI. Each scenario is a function of the registry under
//! test ([`Target`]), so the MLflow harness can run the same scenarios; the
//! `#[test]`s at the bottom run them against the embedded registry.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cli::{Workdir, bin};
use crate::support::daemon::Daemon;
use crate::support::git::GitRepo;

/// The registry under test and a model-name prefix unique to the scenario
/// (a shared MLflow server holds every scenario's models).
pub struct Target {
    pub uri: String,
    pub prefix: String,
    /// Models in the SIGTERM scenario (enough for a run to be under way).
    pub many: usize,
}

/// A model with versions 1 and 2 declared by source; `champion` and
/// Production on `holder` (1 or 2).
fn manifest(name: &str, holder: u32) -> String {
    format!(
        r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: {name}
spec:
  description: watched model
  versions:
    v1:
      source: s3://bucket/{name}/1
    v2:
      source: s3://bucket/{name}/2
  stages:
    Production: v{holder}
  aliases:
    champion: v{holder}
"#
    )
}

/// A manifest with an error on line 7 (an unknown field).
fn broken(name: &str) -> String {
    format!(
        r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: {name}
spec:
  versions:
    v1: {{source: s3://bucket/{name}/1, colour: red}}
"#
    )
}

const WAIT: Duration = Duration::from_secs(90);

fn watch_cmd(w: &Workdir, t: &Target, args: &[&str]) -> Command {
    let mut cmd = w.command(&["watch"]);
    cmd.args(["--registry", &t.uri]).args(args);
    cmd
}

/// `modelsync get MODEL --alias champion --format json`, or None if absent.
fn champion(w: &Workdir, t: &Target, model: &str) -> Option<serde_json::Value> {
    let run = w.run(&[
        "get",
        model,
        "--alias",
        "champion",
        "--format",
        "json",
        "--registry",
        &t.uri,
    ]);
    (run.code == 0).then(|| serde_json::from_str(&run.stdout).expect("get json"))
}

fn wait_champion(w: &Workdir, t: &Target, model: &str, version: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(v) = champion(w, t, model).filter(|v| v["version"] == version) {
            return v;
        }
        assert!(
            start.elapsed() < WAIT,
            "{model}@champion never became {version}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn applied(s: &serde_json::Value) -> bool {
    // `reconciles` is counted together with the metrics, after the revision.
    s["last_applied_revision"].is_string() && s["reconciles"].as_u64().unwrap_or(0) >= 1
}

// ---- scenarios -------------------------------------------------------------

pub fn folder_watch_applies_an_edit(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}churn", t.prefix);
    w.write("m/churn.yaml", &manifest(&model, 1));
    let mut d = Daemon::start(watch_cmd(&w, t, &["m", "--debounce", "100ms"]));
    assert_eq!(d.get("/healthz").status, 200);
    d.wait_status("first reconcile", WAIT, applied);
    assert_eq!(d.get("/readyz").status, 200);
    wait_champion(&w, t, &model, "1");

    let edited = Instant::now();
    w.write("m/churn.yaml", &manifest(&model, 2));
    let v = wait_champion(&w, t, &model, "2");
    eprintln!("folder edit -> applied: {:?}", edited.elapsed());
    assert_eq!(v["current_stage"], "Production");
    let s = d.status();
    assert!(s["last_error"].is_null(), "{s:#}");
    assert!(
        s["last_actions"].as_array().is_some_and(|a| !a.is_empty()),
        "{s:#}"
    );
    assert_eq!(d.terminate(Duration::from_secs(120)), 0);
}

pub fn a_burst_of_writes_is_a_bounded_number_of_reconciles(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}burst", t.prefix);
    w.write("m/burst.yaml", &manifest(&model, 1));
    let mut d = Daemon::start(watch_cmd(&w, t, &["m"]));
    d.wait_status("first reconcile", WAIT, applied);
    let before = d.reconciles(None);
    for i in 0..20 {
        w.write("m/burst.yaml", &manifest(&model, 1 + (i % 2)));
        std::thread::sleep(Duration::from_millis(10));
    }
    w.write("m/burst.yaml", &manifest(&model, 2));
    wait_champion(&w, t, &model, "2");
    std::thread::sleep(Duration::from_millis(1000));
    let runs = d.reconciles(None) - before;
    assert!(
        (1..=3).contains(&runs),
        "20 writes caused {runs} reconciles"
    );
}

pub fn git_watch_applies_pushes_rejects_invalid_and_recovers(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}gitmodel", t.prefix);
    let repo = GitRepo::new(w.path());
    let c1 = repo.push("manifests/model.yaml", &manifest(&model, 1));
    let cache = w.path().join("cache");
    let mut d = Daemon::start(watch_cmd(
        &w,
        t,
        &[
            "--git",
            &repo.url,
            "--branch",
            "main",
            "--path",
            "manifests",
            "--interval",
            "1s",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
    ));
    let s = d.wait_status("first commit applied", WAIT, |s| {
        s["last_applied_revision"] == c1
    });
    assert!(
        s["source"]
            .as_str()
            .is_some_and(|x| x.contains("@main:manifests")),
        "{s:#}"
    );
    let v = wait_champion(&w, t, &model, "1");
    assert!(
        v["tags"]["modelsync.promoted-at.champion"]
            .as_str()
            .is_some_and(|s| s.ends_with(&format!(" revision={c1}"))),
        "audit tag: {v:#}"
    );

    // An invalid manifest: nothing written, the error names file and line.
    let file = t.uri.strip_prefix("file:").map(std::path::PathBuf::from);
    let before = file
        .as_ref()
        .map(|f| std::fs::read(f).expect("registry file"));
    let bad = repo.push("manifests/model.yaml", &broken(&model));
    let s = d.wait_status("invalid commit reported", WAIT, |s| {
        s["last_attempted_revision"] == bad
    });
    assert_eq!(s["last_applied_revision"], c1, "{s:#}");
    assert_eq!(s["last_error"]["kind"], "invalid", "{s:#}");
    let diags = s["last_error"]["diagnostics"].to_string();
    assert!(diags.contains("manifests/model.yaml:7:"), "{s:#}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        d.reconciles(Some("invalid")),
        1,
        "an invalid revision is not retried"
    );
    if let Some(f) = &file {
        assert_eq!(
            Some(std::fs::read(f).expect("registry file")),
            before,
            "nothing written"
        );
    }
    assert_eq!(champion(&w, t, &model).expect("champion")["version"], "1");

    // A fix recovers, within about one interval.
    let pushed = Instant::now();
    let fix = repo.push("manifests/model.yaml", &manifest(&model, 2));
    d.wait_status("fix applied", WAIT, |s| s["last_applied_revision"] == fix);
    eprintln!(
        "git push -> applied (--interval 1s): {:?}",
        pushed.elapsed()
    );
    let s = d.status();
    assert!(s["last_error"].is_null(), "{s:#}");
    let v = wait_champion(&w, t, &model, "2");
    assert!(
        v["tags"]["modelsync.promoted-at.champion"]
            .as_str()
            .is_some_and(|s| s.ends_with(&format!(" revision={fix}"))),
        "audit tag: {v:#}"
    );
}

pub fn drift_is_healed_at_resync(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}healed", t.prefix);
    w.write("m/model.yaml", &manifest(&model, 2));
    let mut d = Daemon::start(watch_cmd(&w, t, &["m", "--resync", "1s"]));
    d.wait_status("first reconcile", WAIT, applied);
    wait_champion(&w, t, &model, "2");
    hand_change(&w, t, &model);
    wait_champion(&w, t, &model, "2");
    assert_eq!(d.status()["pending_drift"]["count"], 0);
}

pub fn drift_is_reported_not_repaired_in_warn_mode(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}warned", t.prefix);
    w.write("m/model.yaml", &manifest(&model, 2));
    let mut d = Daemon::start(watch_cmd(
        &w,
        t,
        &["m", "--resync", "1s", "--drift", "warn"],
    ));
    d.wait_status("first reconcile", WAIT, applied);
    wait_champion(&w, t, &model, "2");
    hand_change(&w, t, &model);
    let s = d.wait_status("drift reported", WAIT, |s| {
        s["pending_drift"]["count"].as_u64() > Some(0)
    });
    assert!(
        s["pending_drift"]["actions"]
            .to_string()
            .contains("champion"),
        "{s:#}"
    );
    let metrics = d.get("/metrics").body;
    assert!(
        !metrics.contains("modelsync_drift_detected 0\n"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        champion(&w, t, &model).expect("champion")["version"],
        "1",
        "left alone"
    );
    // A new revision is still applied.
    w.write(
        "m/model.yaml",
        &manifest(&model, 2).replace("watched model", "edited"),
    );
    wait_champion(&w, t, &model, "2");
}

/// Points `champion` at version 1 by hand (a separate `apply`).
fn hand_change(w: &Workdir, t: &Target, model: &str) {
    let doc = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {model}\nspec:\n  versions:\n    v1:\n      source: s3://bucket/{model}/1\n  aliases:\n    champion: v1\n"
    );
    w.write("hand/model.yaml", &doc);
    let run = w.run(&["apply", "hand", "--registry", &t.uri]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(champion(w, t, model).expect("champion")["version"], "1");
}

pub fn webhook_needs_a_valid_signature(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}hooked", t.prefix);
    let repo = GitRepo::new(w.path());
    let c1 = repo.push("model.yaml", &manifest(&model, 1));
    let cache = w.path().join("cache");
    let mut cmd = watch_cmd(
        &w,
        t,
        &[
            "--git",
            &repo.url,
            "--interval",
            "1h",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
            "--webhook-secret-env",
            "HOOK_SECRET",
        ],
    );
    cmd.env("HOOK_SECRET", "s3cret");
    let mut d = Daemon::start(cmd);
    d.wait_status("first commit", WAIT, |s| s["last_applied_revision"] == c1);
    let c2 = repo.push("model.yaml", &manifest(&model, 2));
    let body = br#"{"ref":"refs/heads/main"}"#;
    assert_eq!(d.post("/hooks/git", &[], body).status, 401);
    let wrong = modelsync::watch::http::sign(b"other", body);
    assert_eq!(
        d.post("/hooks/git", &[("X-Hub-Signature-256", &wrong)], body)
            .status,
        401
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.status()["last_applied_revision"],
        c1,
        "rejected hooks fetch nothing"
    );
    let good = modelsync::watch::http::sign(b"s3cret", body);
    let sent = Instant::now();
    assert_eq!(
        d.post("/hooks/git", &[("X-Hub-Signature-256", &good)], body)
            .status,
        202
    );
    d.wait_status("pushed commit", WAIT, |s| s["last_applied_revision"] == c2);
    eprintln!("webhook -> applied: {:?}", sent.elapsed());
}

pub fn metrics_are_prometheus_text(t: &Target) {
    let w = Workdir::new();
    w.write("m/a.yaml", &manifest(&format!("{}metered", t.prefix), 1));
    let mut d = Daemon::start(watch_cmd(&w, t, &["m"]));
    d.wait_status("first reconcile", WAIT, applied);
    let r = d.get("/metrics");
    assert_eq!(r.status, 200);
    check_prometheus(&r.body);
    for family in [
        "modelsync_reconciles_total{outcome=\"success\"} 1",
        "modelsync_reconcile_duration_seconds_count 1",
        "modelsync_last_success_timestamp_seconds ",
        "modelsync_drift_detected 0",
        "modelsync_actions_applied_total{kind=\"set_alias\"} 1",
        "modelsync_registry_requests_total ",
        "modelsync_registry_errors_total ",
        "modelsync_applied_revision_info{revision=\"sha256:",
    ] {
        assert!(
            r.body.contains(family),
            "missing {family:?} in:\n{}",
            r.body
        );
    }
}

/// Checks the exposition format line by line: HELP/TYPE comments, then
/// `name{label="value",...} number` samples of a declared family.
fn check_prometheus(text: &str) {
    let mut families = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            families.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "value in {line:?}"
        );
        let name = series.split('{').next().expect("name");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "metric name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .expect("{labels}");
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.trim_end_matches('"').contains('\n'), "{line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| families.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            families.contains_key(family),
            "sample before its # TYPE: {line}"
        );
    }
}

pub fn sigterm_during_a_run_exits_0_and_leaves_the_registry_consistent(t: &Target) {
    let w = Workdir::new();
    for i in 0..t.many {
        w.write(
            &format!("m/model{i:03}.yaml"),
            &manifest(&format!("{}many{i:03}", t.prefix), 2),
        );
    }
    let mut d = Daemon::start(watch_cmd(&w, t, &["m", "--concurrency", "2"]));
    let code = d.terminate(Duration::from_secs(120));
    assert_eq!(code, 0, "{}", d.logs().join("\n"));
    let logs = d.logs().join("\n");
    assert!(logs.contains("shutting down"), "{logs}");
    // The reconcile that was running finished (and was logged), not dropped.
    assert!(logs.contains("\"message\":\"reconcile "), "{logs}");
    // Consistent: readable, and an apply converges from whatever was done.
    let run = w.run(&["plan", "m", "--registry", &t.uri]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = w.run(&["apply", "m", "--registry", &t.uri]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = w.run(&["plan", "m", "--detailed-exitcode", "--registry", &t.uri]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// `watch --once` on SIGTERM does what `apply` does: finishes the model in
/// flight, starts no other, releases the lease and exits 1 (not 143).
pub fn once_on_sigterm_releases_the_lease_and_exits_1(t: &Target) {
    let w = Workdir::new();
    for i in 0..t.many {
        w.write(
            &format!("m/model{i:03}.yaml"),
            &manifest(&format!("{}once{i:03}", t.prefix), 2),
        );
    }
    let mut cmd = watch_cmd(&w, t, &["m", "--once", "--concurrency", "2"]);
    cmd.args(["--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start watch --once");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
    let mut lines = std::io::BufRead::lines(stderr);
    let mut logs = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("stderr");
        let applying = line.contains("\"message\":\"applied\"");
        logs.push(line);
        if applying {
            break;
        }
    }
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success());
    logs.extend(lines.map_while(Result::ok));
    let code = child.wait().expect("wait").code();
    let logs = logs.join("\n");
    assert_eq!(code, Some(1), "{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    // The lease was released: the next apply converges at once.
    let run = w.run(&["apply", "m", "--registry", &t.uri]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = w.run(&["plan", "m", "--detailed-exitcode", "--registry", &t.uri]);
    assert_eq!(run.code, 0, "{run:?}");
}

pub fn once_exits_with_apply_codes(t: &Target) {
    let w = Workdir::new();
    let model = format!("{}oneshot", t.prefix);
    w.write("m/a.yaml", &manifest(&model, 1));
    let run = run_cmd(watch_cmd(&w, t, &["m", "--once"]));
    assert_eq!(run.0, 0, "{}", run.1);
    assert_eq!(champion(&w, t, &model).expect("applied")["version"], "1");
    w.write("m/a.yaml", &broken(&model));
    let run = run_cmd(watch_cmd(&w, t, &["m", "--once"]));
    assert_eq!(run.0, 1, "{}", run.1);
    assert!(run.1.contains("m/a.yaml:7:"), "{}", run.1);
}

// ---- helpers ---------------------------------------------------------------

/// Runs to completion; exit code and stdout + stderr.
fn run_cmd(mut cmd: Command) -> (i32, String) {
    let out = cmd.output().expect("run modelsync");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

// ---- the embedded registry -------------------------------------------------

mod embedded {
    use super::*;

    /// The embedded registry of a fresh temp dir (each test its own file).
    fn target() -> (tempfile::TempDir, Target) {
        let dir = tempfile::tempdir().expect("tempdir");
        let uri = format!("file:{}", dir.path().join("registry.json").display());
        (
            dir,
            Target {
                uri,
                prefix: String::new(),
                many: 300,
            },
        )
    }

    macro_rules! scenarios {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                let (_dir, t) = target();
                super::$name(&t);
            }
        )*};
    }

    scenarios!(
        folder_watch_applies_an_edit,
        a_burst_of_writes_is_a_bounded_number_of_reconciles,
        git_watch_applies_pushes_rejects_invalid_and_recovers,
        drift_is_healed_at_resync,
        drift_is_reported_not_repaired_in_warn_mode,
        webhook_needs_a_valid_signature,
        metrics_are_prometheus_text,
        sigterm_during_a_run_exits_0_and_leaves_the_registry_consistent,
        once_exits_with_apply_codes,
        once_on_sigterm_releases_the_lease_and_exits_1,
    );
}

// ---- the real MLflow server of the harness ---------------------------------

mod mlflow {
    use crate::support::mlflow::{server, unique};

    fn target(scenario: &str) -> super::Target {
        super::Target {
            uri: server().url.clone(),
            prefix: format!("{}-", unique(&format!("watch-{scenario}"))),
            many: 40,
        }
    }

    macro_rules! scenarios {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                super::$name(&target(stringify!($name)));
            }
        )*};
    }

    scenarios!(
        folder_watch_applies_an_edit,
        git_watch_applies_pushes_rejects_invalid_and_recovers,
        drift_is_healed_at_resync,
        drift_is_reported_not_repaired_in_warn_mode,
        webhook_needs_a_valid_signature,
        metrics_are_prometheus_text,
        sigterm_during_a_run_exits_0_and_leaves_the_registry_consistent,
        once_exits_with_apply_codes,
        once_on_sigterm_releases_the_lease_and_exits_1,
    );
}

#[test]
fn watch_help_lists_the_endpoints_and_flags() {
    let out = bin().args(["watch", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--git",
        "--interval",
        "--resync",
        "--drift",
        "--listen",
        "--once",
        "/hooks/git",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

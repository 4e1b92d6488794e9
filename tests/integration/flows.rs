//! The user flow end to end against the real MLflow server, with a gated
//! model in a protected stage, all on one git repository: a pull request
//! (`plan --format markdown` for the comment and `plan --out`), the merge
//! (`apply --plan`), then the daemon on the same repository (`watch --git
//! --once`, then a running daemon that applies a later push and holds a
//! push whose gate fails).

use std::path::Path;
use std::time::Duration;

use modelsync::state::Stage;

use crate::support::backend::{Backend, Ctx, manifest};
use crate::support::cli::Run;
use crate::support::daemon::Daemon;
use crate::support::git::GitRepo;
use crate::support::mlflow::server;
use crate::support::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(60);

/// The model's manifest: `versions` (handle, run id) and the Production
/// holder, gated on accuracy.
fn gated(c: &Ctx, versions: &[(&str, &str)], production: &str) -> String {
    let list: String = versions
        .iter()
        .map(|(h, run)| {
            format!(
                "    {h}: {{source: \"s3://flows/{n}/{h}\", runId: \"{run}\"}}\n",
                n = c.name
            )
        })
        .collect();
    let body = format!(
        "  versions:\n{list}  stages:\n    Production: {production}\n  aliases:\n    champion: {production}\n  gates:\n    Production:\n      - metric: accuracy\n        atLeast: 0.9\n"
    );
    manifest(&c.name, &body)
}

fn run_in(dir: &Path, c: &Ctx, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry", url];
    all.extend_from_slice(args);
    let out =
        c.w.command(&all)
            .current_dir(dir)
            .output()
            .expect("run modelsync");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn production(m: &modelsync::state::LiveModel) -> Vec<u64> {
    m.versions
        .values()
        .filter(|v| v.stage == Stage::Production)
        .map(|v| v.version)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_then_merge_then_daemon_on_one_git_repository() {
    let c = Ctx::new(Backend::Mlflow, "flow");
    let proxy = Proxy::start(&server().url).await;
    let url = proxy.url.clone();
    let good = c.log(None, &[("accuracy", 0.95)]);
    let repo = GitRepo::new(c.w.path());
    repo.push("manifests/modelsync.toml", "protect = [\"Production\"]\n");
    let head = repo.push("manifests/model.yaml", &gated(&c, &[("one", &good)], "one"));

    // The pull request: a Markdown comment and a saved plan, from the clone.
    let md = run_in(
        &repo.work,
        &c,
        &url,
        &["plan", "manifests", "--format", "markdown"],
    );
    assert_eq!(md.code, 0, "{md:?}");
    assert!(md.stdout.contains(&c.name), "{md:?}");
    assert!(
        md.stdout.contains("accuracy"),
        "the gate is in the comment: {md:?}"
    );
    let saved = run_in(
        &repo.work,
        &c,
        &url,
        &[
            "plan",
            "manifests",
            "--out",
            "plan.json",
            "--revision",
            &head,
        ],
    );
    assert_eq!(saved.code, 0, "{saved:?}");

    // The merge: the reviewed plan is applied as saved.
    let applied = run_in(&repo.work, &c, &url, &["apply", "--plan", "plan.json"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let m = c.model().await;
    assert_eq!(production(&m), vec![1], "{m:?}");
    assert_eq!(m.aliases.get("champion"), Some(&1));
    let stamp = &m.versions[&1].tags["modelsync.promoted-at.Production"];
    assert!(
        stamp.ends_with(&format!(" revision={head}")),
        "audit tag names the merged commit: {stamp}"
    );

    // The daemon on the same repository: nothing left to do.
    let writes = proxy.writes_except_lease(&c.w.lease_name());
    let cache = c.w.path().join("cache");
    let once = run_in(
        c.w.path(),
        &c,
        &url,
        &[
            "watch",
            "--git",
            &repo.url,
            "--path",
            "manifests",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
            "--once",
        ],
    );
    assert_eq!(once.code, 0, "{once:?}");
    assert_eq!(
        proxy.writes_except_lease(&c.w.lease_name()),
        writes,
        "the daemon finds the merged plan applied and writes nothing"
    );

    // A running daemon: a push whose gate fails is held (Production stays),
    // a push that passes is applied.
    let mut cmd = c.w.command(&[
        "--registry",
        &url,
        "watch",
        "--git",
        &repo.url,
        "--path",
        "manifests",
        "--interval",
        "1s",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
    ]);
    cmd.current_dir(c.w.path());
    let mut d = Daemon::start(cmd);
    d.wait_status("merged commit seen", WAIT, |s| {
        s["last_applied_revision"] == head
    });
    let weak = c.log(None, &[("accuracy", 0.5)]);
    let blocked = repo.push(
        "manifests/model.yaml",
        &gated(&c, &[("one", &good), ("two", &weak)], "two"),
    );
    // The blocked revision's pass is over: what it did is in the registry.
    d.wait_status("blocked push reconciled", WAIT, |s| {
        s["last_attempted_revision"] == blocked && s["reconciles"].as_u64() >= Some(2)
    });
    let m = c.model().await;
    assert_eq!(production(&m), vec![1], "the gate held Production: {m:?}");
    assert_eq!(m.versions.len(), 2, "version two was registered: {m:?}");

    let strong = c.log(None, &[("accuracy", 0.97)]);
    let fixed = repo.push(
        "manifests/model.yaml",
        &gated(
            &c,
            &[("one", &good), ("two", &weak), ("three", &strong)],
            "three",
        ),
    );
    d.wait_status("passing push applied", WAIT, |s| {
        s["last_applied_revision"] == fixed
    });
    let m = c.model().await;
    assert_eq!(production(&m), vec![3], "{m:?}");
    assert_eq!(m.aliases.get("champion"), Some(&3));
    assert_eq!(d.terminate(WAIT), 0);
}

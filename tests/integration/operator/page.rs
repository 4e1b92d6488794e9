//! The status page in a real headless Chromium (Debian's `chromium`,
//! installed by scripts/ensure-system-deps.sh): four models in sync,
//! drifted, gate-blocked and failed; DOM checks on what the browser built
//! (`--dump-dom`, JavaScript off) and a screenshot.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;

use super::model;

const WAIT: Duration = Duration::from_secs(90);

/// Runs headless Chromium (no sandbox: the tests run as root in CI) with
/// JavaScript disabled; returns stdout.
pub fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium is installed by scripts/ensure-system-deps.sh");
    assert!(out.status.success(), "chromium {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn row<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"model-{name}\""))
        .unwrap_or_else(|| panic!("no row for {name}:\n{dom}"));
    let end = dom[start..].find("</tr>").expect("row end") + start;
    &dom[start..end]
}

#[test]
fn status_page_in_headless_chromium() {
    scenario(None, "page-", true);
}

#[test]
fn status_page_in_headless_chromium_on_mlflow() {
    let prefix = format!("{}-", crate::support::mlflow::unique("page"));
    scenario(Some(&crate::support::mlflow::server().url), &prefix, false);
}

/// The page over models named `<prefix>sync`, `…drift`, `…blocked` and
/// `…fail`, against `registry` (the workdir's embedded one when `None`).
fn scenario(registry: Option<&str>, prefix: &str, keep_screenshot: bool) {
    let w = Workdir::new();
    let uri = registry.map_or_else(|| w.registry_uri(), str::to_string);
    let name = |n: &str| format!("{prefix}{n}");
    w.write("m/sync.yaml", &model(&name("sync"), "v1", false));
    w.write("m/drift.yaml", &model(&name("drift"), "v1", false));
    w.write("m/blocked.yaml", &model(&name("blocked"), "v1", true));
    w.write("m/fail.yaml", &model(&name("fail"), "v1", false));
    let mut cmd = w.command(&["watch", "m", "--drift", "warn", "--resync", "500ms"]);
    cmd.args(["--debounce", "100ms", "--registry", &uri]);
    let mut d = Daemon::start(cmd);
    d.wait_status("first reconcile", WAIT, |s| {
        s["last_applied_revision"].is_string()
    });

    // Drift by hand: page-drift's champion moved to version 2.
    w.write("other/drift.yaml", &model(&name("drift"), "v2", false));
    let hand = w.run(&["apply", "other", "--registry", &uri]);
    assert_eq!(hand.code, 0, "{hand:?}");
    d.wait_status("drift reported", WAIT, |s| {
        s["models"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m["name"] == name("drift").as_str() && m["state"] == "drifted")
        })
    });
    // A revision whose plan fails for one model (an unknown version).
    w.write("m/fail.yaml", &model(&name("fail"), "9", false));
    let s = d.wait_status("the failed model", WAIT, |s| {
        s["models"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m["name"] == name("fail").as_str() && m["state"] == "failed")
        })
    });
    let states: Vec<(String, String)> = s["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (name("blocked"), "blocked".into()),
            (name("drift"), "drifted".into()),
            (name("fail"), "failed".into()),
            (name("sync"), "in_sync".into())
        ],
        "{s:#}"
    );

    let raw = d.get("/");
    assert_eq!(raw.status, 200);
    assert!(!raw.body.contains("<script"), "no JavaScript on the page");
    assert!(
        raw.body.contains("http-equiv=\"refresh\""),
        "reloads itself"
    );

    let url = format!("http://{}/", d.addr);
    let dom = chromium(&["--dump-dom", &url]);
    assert!(dom.contains("<table id=\"models\""), "{dom}");
    let sync = row(&dom, &name("sync"));
    assert!(sync.contains("data-state=\"in_sync\""), "{sync}");
    assert!(sync.contains("champion</strong>: version 1"), "{sync}");
    assert!(
        sync.contains(&format!("s3://bucket/{}/1", name("sync"))),
        "sources shown: {sync}"
    );
    let drift = row(&dom, &name("drift"));
    assert!(drift.contains("data-state=\"drifted\""), "{drift}");
    assert!(
        drift.contains("champion</strong>: version 2"),
        "the live holder: {drift}"
    );
    assert!(
        drift.contains("alias champion: version 2 -&gt; version 1"),
        "{drift}"
    );
    let blocked = row(&dom, &name("blocked"));
    assert!(blocked.contains("data-state=\"blocked\""), "{blocked}");
    assert!(blocked.contains("approved"), "the failing gate: {blocked}");
    assert!(
        blocked.contains("class=\"observed\""),
        "the observed value: {blocked}"
    );
    let fail = row(&dom, &name("fail"));
    assert!(fail.contains("data-state=\"failed\""), "{fail}");
    assert!(fail.contains("version 9"), "the error: {fail}");
    assert!(dom.contains("id=\"last-error\""), "{dom}");
    assert!(
        dom.contains("fail.yaml:"),
        "the error names file:line:column: {dom}"
    );
    assert!(dom.contains("id=\"recent\""), "recent actions: {dom}");
    assert!(dom.contains("id=\"last-applied\""), "{dom}");

    let history = chromium(&[
        "--dump-dom",
        &format!("http://{}/models/{}", d.addr, name("sync")),
    ]);
    assert!(history.contains("Promotion history"), "{history}");
    assert!(history.contains("<table id=\"history\""), "{history}");
    assert!(history.contains("<td>champion</td>"), "{history}");
    assert_eq!(d.get("/models/nope").status, 404);

    let shots = tempfile::tempdir().expect("tempdir");
    let shot = shots.path().join("status-page.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,900",
        "--hide-scrollbars",
        &url,
    ]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "a page, not a blank: {} bytes",
        png.len()
    );
    // `MODELSYNC_SCREENSHOT_DIR=docs` refreshes the picture in `docs/daemon.md`.
    if let Some(dir) = std::env::var_os("MODELSYNC_SCREENSHOT_DIR").filter(|_| keep_screenshot) {
        std::fs::copy(&shot, Path::new(&dir).join("status-page.png")).expect("copy screenshot");
    }
}

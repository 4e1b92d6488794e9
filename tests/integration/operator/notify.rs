//! Notifications received by local HTTP receivers: CloudEvents for an
//! applied, a blocked, a drifted and a failed reconcile (the first
//! deliveries answered 500 and retried, the reconcile unaffected), Slack's
//! message shape, and GitHub commit statuses on a stand-in statuses
//! endpoint that checks the request. Neither the token nor the webhooks'
//! secret paths appear in the logs.

use std::time::Duration;

use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::git::GitRepo;
use crate::support::receiver::{Received, Receiver};

use super::model;

const WAIT: Duration = Duration::from_secs(90);

fn event_of<'a>(got: &'a [Received], kind: &str) -> Option<&'a Received> {
    got.iter()
        .filter(|r| r.answered == 201)
        .find(|r| r.json()["type"] == format!("io.modelsync.reconcile.{kind}"))
}

#[test]
fn reconciles_are_notified_as_cloudevents_slack_and_commit_statuses() {
    scenario(None, "notify-");
}

#[test]
fn reconciles_are_notified_on_mlflow() {
    let prefix = format!("{}-", crate::support::mlflow::unique("notify"));
    scenario(Some(&crate::support::mlflow::server().url), &prefix);
}

/// Models `<prefix>a` and `<prefix>b` against `registry` (the workdir's
/// embedded one when `None`).
fn scenario(registry: Option<&str>, prefix: &str) {
    let w = Workdir::new();
    let uri = registry.map_or_else(|| w.registry_uri(), str::to_string);
    let a = format!("{prefix}a");
    let b_name = format!("{prefix}b");
    let repo = GitRepo::named(w.path(), "acme/models.git");
    let ce = Receiver::start(2);
    let slack = Receiver::start(0);
    let github = Receiver::start(0);
    let c1 = repo.push("m/a.yaml", &model(&a, "v1", false));

    let mut cmd = w.command(&["watch", "--git", &repo.url, "--path", "m"]);
    cmd.args(["--registry", &uri]);
    cmd.args([
        "--interval",
        "200ms",
        "--drift",
        "warn",
        "--resync",
        "500ms",
    ])
    .args([
        "--cache-dir",
        w.path().join("cache").to_str().expect("utf-8"),
    ])
    .args(["--notify", &format!("{}/hook?token=CE-SECRET", ce.url)])
    .args([
        "--notify",
        &format!("slack+{}/services/T0/B0/SLACK-SECRET", slack.url),
    ])
    .arg("--github-status")
    .env("GITHUB_TOKEN", "ghp-TOKEN-SECRET")
    .env("GITHUB_API_URL", &github.url)
    .env("MODELSYNC_NOTIFY_RETRY_BASE", "50ms");
    let mut d = Daemon::start(cmd);

    // Applied: the webhook fails twice, the reconcile is not held up.
    let s = d.wait_status("c1 applied", WAIT, |s| {
        s["last_applied_revision"] == c1.as_str()
    });
    assert!(s["last_error"].is_null(), "{s:#}");
    let applied = ce.wait_for("applied event", WAIT, |r| {
        r.answered == 201 && r.json()["type"] == "io.modelsync.reconcile.applied"
    });
    let first = &ce.received()[..3];
    assert_eq!(
        first.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 201],
        "retried after failures"
    );
    assert!(
        first.iter().all(|r| r.body == first[0].body),
        "the same event re-sent"
    );
    assert_eq!(applied.method, "POST");
    assert_eq!(applied.path, "/hook?token=CE-SECRET");
    assert_eq!(
        applied.headers["content-type"],
        "application/cloudevents+json"
    );
    let e = applied.json();
    assert_eq!(e["specversion"], "1.0");
    assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(e["source"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(e["subject"], c1.as_str());
    assert_eq!(e["datacontenttype"], "application/json");
    assert_eq!(e["data"]["outcome"], "applied");
    assert_eq!(e["data"]["revision"], c1.as_str());
    assert_eq!(e["data"]["models"][0]["name"], a.as_str());
    assert_eq!(e["data"]["models"][0]["state"], "in_sync");
    let actions = e["data"]["actions"].as_array().expect("actions");
    assert!(
        actions.iter().any(
            |a| a["action"] == "alias champion: none -> new version (v1)"
                && a["outcome"] == "applied"
        ),
        "{e:#}"
    );

    let msg = slack.wait_for("slack message", WAIT, |_| true);
    assert_eq!(msg.path, "/services/T0/B0/SLACK-SECRET");
    assert_eq!(msg.headers["content-type"], "application/json");
    let m = msg.json();
    assert!(
        m["text"].as_str().is_some_and(|t| t.contains("applied")),
        "{m:#}"
    );
    assert_eq!(m["blocks"][0]["type"], "section");
    assert_eq!(m["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(
        m.get("specversion").is_none(),
        "Slack's shape, not CloudEvents"
    );

    let status = |commit: &str, state: &str| {
        github.wait_for(&format!("{state} status on {commit}"), WAIT, |r| {
            r.path == format!("/repos/acme/models/statuses/{commit}") && r.json()["state"] == state
        })
    };
    let ok = status(&c1, "success");
    assert_eq!(ok.method, "POST");
    assert_eq!(ok.headers["authorization"], "Bearer ghp-TOKEN-SECRET");
    assert_eq!(ok.headers["accept"], "application/vnd.github+json");
    assert!(ok.headers.contains_key("user-agent"));
    assert_eq!(ok.json()["context"], "modelsync");
    assert!(
        ok.json()["description"]
            .as_str()
            .is_some_and(|d| d.len() <= 140)
    );

    // Blocked: a gated move.
    let c2 = repo.push("m/b.yaml", &model(&b_name, "v1", true));
    let blocked = ce.wait_for("blocked event", WAIT, |r| {
        r.answered == 201 && r.json()["type"] == "io.modelsync.reconcile.blocked"
    });
    let data = &blocked.json()["data"];
    assert_eq!(data["revision"], c2.as_str());
    let b = data["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == b_name.as_str())
        .cloned();
    let b = b.expect("model b in the event");
    assert_eq!(b["state"], "blocked");
    assert!(
        b["gate"].as_str().is_some_and(|g| g.contains("approved")),
        "{b:#}"
    );
    status(&c2, "pending");

    // Drift: champion moved by hand; --drift warn reports it at a resync.
    w.write("hand/a.yaml", &model(&a, "v2", false));
    let hand = w.run(&["apply", "hand", "--registry", &uri]);
    assert_eq!(hand.code, 0, "{hand:?}");
    // (The blocked move of b is reported as drift at each resync too.)
    let want = format!("{a}: alias champion: version 2 -> version 1");
    let drift = ce.wait_for("drift event for a", WAIT, |r| {
        let e = r.json();
        r.answered == 201
            && e["type"] == "io.modelsync.reconcile.drift"
            && e["data"]["drift"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| *l == want.as_str()))
    });
    assert_eq!(drift.json()["data"]["outcome"], "drift");

    // Failed: an invalid manifest.
    let c3 = repo.push("m/a.yaml", &format!("apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {{name: {a}}}\nspec: {{colour: red}}\n"));
    let failed = ce.wait_for("failed event", WAIT, |r| {
        r.answered == 201 && r.json()["type"] == "io.modelsync.reconcile.failed"
    });
    assert_eq!(failed.json()["data"]["revision"], c3.as_str());
    assert!(
        failed.json()["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("problem"))
    );
    status(&c3, "failure");
    assert!(event_of(&ce.received(), "applied").is_some());

    let logs = d.logs().join("\n");
    for secret in ["CE-SECRET", "SLACK-SECRET", "ghp-TOKEN-SECRET", "token="] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
    assert!(logs.contains("notification failed; retrying"), "{logs}");
}

#[test]
fn watch_once_delivers_before_it_exits() {
    let w = Workdir::new();
    let hook = Receiver::start(1);
    w.write("m/a.yaml", &model("notify-once", "v1", false));
    let mut cmd = w.command(&["watch", "m", "--once", "--notify", &hook.url]);
    cmd.env("MODELSYNC_NOTIFY_RETRY_BASE", "50ms");
    let run = crate::support::cli::Run::from_command(&mut cmd);
    assert_eq!(run.code, 0, "{run:?}");
    let got = hook.received();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 201],
        "retried and delivered before exiting: {got:#?}"
    );
    assert_eq!(got[1].json()["type"], "io.modelsync.reconcile.applied");
}

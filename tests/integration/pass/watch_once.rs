//! `watch --once` is one reconcile pass with `apply`'s exit codes: it reads
//! back and verifies, it prunes with `--prune`, and in git mode it reads
//! `modelsync.toml` from the commit's tree.

use modelsync::state::Stage;

use super::Bench;
use crate::support::backend::{Backend, manifest};
use crate::support::git::GitRepo;
use crate::support::proxy::Fault;

/// A write MLflow answers 200 and silently drops fails `apply` and
/// `watch --once` alike (exit 1, naming what did not converge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_once_verifies_like_apply() {
    let t = Bench::new(Backend::Mlflow, "pass-verify").await;
    let proxy = t.proxy.as_ref().expect("MLflow");
    let body = |tags: &str| {
        format!(
            "  tags: {{{tags}}}\n  versions:\n    a: {{source: \"s3://bucket/{}/a\"}}\n  stages:\n    Production: a\n",
            t.name()
        )
    };
    t.manifest(&body("team: ml"));
    assert_eq!(t.run(&["apply", "m"]).code, 0);
    t.manifest(&body("team: ml, tier: gold"));
    for args in [&["apply", "m"][..], &["watch", "m", "--once"]] {
        proxy.fail(
            "POST",
            "registered-models/set-tag",
            Fault::Answer(200, "{}".into()),
            1,
        );
        let r = t.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("does not match the manifests after apply")
                && r.stderr.contains("tier"),
            "{args:?}: {r:?}"
        );
    }
    let r = t.run(&["watch", "m", "--once"]);
    assert_eq!(r.code, 0, "without the fault: {r:?}");
    assert_eq!(
        t.model()
            .await
            .expect("model")
            .tags
            .get("tier")
            .map(String::as_str),
        Some("gold")
    );
}

/// An owned alias dropped from the manifests is kept by `watch --once` and
/// deleted by `watch --once --prune`.
async fn watch_prunes_with_prune(b: Backend) {
    let t = Bench::new(b, "pass-prune").await;
    let body = |challenger: bool| {
        format!(
            "  versions:\n    a: {{source: \"s3://bucket/{}/a\"}}\n  aliases:\n    champion: a\n{}",
            t.name(),
            if challenger {
                "    challenger: a\n"
            } else {
                ""
            }
        )
    };
    t.manifest(&body(true));
    let r = t.run(&["watch", "m", "--once"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        t.model()
            .await
            .expect("model")
            .aliases
            .contains_key("challenger")
    );
    t.manifest(&body(false));
    let before = t.mark();
    let r = t.run(&["watch", "m", "--once"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.writes_since(&before), 0, "without --prune nothing to do");
    assert!(
        t.model()
            .await
            .expect("model")
            .aliases
            .contains_key("challenger")
    );
    let r = t.run(&["watch", "m", "--once", "--prune"]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = t.model().await.expect("model");
    assert!(!m.aliases.contains_key("challenger"), "{m:?}");
    assert_eq!(m.aliases.get("champion"), Some(&1), "{m:?}");
}

/// Git mode: `manifests/modelsync.toml` of the commit protects Production.
/// A move into it without gates writes nothing (exit 1, naming the stage);
/// with a gate it applies; an invalid `modelsync.toml` writes nothing.
async fn git_mode_reads_modelsync_toml_from_the_commit(b: Backend) {
    let t = Bench::new(b, "pass-git").await;
    let run = t.c.log(None, &[("accuracy", 0.95)]);
    let repo = GitRepo::new(t.c.w.path());
    let cache = t.c.w.path().join("cache");
    let watch = |t: &Bench| {
        t.run(&[
            "watch",
            "--git",
            &repo.url,
            "--branch",
            "main",
            "--path",
            "manifests",
            "--once",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ])
    };
    let versions = format!(
        "  versions:\n    v: {{source: \"s3://bucket/{}/v\", runId: \"{run}\"}}\n  stages:\n    Production: v\n",
        t.name()
    );
    repo.push("manifests/modelsync.toml", "protect = [\"Production\"]\n");
    repo.push("manifests/model.yaml", &manifest(t.name(), &versions));
    let before = t.mark();
    let r = watch(&t);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("manifests/model.yaml:")
            && r.stderr.contains("stage Production is protected"),
        "{r:?}"
    );
    assert_eq!(t.writes_since(&before), 0, "a protected stage moved");
    assert!(t.model().await.is_none());

    let gated = format!(
        "{versions}  gates:\n    Production:\n      - metric: accuracy\n        atLeast: 0.9\n"
    );
    repo.push("manifests/model.yaml", &manifest(t.name(), &gated));
    let r = watch(&t);
    assert_eq!(r.code, 0, "{r:?}");
    let m = t.model().await.expect("applied");
    assert_eq!(m.versions[&1].stage, Stage::Production);

    // An invalid modelsync.toml in the commit: nothing written.
    repo.push("manifests/modelsync.toml", "protect = \"Production\"\n");
    repo.push(
        "manifests/model.yaml",
        &manifest(
            t.name(),
            &gated.replace("  versions:", "  tags: {team: ml}\n  versions:"),
        ),
    );
    let before = t.mark();
    let r = watch(&t);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("modelsync.toml"), "{r:?}");
    assert_eq!(
        t.writes_since(&before),
        0,
        "written with an invalid modelsync.toml"
    );
    let m = t.model().await.expect("model");
    assert!(!m.tags.contains_key("team"), "{m:?}");
}

crate::both!(
    watch_prunes_with_prune,
    git_mode_reads_modelsync_toml_from_the_commit
);
